"""Quarantined events: logged, never deleted, but skipped by learning until a person decides.

When the guard (:mod:`.guard`) rolls a model back, the events of the suspect window stay in the
event log and are listed here, in ``.mlstrata/online/<name>/quarantine.json`` (written
atomically beside the log). An entry is ``quarantined`` (skipped), ``dropped`` (a person
confirmed it: skipped for good) or ``released`` (a person cleared it: learnt again, by a rebuild
from a checkpoint older than it). Recovery skips the events of every quarantined or dropped
entry, and each checkpoint records in its metadata the ranges it skipped (``quarantine``), so a
checkpoint is used only when it skipped exactly what is skipped now (:func:`reflects`).

>>> q = Quarantine([])
>>> q.add(5, 7, reason="test").id
1
>>> q.skipped(), 6 in q.skip_set(), 8 in q.skip_set()
([[5, 7]], True, False)
>>> reflects({"quarantine": []}, q, 4), reflects({"quarantine": []}, q, 5)
(True, False)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .._atomic import write_text
from ..errors import ConfigError
from ..workspace import Workspace

__all__ = ["QUARANTINE_FILE", "Quarantine", "QuarantineEntry", "quarantine_path", "reflects"]

QUARANTINE_FILE = "quarantine.json"
Status = Literal["quarantined", "released", "dropped"]


@dataclass
class QuarantineEntry:
    """Events ``first``..``last`` (inclusive), why and when they were quarantined."""

    id: int
    first: int
    last: int
    status: Status = "quarantined"
    reason: str = ""
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    decided_at: str | None = None

    @property
    def skipped(self) -> bool:
        """Whether learning skips these events."""
        return self.status != "released"

    @property
    def events(self) -> int:
        return self.last - self.first + 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events": self.events}


class Quarantine:
    """The quarantine list of one online model (in memory; :meth:`save` persists it)."""

    def __init__(self, entries: Iterable[QuarantineEntry], path: Path | None = None) -> None:
        self.entries = list(entries)
        self.path = path
        self._skip: frozenset[int] | None = None

    @classmethod
    def load(cls, path: Path) -> Quarantine:
        """The list stored at ``path`` (empty when there is none)."""
        if not path.is_file():
            return cls([], path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls([QuarantineEntry(**{k: v for k, v in e.items() if k != "events"})
                    for e in data["entries"]], path)

    def save(self) -> None:
        """Write the list atomically (no-op for an in-memory list)."""
        self._skip = None
        if self.path is not None:
            body = {"format": 1, "entries": [e.to_dict() for e in self.entries]}
            write_text(self.path, json.dumps(body, indent=2) + "\n")

    def add(self, first: int, last: int, reason: str) -> QuarantineEntry:
        """Quarantine events ``first``..``last`` and persist the list."""
        entry = QuarantineEntry(max((e.id for e in self.entries), default=0) + 1, first, last,
                                reason=reason)
        self.entries.append(entry)
        self.save()
        return entry

    def decide(self, which: str, status: Status) -> list[QuarantineEntry]:
        """Release or drop entry ``which`` (an id) or ``all`` undecided ones; persisted."""
        pending = [e for e in self.entries if e.status == "quarantined"]
        if which == "all":
            chosen = pending
        else:
            chosen = [e for e in self.entries if str(e.id) == which]
            if not chosen:
                known = ", ".join(str(e.id) for e in self.entries) or "none"
                raise ConfigError(f"no quarantine entry {which!r} (entries: {known})")
            if chosen[0].status != "quarantined":
                raise ConfigError(f"quarantine entry {which} is {chosen[0].status} already")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for entry in chosen:
            entry.status, entry.decided_at = status, now
        self.save()
        return chosen

    def skipped(self) -> list[list[int]]:
        """The skipped ranges ``[first, last]``, in order (what a checkpoint records)."""
        return sorted([e.first, e.last] for e in self.entries if e.skipped)

    def skip_set(self) -> frozenset[int]:
        """Every skipped sequence number."""
        if self._skip is None:
            self._skip = frozenset(n for first, last in self.skipped()
                                   for n in range(first, last + 1))
        return self._skip


def quarantine_path(ws: Workspace, name: str) -> Path:
    """Where the online model ``name`` keeps its quarantine list (beside its event log)."""
    return ws.store / "online" / name / QUARANTINE_FILE


def _clip(ranges: Iterable[Iterable[int]], upto: int) -> list[list[int]]:
    out = []
    for first, last in (list(r) for r in ranges):
        if first <= upto:
            out.append([first, min(last, upto)])
    return sorted(out)


def reflects(meta: Mapping[str, Any], quarantine: Quarantine, upto: int) -> bool:
    """Whether a checkpoint (its ``meta``) after event ``upto`` skipped exactly the events the
    quarantine skips now (a checkpoint from before any quarantine skipped none)."""
    return _clip(meta.get("quarantine") or [], upto) == _clip(quarantine.skipped(), upto)
