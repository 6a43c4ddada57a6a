"""``mlstrata monitor MODEL``: drift and decay of a served model, from its prediction log.

Exit codes for schedulers: 0 healthy, 1 drift or decay found, 2 an error (one line).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import MlstrataError
from ._common import JsonOption, WorkspaceOption, emit_saved, progress_bar

if TYPE_CHECKING:
    from ..config import MonitorConfig
    from ..monitor import MonitorReport, MonitorRequest
    from ..workspace import Workspace

__all__ = ["check", "register"]


def register(app: typer.Typer) -> None:
    """Add ``monitor`` to ``app``."""
    app.command("monitor")(monitor)


def monitor(
    model: Annotated[str, typer.Argument(
        help="Package directory, NAME, NAME@N or NAME@ALIAS (e.g. credit@champion).")],
    window: Annotated[str | None, typer.Option(
        "--window", help="Cut the log into windows of a duration (1h, 1d) or of N predictions "
                         "(5000rows); default monitor.window (1d).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only predictions from this time: ISO 8601 (2026-12-02T10:00Z) or a "
                        "duration back from now (24h, 7d).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Only predictions before this time (same forms as --since).")] = None,
    log: Annotated[str | None, typer.Option(
        "--log", metavar="DIR|URL",
        help="The prediction log to read (default: the workspace's, or monitor.log).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the JSON and HTML reports (default: the project's "
                      "reports/).")] = None,
    prometheus: Annotated[Path | None, typer.Option(
        "--prometheus", metavar="FILE.prom",
        help="Also write the verdict as gauges for node-exporter's textfile collector "
             "(replaced atomically; one file per model).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Compare MODEL's logged predictions with its training data; exit 1 on drift or decay.

    Per window: drift of every input (PSI with Kolmogorov-Smirnov and Wasserstein for numbers,
    chi-square, Jensen-Shannon and new levels for categories, missing rates), drift of the
    predictions, warnings, volume and latency; with feedback, live metrics against the model's
    gates and its validation intervals. Thresholds: monitor: in mlstrata.yaml.
    """
    if prometheus is not None:
        from ..monitor.prometheus import check_textfile

        check_textfile(prometheus)
    report = check(model, window=window, since=since, until=until, log=log,
                   workspace=workspace, quiet=as_json)
    directory = out or _reports_dir(model, workspace)
    emit_saved(report, as_json, directory, f"{report.model}-v{report.version}-monitor")
    if prometheus is not None:
        from ..monitor.prometheus import gauges_from_report, write_textfile

        write_textfile(prometheus, gauges_from_report(report, datetime.now(UTC)))
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def check(model: str, *, window: str | None = None, since: str | None = None,
          until: str | None = None, log: str | None = None, workspace: Path | None = None,
          quiet: bool = False) -> MonitorReport:
    """Run one monitoring check as the command does (also for ``--prometheus``)."""
    from ..monitor import run_monitor

    request, config = _request(model, window, since, until, log, workspace)
    with progress_bar(quiet=quiet) as progress:
        progress.add_task(f"monitoring {model}", total=None)
        return run_monitor(request, config)


def _request(model: str, window: str | None, since: str | None, until: str | None,
             log: str | None, workspace: Path | None) -> tuple[MonitorRequest, MonitorConfig]:
    from ..config import MonitorConfig
    from ..monitor import MonitorRequest, parse_time, parse_window
    from ..package.locate import locate_package
    from ._predlog import log_target, log_workspace

    ws = log_workspace(model, workspace)
    config = ws.config.monitor if ws is not None else MonitorConfig()
    location = log or log_target(ws, None)
    if location is None:
        raise MlstrataError(f"no prediction log to read for {model}: it is outside any project; "
                            "pass --log DIR (or a postgresql:// URL), or -w PROJECT")
    return MonitorRequest(
        package=locate_package(model, ws), log=location,
        window=parse_window(window or config.window,
                            "--window" if window else "mlstrata.yaml monitor.window"),
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        memory_limit=ws.config.data.memory_limit if ws is not None else "1GB"), config


def _reports_dir(model: str, workspace: Path | None) -> Path:
    from ._predlog import log_workspace

    ws: Workspace | None = log_workspace(model, workspace)
    return ws.reports_dir if ws is not None else Path("reports")
