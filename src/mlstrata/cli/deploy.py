"""``mlstrata deploy docker|k8s|serverless``: turn a package into a deployable artifact.

Each command renders one kind of artifact from a model's package into ``--out`` (written whole
or not at all; a directory with files in it is refused unless ``--force``) and prints what it
wrote and the commands that ship it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import WorkspaceOption  # noqa: F401  (the deploy commands take -w)

__all__ = ["register"]

deploy_app = typer.Typer(
    name="deploy", no_args_is_help=True,
    help="Turn a model's package into a Docker build context, Kubernetes/KServe manifests or a "
         "serverless bundle.")

ModelArgument = Annotated[str, typer.Argument(
    help="Package directory, NAME, NAME@N or NAME@ALIAS (registry).", show_default=False)]
OutOption = Annotated[Path, typer.Option(
    "--out", "-o", help="Directory to write (new or empty; see --force).", show_default=False)]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Replace --out even when it holds files.")]


def register(app: typer.Typer) -> None:
    """Add the ``deploy`` command group to ``app``."""
    app.add_typer(deploy_app)


def package_for(model: str, workspace: Path | None) -> Path:
    """The package directory ``model`` names (a package path, or a workspace model)."""
    from ..package.locate import locate_package
    from ..runtime.manifest import is_package_dir
    from ..workspace import Workspace

    if is_package_dir(model):
        return Path(model)
    return locate_package(model, Workspace.find(workspace))

