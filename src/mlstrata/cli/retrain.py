"""``mlstrata retrain NAME --data SOURCE``: a new batch → a challenger → promoted or kept out.

Exit codes for schedulers: 0 promoted (or not due: nothing changed), 1 the champion was kept
(the report says why) or a step failed, 2 an error before anything changed (one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from ..errors import ConfigError
from ._common import JsonOption, WorkspaceOption, emit_saved, open_workspace, stage_progress
from ._options import console

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``retrain`` to ``app``."""
    app.command("retrain")(retrain_command)


def retrain_command(
    name: Annotated[str, typer.Argument(help="Dataset whose history the batch joins (the "
                                             "pipeline's name, e.g. credit).")],
    data: Annotated[str | None, typer.Option(
        "--data", metavar="FILE|URL",
        help="The new batch: a file (csv, parquet, jsonl, xlsx...) or a postgresql:// URL "
             "(default for --query/--table: pipeline.source when it is a URL).")] = None,
    query: Annotated[str | None, typer.Option(
        "--query", help="SQL reading the batch from the database of --data.")] = None,
    table: Annotated[str | None, typer.Option(
        "--table", help="Table holding the batch in the database of --data.")] = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="Force the file format instead of detecting it.")] = None,
    delimiter: Annotated[str | None, typer.Option(
        "--delimiter", help="CSV delimiter (default: sniffed).")] = None,
    sheet: Annotated[str | None, typer.Option(
        "--sheet", help="Excel sheet (default: the first).")] = None,
    trigger: Annotated[Literal["manual", "schedule", "drift"], typer.Option(
        "--trigger", help="What started this retrain; 'drift' makes it due when "
                          "retrain.on_drift is set (mlstrata monitor ... || mlstrata retrain "
                          "... --trigger drift).")] = "manual",
    force: Annotated[bool, typer.Option(
        "--force", help="Retrain even when the retrain: policy says it is not due.")] = False,
    print_cron: Annotated[bool, typer.Option(
        "--print-cron", help="Print the crontab line that runs this retrain at "
                             "retrain.schedule (or --schedule), and exit.")] = False,
    cronjob: Annotated[Path | None, typer.Option(
        "--cronjob", metavar="FILE.yaml",
        help="Write a Kubernetes CronJob running this retrain (needs --image and --claim), "
             "and exit.")] = None,
    schedule: Annotated[str | None, typer.Option(
        "--schedule", help="Cron schedule for --print-cron/--cronjob (default: "
                           "retrain.schedule).")] = None,
    image: Annotated[str | None, typer.Option(
        "--image", help="CronJob image with mlstrata installed (the training image).")] = None,
    claim: Annotated[str | None, typer.Option(
        "--claim", help="CronJob: PersistentVolumeClaim holding the project, mounted at "
                        "/project.")] = None,
    namespace: Annotated[str, typer.Option("--namespace", help="CronJob namespace.")]
        = "mlstrata",
    time_zone: Annotated[str, typer.Option("--time-zone", help="CronJob time zone (IANA).")]
        = "Etc/UTC",
    shadow_report: Annotated[bool, typer.Option(
        "--shadow-report", help="Compare NAME@champion and the shadow NAME@challenger on the "
                                "traffic a 'serve NAME@champion --shadow NAME@challenger' "
                                "logged (agreement; with feedback, each one's metrics), "
                                "and exit.")] = False,
    log: Annotated[str | None, typer.Option(
        "--log", metavar="DIR|URL", help="The prediction log for --shadow-report, a "
                                         "directory or postgresql:// URL (default: the "
                                         "workspace's, monitor.log).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the JSON and HTML reports (default: the project's "
                      "reports/).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Append a new batch to NAME's history, train a challenger and promote it only if it wins.

    The batch is checked first (the history's columns and types, the stored recipe, the
    contract) and refused — nothing changed — when it breaks them. Then the configured pipeline
    trains a challenger on the new version; it is compared with the champion on the same sealed
    rows (the newest batch's slice and the whole sealed history, paired bootstrap) and becomes
    champion only when it passes every gate and the acceptance test and beats the champion by
    retrain.margin with retrain.confidence. One retrain per dataset at a time (a lock).
    """
    ws = open_workspace(workspace)
    if shadow_report:
        _shadow_view(ws, name, log, out, as_json)
        return
    source = _source_args(ws.config.pipeline.source, data, query, table, format, delimiter,
                          sheet)
    if print_cron or cronjob is not None:
        _schedule_only(ws.root, name, source, schedule or ws.config.retrain.schedule,
                       print_cron, cronjob, image, claim, namespace, time_zone)
        return
    from ..data.sources import SourceSpec
    from ..retrain import RetrainRequest, retrain

    location = source[1]
    spec = SourceSpec(location=location if "://" in location
                      else str(Path(location).expanduser().absolute()),
                      format=format, delimiter=delimiter, sheet=sheet, table=table, query=query,
                      schema=dict(ws.config.data.schema_overrides))
    with stage_progress(f"retraining {name}", quiet=as_json) as step:
        report = retrain(ws, RetrainRequest(name, spec, trigger, force), step)
    emit_saved(report, as_json, out or ws.reports_dir, f"{name}-retrain")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _shadow_view(ws: Workspace, name: str, log: str | None, out: Path | None,
                 as_json: bool) -> None:
    from ..package.locate import locate_package
    from ..retrain.shadow_view import shadow_report
    from ._predlog import log_target

    registered = ws.config.model.registry_name or name
    target = log or log_target(ws, None)
    if target is None:
        raise ConfigError("no prediction log to read; pass --log DIR (or a postgresql:// URL)")
    report = shadow_report(target, locate_package(f"{registered}@champion", ws),
                           locate_package(f"{registered}@challenger", ws))
    emit_saved(report, as_json, out or ws.reports_dir, f"{name}-shadow")


def _source_args(default: str | None, data: str | None, query: str | None, table: str | None,
                 format: str | None, delimiter: str | None, sheet: str | None) -> list[str]:
    """The source options as command-line words (``--data`` first), for the retrain itself
    and for the scheduled command."""
    if data is None and (query or table) and default and "://" in default:
        data = default
    if data is None:
        raise ConfigError("give the new batch with --data FILE (or --data postgresql://... "
                          "with --query SQL or --table NAME)")
    if (query or table) and "://" not in data:
        raise ConfigError(f"--query and --table read a database: --data must be its URL "
                          f"(postgresql://...), not {data!r}")
    words = ["--data", data]
    for flag, value in (("--query", query), ("--table", table), ("--format", format),
                        ("--delimiter", delimiter), ("--sheet", sheet)):
        if value is not None:
            words += [flag, value]
    return words


def _schedule_only(root: Path, name: str, source: list[str], schedule: str, print_cron: bool,
                   cronjob: Path | None, image: str | None, claim: str | None, namespace: str,
                   time_zone: str) -> None:
    from ..retrain.schedule import CronJobOptions, cron_line, cronjob_manifest, write_cronjob

    if print_cron:
        typer.echo(cron_line(schedule, name, source, root))
    if cronjob is not None:
        if not image or not claim:
            raise ConfigError("--cronjob needs --image (an image with mlstrata installed) and "
                              "--claim (the PersistentVolumeClaim holding the project)")
        relative = [_in_project(word, root) for word in source]
        manifest = cronjob_manifest(schedule, name, relative,
                                    CronJobOptions(image, claim, namespace, time_zone))
        write_cronjob(cronjob, manifest)
        console.print(f"wrote {cronjob} (CronJob {manifest['metadata']['name']}, "
                      f"schedule {schedule!r}); apply it with: kubectl apply -f {cronjob}",
                      highlight=False, soft_wrap=True)


def _in_project(word: str, root: Path) -> str:
    """A file path inside the project as the pod sees it (under /project)."""
    path = Path(word)
    if path.is_absolute() and path.is_relative_to(root):
        return str(Path("/project") / path.relative_to(root))
    return word
