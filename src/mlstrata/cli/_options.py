"""Options and consoles every command shares, importable without the workspace or the data stack.

Kept apart from :mod:`mlstrata.cli._common` so that a lean command (``mlstrata serve``) starts
without importing what the data and model commands need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["JsonOption", "StrictOption", "TrackingUriOption", "WorkspaceOption", "console",
           "err_console"]

console = Console()
err_console = Console(stderr=True)

WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        help="Project directory (default: the current one or the nearest parent with a workspace).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
TrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri",
    help="MLflow tracking URI (default: model.tracking_uri, else the workspace's SQLite).")]
StrictOption = Annotated[bool, typer.Option(
    "--strict", help="Reject rows that break the contract's warn rules too (else they are "
                     "scored, with a warning).")]
