"""What makes an online model survive a crash: its event log and its checkpoint schedule.

:class:`Durability` ties one model to its write-ahead event log (:mod:`.eventlog`) and its
checkpoints (:mod:`.checkpoints`): events are logged before they are learnt, and a checkpoint
is taken every ``events`` learnt events or ``seconds`` seconds (whichever comes first) and when
the model is closed. Taking one is two steps: the model is pickled while its lock is held
(:meth:`Durability.snapshot_if_due`), and stored — hashed, written, fsynced, cataloged —
after the lock is released (:meth:`Durability.store`), so predictions wait only for the pickle.
A model without one (a replay's scratch copy) learns in memory only.

A guarded model sets :attr:`Durability.companion`: its guard's state is pickled into every
checkpoint beside the pipeline. The guard sees a batch only after the model learnt it, so then a
due checkpoint is deferred (:meth:`Durability.snapshot_if_due` only notes it) until the guard
takes it with :meth:`Durability.take_due`, both at the same event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MlstrataError
from ..workspace import Artifact, Workspace
from .checkpoints import Snapshot, save_checkpoint, snapshot
from .eventlog import EventLog

__all__ = ["CheckpointPolicy", "Durability", "events_dir"]

_log = logging.getLogger("mlstrata.online")


@dataclass(frozen=True)
class CheckpointPolicy:
    """When to checkpoint: after ``events`` learnt events or ``seconds`` seconds."""

    events: int = 10_000
    seconds: float = 300.0


def events_dir(ws: Workspace, name: str) -> Path:
    """Where the online model ``name`` keeps its event log."""
    return ws.store / "online" / name / "events"


class Durability:
    """The event log and checkpoints of one online model (see the module docstring)."""

    def __init__(self, ws: Workspace, spec: Artifact, policy: CheckpointPolicy) -> None:
        self.ws = ws
        self.spec = spec
        self.policy = policy
        self.log = EventLog(events_dir(ws, spec.name))
        self.last: Artifact | None = None
        self.checkpoint_meta: dict[str, Any] = {}
        self.companion: Callable[[], Any] | None = None
        """State pickled into each checkpoint with the model (a guard's); see the module."""
        self._due = False
        self._taken = -1
        self._since = time.monotonic()
        self._storing = threading.Lock()

    def resume_from(self, checkpoint: Artifact | None) -> None:
        """Continue the checkpoint chain (and schedule) from the checkpoint a model was opened
        from."""
        self.last = checkpoint
        self._taken = int(checkpoint.meta["last_event"]) if checkpoint is not None else -1

    def append(self, payloads: Sequence[bytes]) -> int:
        """Log events durably; the sequence number of the last one."""
        return self.log.append(payloads)

    def snapshot_if_due(self, model: Any, seq: int) -> Snapshot | None:
        """The model pickled when the policy says a checkpoint is due (call with the model's
        lock held; store it with :meth:`store` after releasing the lock)."""
        due = seq - self._taken >= self.policy.events \
            or time.monotonic() - self._since >= self.policy.seconds
        if not due or seq == self._taken:
            return None
        if self.companion is not None:
            self._due = True
            return None
        return self._take(model, seq)

    def mark_due(self) -> None:
        """Take a checkpoint at the next :meth:`take_due` (the guard, after a rollback)."""
        self._due = True

    def take_due(self, model: Any, seq: int) -> Snapshot | None:
        """The deferred checkpoint, pickled now with the companion's state (call with the
        model's lock held, once the companion has seen every event up to ``seq``)."""
        if not self._due or seq == self._taken:
            return None
        self._due = False
        return self._take(model, seq)

    def store(self, taken: Snapshot) -> Artifact:
        """Store a snapshot as a checkpoint, unless one as new is stored already (stores from
        several threads are serialized, so each names the one before it)."""
        with self._storing:
            if self.last is None or int(self.last.meta["last_event"]) < taken.seq:
                self.last = save_checkpoint(self.ws, self.spec, taken, self.last)
            return self.last

    def store_quietly(self, taken: Snapshot) -> None:
        """:meth:`store` a periodic checkpoint; a failure is logged, not raised: the events are
        learnt and durable already, recovery only replays more of them, and the next
        checkpoint tries again."""
        try:
            self.store(taken)
        except (MlstrataError, OSError) as exc:
            _log.warning("online model %s: the checkpoint after event %d failed (%s); the next "
                         "one is taken after %d more events", self.spec.name, taken.seq, exc,
                         self.policy.events)

    def close(self, model: Any, seq: int) -> Artifact:
        """A last checkpoint (call with the model's lock held), then the log closed (released
        for other processes)."""
        try:
            return self.store(self._take(model, seq))
        finally:
            self.log.close()

    def _take(self, model: Any, seq: int) -> Snapshot:
        self._taken, self._since = seq, time.monotonic()
        companion = self.companion() if self.companion is not None else None
        return snapshot(self.spec, model, seq, self.checkpoint_meta, companion)
