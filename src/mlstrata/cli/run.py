"""The ``run`` command: the whole configured pipeline, skipping unchanged steps."""

from __future__ import annotations

import typer

from ._common import JsonOption, WorkspaceOption, emit, open_workspace, stage_progress

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command("run")(run_command)


def run_command(
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Run the mlstrata.yaml pipeline end to end, skipping steps whose inputs are unchanged.

    Steps: ingest, clean, validate, split, train, package, evaluate, test, register. Exit 1 when
    a validation, gate or acceptance test fails.
    """
    from ..pipeline import run_pipeline

    ws = open_workspace(workspace)
    with stage_progress("mlstrata run", quiet=as_json) as report_stage:
        report = run_pipeline(ws, report_stage)
    emit(report, as_json)
    if not report.passed:
        raise typer.Exit(1)
