"""Options and helpers shared by every command: workspace discovery, JSON output, progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ..errors import WorkspaceError
from ..reports import Report, save_report
from ..runtime.manifest import is_package_dir
from ..workspace import Workspace
from ._options import JsonOption, TrackingUriOption, WorkspaceOption, console, err_console

__all__ = [
    "JsonOption",
    "RecipeOption",
    "TrackingUriOption",
    "WorkspaceOption",
    "console",
    "emit",
    "emit_saved",
    "err_console",
    "open_workspace",
    "progress_bar",
    "stage_progress",
    "workspace_for_model",
]


RecipeOption = Annotated[Literal["auto", "replay", "skip"], typer.Option(
    "--recipe", help="Clean the input like the training data: auto (when it lacks columns a "
                     "recipe derives), replay, or skip.")]


def open_workspace(path: Path | None) -> Workspace:
    """Open the workspace at ``path`` or found upward from the current directory."""
    return Workspace.find(path)


def workspace_for_model(model: str, path: Path | None) -> Workspace | None:
    """The workspace for MODEL: required for a name, optional (when found) for a package path."""
    if not is_package_dir(model) or path is not None:
        return open_workspace(path)
    try:
        return open_workspace(None)
    except WorkspaceError:
        return None


def emit(report: Report, as_json: bool) -> None:
    """Print a report as JSON (machine use) or as a Rich summary (people)."""
    if as_json:
        typer.echo(report.to_json())
    else:
        report.render_terminal(console)


def emit_saved(report: Report, as_json: bool, directory: Path, stem: str) -> dict[str, Path]:
    """Save a report's JSON + HTML under ``directory``, print it, and say where the HTML is.

    With ``--json`` the path goes to stderr so stdout stays one JSON document.
    """
    paths = save_report(report, directory, stem)
    emit(report, as_json)
    (err_console if as_json else console).print(f"report: {paths['html']}", highlight=False,
                                                soft_wrap=True)
    return paths


@contextlib.contextmanager
def progress_bar(quiet: bool = False) -> Iterator[Progress]:
    """A Rich progress display on stderr; hidden when ``quiet`` (``--json``) or not a terminal."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=True,
    )
    with progress:
        yield progress


@contextlib.contextmanager
def stage_progress(
    label: str, quiet: bool, total: int | None = None
) -> Iterator[Callable[[str], None]]:
    """A progress display and the callback a stage calls with the name of each step it starts.

    With ``total`` (the number of steps) the bar advances on each call; without, it spins.
    """
    with progress_bar(quiet) as progress:
        task = progress.add_task(label, total=total)

        def report(stage: str) -> None:
            progress.update(task, description=stage, advance=1 if total else 0)

        yield report
