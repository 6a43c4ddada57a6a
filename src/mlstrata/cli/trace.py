"""``mlstrata trace REQUEST_ID``: a logged prediction and its lineage down to the raw bytes."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, WorkspaceOption, emit, err_console, open_workspace

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``trace`` to ``app``."""
    app.command("trace")(trace_command)


def trace_command(
    request_id: Annotated[str, typer.Argument(
        help="The request id of a logged prediction (the X-Request-Id of an answer, the id of "
             "an OIP request, or the run id of a batch run).")],
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Print the logged prediction(s) of REQUEST_ID and walk their lineage: package → model →
    training dataset → raw source sha256. Exit 1 when no prediction has that id."""
    from ..package.trace import UnknownRequestError, trace
    from ._predlog import workspace_log

    ws = open_workspace(workspace)
    target = workspace_log(ws)
    try:
        found = trace(ws, request_id, target)
    except UnknownRequestError as exc:
        err_console.print(f"[bold red]not found:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    emit(found, as_json)
