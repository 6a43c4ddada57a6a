"""What makes an online model survive a crash: its event log and its checkpoint schedule.

:class:`Durability` ties one model to its write-ahead event log (:mod:`.eventlog`) and its
checkpoints (:mod:`.checkpoints`): events are logged before they are learnt, and a checkpoint
is taken every ``events`` learnt events or ``seconds`` seconds (whichever comes first) and when
the model is closed. A model without one (a replay's scratch copy) learns in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..workspace import Artifact, Workspace
from .checkpoints import save_checkpoint
from .eventlog import EventLog

__all__ = ["CheckpointPolicy", "Durability", "events_dir"]


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

    def __init__(self, ws: Workspace, spec: Artifact, policy: CheckpointPolicy,
                 last: Artifact | None) -> None:
        self.ws = ws
        self.spec = spec
        self.policy = policy
        self.last = last
        self.log = EventLog(events_dir(ws, spec.name))
        self._since = time.monotonic()

    def append(self, payloads: Sequence[bytes]) -> int:
        """Log events durably; the sequence number of the last one."""
        return self.log.append(payloads)

    def after_learning(self, model: Any, seq: int) -> None:
        """Checkpoint when the policy says one is due."""
        done = int(self.last.meta["last_event"]) if self.last is not None else -1
        due = seq - done >= self.policy.events \
            or time.monotonic() - self._since >= self.policy.seconds
        if due:
            self.checkpoint(model, seq)

    def checkpoint(self, model: Any, seq: int) -> Artifact:
        """Store ``model`` after event ``seq`` (nothing new when the last checkpoint holds it)."""
        if self.last is None or int(self.last.meta["last_event"]) != seq:
            self.last = save_checkpoint(self.ws, self.spec, model, seq, self.last)
        self._since = time.monotonic()
        return self.last

    def close(self, model: Any, seq: int) -> Artifact:
        """A last checkpoint, then the log closed (released for other processes)."""
        try:
            return self.checkpoint(model, seq)
        finally:
            self.log.close()
