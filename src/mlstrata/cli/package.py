"""``mlstrata package MODEL``: build the self-describing model package (ONNX, native, MLflow...).

With ``--wheel`` the package also becomes ``dist/<model>-<version>-py3-none-any.whl``, a library
whose only dependencies are numpy and onnxruntime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import RefNotFoundError
from ._common import JsonOption, WorkspaceOption, emit, open_workspace, progress_bar

if TYPE_CHECKING:
    from ..package.builder import PackageResult
    from ..reports import Report
    from ..workspace import Workspace

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``package`` to ``app``."""
    app.command("package")(package)


def package(
    model: Annotated[str, typer.Argument(
        help="Model ref: NAME, NAME@N or an id prefix; with --wheel also NAME@ALIAS or a "
             "package directory.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Package directory (default: packages/NAME-VERSION in the project).")] = None,
    no_zip: Annotated[bool, typer.Option(
        "--no-zip", help="Do not write the .zip beside the directory.")] = False,
    pmml: Annotated[bool, typer.Option(
        "--pmml", help="Also export model.pmml (needs sklearn2pmml and Java).")] = False,
    wheel: Annotated[bool, typer.Option(
        "--wheel", help="Build a pip-installable wheel of the package (only numpy and "
                        "onnxruntime needed to call it); an existing package is reused.")] = False,
    dist: Annotated[Path, typer.Option(
        "--dist", help="Directory --wheel writes <model>-<version>-py3-none-any.whl into.")
    ] = Path("dist"),
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Package MODEL: ONNX (parity measured), native, MLflow, signature, model card, manifest.

    Every file's sha256 is recorded in manifest.json; the directory is zipped beside it.

    --wheel: a wheel with a predict() API; pip install it, 'from credit_model import predict'.
    """
    from ..package.builder import build_package

    def build(ws: Workspace) -> PackageResult:
        return build_package(ws, model, out, zip_=not no_zip, pmml=pmml)

    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"packaging {model}", total=None)
        result = (_wheel(_package_for_wheel(model, out, workspace, build), dist) if wheel
                  else build(open_workspace(workspace)))
    emit(result, as_json)


def _wheel(directory: Path, dist: Path) -> Report:
    """Build the wheel of the package in ``directory``; describe it."""
    from ..package.wheel import WheelResult, build_wheel
    from ..runtime.manifest import load_manifest

    return WheelResult(build_wheel(directory, dist).resolve(), directory, load_manifest(directory))


def _package_for_wheel(model: str, out: Path | None, workspace: Path | None,
                       build: Callable[[Workspace], PackageResult]) -> Path:
    """The package --wheel wraps: MODEL itself when it is a path (refs have no ``/``), the
    model's existing package, or one built now (always built when --out names where)."""
    from ..package.locate import is_package_dir, locate_package

    if is_package_dir(model) or "/" in model:
        return Path(model).resolve()
    ws = open_workspace(workspace)
    if out is None:
        try:
            return locate_package(model, ws)
        except RefNotFoundError:
            pass
    return build(ws).path
