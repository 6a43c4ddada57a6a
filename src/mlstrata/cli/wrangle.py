"""Wrangling commands: ``clean`` (apply a recipe) and ``split`` (record train/validation rows)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..data.clean import clean_dataset
from ..data.split import split_dataset
from ..reports import Report
from ..workspace import Workspace
from ._common import (
    JsonOption,
    WorkspaceOption,
    emit_saved,
    open_workspace,
    stage_progress,
)

__all__ = ["register"]

RefArgument = Annotated[str, typer.Argument(help="Dataset ref: NAME, NAME@N or an id prefix.")]


def register(app: typer.Typer) -> None:
    """Add ``clean`` and ``split`` to ``app``."""
    app.command("clean")(clean)
    app.command("split")(split)


def clean(
    ref: RefArgument,
    recipe: Annotated[str, typer.Option(
        "--recipe", "-r", help="Recipe YAML file, or the ref of a stored (fitted) recipe, which "
                               "is applied as stored without refitting.")],
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Clean dataset REF with a recipe into a new version; statistics are fitted on train rows."""
    ws = open_workspace(workspace)
    with stage_progress("cleaning", quiet=as_json, total=4) as advance:
        output, _, report = clean_dataset(ws, ref, recipe, on_stage=advance)
    _show(ws, report, f"clean-{output.name}-v{output.version}", as_json)


def split(
    ref: RefArgument,
    strategy: Annotated[str | None, typer.Option(
        help="random, stratified, time or group (default: stratified on the dataset's target "
             "if it has one, else random).", show_default=False)] = None,
    val: Annotated[float, typer.Option("--val", help="Share of rows for validation.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same rows.")] = 0,
    target: Annotated[str | None, typer.Option(
        help="Column to stratify on (default: the dataset's target).")] = None,
    time: Annotated[str | None, typer.Option(
        help="Time column: the most recent rows go to validation (default: the ingest's).")
    ] = None,
    group: Annotated[str | None, typer.Option(
        help="Group column: every group lies wholly on one side.")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Record a reproducible train/validation assignment of dataset REF's rows."""
    ws = open_workspace(workspace)
    with stage_progress("splitting", quiet=as_json, total=2) as advance:
        report = split_dataset(
            ws, ref, strategy=strategy, fraction=val, seed=seed,
            target=target, time=time, group=group, on_stage=advance,
        )
    _show(ws, report, f"split-{report.artifact.name}-v{report.artifact.version}", as_json)


def _show(ws: Workspace, report: Report, stem: str, as_json: bool) -> None:
    """Print the report and save its JSON + HTML under the project's reports folder."""
    emit_saved(report, as_json, ws.reports_dir, stem)
