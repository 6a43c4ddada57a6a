"""The ``profile`` command: statistics, correlations, target and warnings of a dataset version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.profile import Profile, profile_dataset
from ._common import JsonOption, WorkspaceOption, emit_saved, open_workspace, progress_bar

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``profile`` to ``app``."""
    app.command("profile")(profile_command)


def profile_command(
    ref: Annotated[str, typer.Argument(help="Dataset version: NAME, NAME@N or an id prefix.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the JSON and HTML reports (default: the project's reports/).",
        show_default=False)] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Profile a dataset version out of core; write <name>-v<N>-profile.json and .html."""
    ws = open_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        task = progress.add_task("profiling", total=None)

        def advance(step: str, done: int, total: int) -> None:
            progress.update(task, description=f"profiling: {step}", completed=done, total=total)

        report = profile_dataset(ws, ref, progress=advance)
    emit_saved(report, as_json, out or ws.reports_dir, _stem(report))


def _stem(report: Profile) -> str:
    """``credit@2`` → ``credit-v2-profile``."""
    return report.title.replace("@", "-v") + "-profile"
