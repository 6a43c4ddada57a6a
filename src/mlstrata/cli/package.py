"""``mlstrata package MODEL``: build the self-describing model package (ONNX, native, MLflow...)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import JsonOption, WorkspaceOption, emit, open_workspace, progress_bar

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``package`` to ``app``."""
    app.command("package")(package)


def package(
    model: Annotated[str, typer.Argument(help="Model ref: NAME, NAME@N or an id prefix.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Package directory (default: packages/NAME-VERSION in the project).")] = None,
    no_zip: Annotated[bool, typer.Option(
        "--no-zip", help="Do not write the .zip beside the directory.")] = False,
    pmml: Annotated[bool, typer.Option(
        "--pmml", help="Also export model.pmml (needs sklearn2pmml and Java).")] = False,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Package MODEL: ONNX (parity measured), native, MLflow, signature, model card, manifest.

    Every file's sha256 is recorded in manifest.json; the directory is zipped beside it.
    """
    from ..package.builder import build_package

    ws = open_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"packaging {model}", total=None)
        result = build_package(ws, model, out, zip_=not no_zip, pmml=pmml)
    emit(result, as_json)
