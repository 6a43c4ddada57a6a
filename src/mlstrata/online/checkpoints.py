"""Checkpoints: an online model's state as a workspace artifact, loaded only once verified.

A checkpoint is a pickle of ``{"spec", "seq", "model"}`` — the River pipeline after event
``seq`` — and, for a guarded model, ``"guard"``: the guard's state after the same event
(:meth:`~.guard.GuardedModel.state`). It is stored as an ``online-checkpoint`` artifact named
``<model>.checkpoint``. Its id is the sha256 of its bytes (the store is content-addressed);
its lineage names the model's spec and the previous checkpoint, and its metadata the event
range it added (``first_event``..``last_event``) and the River version that wrote it.

Unpickling runs code, so :func:`load_checkpoint` reads the bytes once, hashes them, and
unpickles them only when the hash equals the artifact's id; a changed or damaged file raises
:class:`CheckpointCorruptError` and is never unpickled (recovery then falls back to the
previous checkpoint, see :mod:`.recovery`).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import WorkspaceError
from ..workspace import Artifact, Workspace

__all__ = ["CHECKPOINT_KIND", "CheckpointCorruptError", "LoadedCheckpoint", "Snapshot",
           "checkpoints", "load_checkpoint", "river_version", "save_checkpoint", "snapshot"]

CHECKPOINT_KIND = "online-checkpoint"
_FORMAT = 1


class CheckpointCorruptError(WorkspaceError):
    """A checkpoint's bytes do not match its sha256 (or are missing); it was not loaded."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A verified checkpoint: the pipeline it holds and the last event in it."""

    artifact: Artifact
    seq: int
    model: Any
    guard: Any = None
    """The guard's state after event ``seq`` (``None``: written by an unguarded model)."""


@dataclass(frozen=True)
class Snapshot:
    """A model pickled after event ``seq``, not stored yet (pickling needs the model still;
    storing does not, so it can run without holding the model's lock)."""

    seq: int
    payload: bytes
    meta: Mapping[str, Any] = field(default_factory=dict)


def snapshot(spec: Artifact, model: Any, seq: int,
             meta: Mapping[str, Any] | None = None, guard: Any = None) -> Snapshot:
    """Pickle ``model`` (after event ``seq``) for the online model ``spec``, with the guard's
    ``guard`` state when there is one; ``meta`` goes into the checkpoint's metadata (the
    quarantine it reflects, see :mod:`.quarantine`)."""
    body = {"format": _FORMAT, "spec": spec.id, "seq": seq, "model": model,
            **({"guard": guard} if guard is not None else {})}
    payload = pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL)
    return Snapshot(seq, payload, dict(meta or {}))


def save_checkpoint(ws: Workspace, spec: Artifact, taken: Snapshot,
                    previous: Artifact | None) -> Artifact:
    """Store a snapshot as the next checkpoint of the online model ``spec``."""
    first = int(previous.meta["last_event"]) + 1 if previous is not None else 1
    meta = {"online": spec.name, "spec": spec.id, "first_event": first,
            "last_event": taken.seq, "river": river_version(), "format": _FORMAT, **taken.meta}
    inputs = {"spec": spec.id, **({"previous": previous.id} if previous is not None else {})}
    return ws.put_bytes(taken.payload, suffix=".pkl", kind=CHECKPOINT_KIND,
                        name=f"{spec.name}.checkpoint", meta=meta, inputs=inputs,
                        description=f"online model {spec.name} after event {taken.seq}")


def river_version() -> str:
    """The installed River's version (recorded with each checkpoint)."""
    from importlib.metadata import version

    return version("river")


def checkpoints(ws: Workspace, spec: Artifact) -> list[Artifact]:
    """The checkpoints of the online model ``spec``, newest first."""
    mine = [a for a in ws.artifacts(CHECKPOINT_KIND) if a.meta.get("spec") == spec.id]
    return sorted(mine, key=lambda a: a.version, reverse=True)


def load_checkpoint(ws: Workspace, artifact: Artifact) -> LoadedCheckpoint:
    """The checkpoint's pipeline, unpickled only after its bytes' sha256 matched its id."""
    path = ws.path_for_read(artifact, purpose="online-recovery")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointCorruptError(f"{artifact.ref}: the checkpoint file cannot be read "
                                     f"({exc.strerror}); it was not loaded") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.id:
        raise CheckpointCorruptError(f"{artifact.ref}: sha256 {digest[:12]}... does not match "
                                     f"its id {artifact.id[:12]}...; the file was changed or "
                                     "damaged, so it was not unpickled")
    body = pickle.loads(data)  # noqa: S301 - verified above: these are the bytes we stored
    return LoadedCheckpoint(artifact, int(body["seq"]), body["model"], body.get("guard"))
