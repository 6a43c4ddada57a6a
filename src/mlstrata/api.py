"""The Python API: one function per CLI command, returning report objects (Jupyter renders them).

>>> import tempfile, pathlib
>>> ws = init(pathlib.Path(tempfile.mkdtemp()) / "demo")
>>> ws.artifacts()
[]
"""

from __future__ import annotations

from pathlib import Path

from .workspace import Workspace

__all__ = ["init", "open_workspace"]


def init(directory: str | Path = ".", project: str | None = None) -> Workspace:
    """Create (or reopen) a project: ``mlstrata.yaml`` and the ``.mlstrata/`` workspace."""
    return Workspace.init(Path(directory), project)


def open_workspace(directory: str | Path | None = None) -> Workspace:
    """Open the workspace in ``directory`` or the nearest parent that has one."""
    return Workspace.find(Path(directory) if directory is not None else None)
