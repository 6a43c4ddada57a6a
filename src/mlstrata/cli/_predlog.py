"""Where a command logs the predictions it answers: the workspace's log, or ``monitor.log``.

``mlstrata serve``, ``predict`` and ``precompute`` log by default when the model comes from a
workspace — a ``NAME``, or a package directory inside a project (``packages/NAME-N``) — into
``<project>/.mlstrata/predictions/`` or where ``monitor.log`` in ``mlstrata.yaml`` says (a
directory, relative to the project, or a ``postgresql://`` URL). ``--no-log`` turns it off;
``--log`` insists, and is refused outside a workspace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import MlstrataError, WorkspaceError
from ..runtime.manifest import is_package_dir

if TYPE_CHECKING:  # imported when used: 'mlstrata serve PATH --help' stays lean
    from ..predlog import PredictionLog
    from ..workspace import Workspace

__all__ = ["LogOption", "batch_log", "log_target", "log_workspace", "workspace_log"]

LogOption = Annotated[bool | None, typer.Option(
    "--log/--no-log", help="Log every prediction (on by default for a model from a workspace: "
                           "<project>/.mlstrata/predictions or monitor.log).",
    show_default=False)]


def log_workspace(model: str, workspace: Path | None) -> Workspace | None:
    """The workspace a model's predictions are logged in: ``-w``, the package's own project
    (for a package directory), else the current one; None when there is none."""
    from ..workspace import Workspace

    if workspace is not None or not is_package_dir(model):
        return Workspace.find(workspace)
    for start in (Path(model).resolve(), None):
        try:
            return Workspace.find(start)
        except WorkspaceError:
            continue
    return None


def log_target(ws: Workspace | None, wanted: bool | None) -> str | None:
    """The log directory or database URL (None: no logging) for ``--log/--no-log``."""
    if wanted is False:
        return None
    if ws is None:
        if wanted:
            raise MlstrataError("--log needs a workspace to log into (the model is a package "
                                "directory outside any project); run inside a project, pass "
                                "-w DIR, or drop --log")
        return None
    return workspace_log(ws)


def workspace_log(ws: Workspace) -> str:
    """The workspace's prediction log: ``monitor.log`` (a directory, relative to the project,
    or a database URL), else ``.mlstrata/predictions``."""
    configured = ws.config.monitor.log
    if configured is None:
        return str(ws.store / "predictions")
    if configured.startswith(("postgresql://", "postgres://")):
        return configured
    path = Path(configured).expanduser()
    return str(path if path.is_absolute() else ws.root / path)


@contextlib.contextmanager
def batch_log(model: str, workspace: Path | None,
              wanted: bool | None) -> Iterator[PredictionLog | None]:
    """The prediction log of a batch run (None when off), closed — everything written — at
    the end of the block."""
    if wanted is False:
        yield None
        return
    ws = log_workspace(model, workspace)
    target = log_target(ws, wanted)
    if target is None or ws is None:
        yield None
        return
    from ..predlog import open_log, read_salt

    log = open_log(target, salt=read_salt(ws.store))
    try:
        yield log
    finally:
        log.close()
