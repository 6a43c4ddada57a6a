"""Find the package directory a model reference names, for every serving pattern.

``mlstrata serve``, ``predict``, ``precompute`` and ``package --wheel`` all take the same
``MODEL`` argument:

- a package directory (one holding ``manifest.json``) — no workspace needed;
- ``NAME`` or ``NAME@N`` — the workspace's model (latest, or version N) and its package in
  ``packages/NAME-N``;
- an online model's ``NAME`` once frozen by ``mlstrata online snapshot`` (its snapshot
  ``NAME@N`` is a model like the others, with a River package);
- ``NAME@ALIAS`` (e.g. ``credit@champion``, the registered name) — the registry version the
  alias points at, and the package of the workspace model it was registered from (``NAME@N``
  that is no workspace model is looked up in the registry too). Resolving it again later finds
  where the alias points *then*, which is how a server follows a promotion or a rollback.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import RefNotFoundError
from ..runtime.manifest import MANIFEST_FILE, is_package_dir
from ..workspace import Artifact, Workspace

__all__ = ["is_package_dir", "locate_package", "package_dir"]


def package_dir(ws: Workspace, model: Artifact) -> Path:
    """Where ``mlstrata package`` puts the package of ``model`` by default."""
    return ws.root / "packages" / f"{model.name}-{model.version}"


def locate_package(ref: str, ws: Workspace | None) -> Path:
    """The package directory ``ref`` names now (see the module docstring)."""
    if is_package_dir(ref):
        return Path(ref).resolve()
    if ws is None:
        raise RefNotFoundError(f"'{ref}' is not a package directory (no {MANIFEST_FILE}) and "
                               "there is no workspace to look it up in; pass a package path or "
                               "run inside a project")
    model = _model_for(ws, ref)
    directory = package_dir(ws, model)
    if not (directory / MANIFEST_FILE).is_file():
        raise RefNotFoundError(f"model {model.ref} has no package in {directory}; build it with "
                               f"'mlstrata package {model.ref}'")
    return directory


def _model_for(ws: Workspace, ref: str) -> Artifact:
    """The workspace model ``ref`` names, directly or through a registered version."""
    _, _, which = ref.partition("@")
    if not which or which.isdigit():
        try:
            return ws.resolve(ref, ("model",))
        except RefNotFoundError:
            _refuse_unsnapshotted_online(ws, ref)
            if not which:
                raise
    from .registry import show

    version = show(ws, ref)
    model_id = getattr(version, "model_id", None)
    if not model_id:
        raise RefNotFoundError(f"registry version {ref} was not registered by mlstrata (no "
                               "model id tag); serve its package directory instead")
    return ws.get(model_id)


def _refuse_unsnapshotted_online(ws: Workspace, ref: str) -> None:
    """Say how to get a package when ``ref`` names an online model that was never frozen."""
    try:
        ws.resolve(ref.partition("@")[0], ("online",))
    except RefNotFoundError:
        return
    raise RefNotFoundError(f"'{ref}' is an online model with no snapshot yet, so it has no "
                           f"package; freeze it with 'mlstrata online snapshot {ref}' (or "
                           f"serve it live with 'mlstrata serve --online {ref}')")
