"""Opening an online model: the last good checkpoint plus the events logged after it.

River is deterministic for a seed and an order of events, so a model rebuilt this way equals,
event for event, the one an uninterrupted run would hold — after a clean shutdown or a
``kill -9`` alike. Checkpoints are tried newest first; one whose sha256 does not match is
refused, said so in :attr:`Recovery.notes`, and the previous one used (the event log holds every
event since the first, so any checkpoint will do). With none left, the model is rebuilt from
its spec: a fresh pipeline and, when it was warm-started, the same dataset rows again.

Quarantined events (:mod:`.quarantine`, set aside by the guard) stay in the log but are skipped
by the replay, and only a checkpoint that skipped exactly the same events is used — so a model
recovered after a rollback equals the guarded run, and releasing events rebuilds from a
checkpoint older than them.

A guarded model (:func:`~.guard.open_guarded`) passes ``tail``: its guard, restored from the
state the checkpoint holds, learns the events after the checkpoint itself, watching them as it
watched them the first time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ..workspace import Artifact, Workspace
from .checkpoints import CheckpointCorruptError, checkpoints, load_checkpoint, river_version
from .durability import CheckpointPolicy, Durability, events_dir
from .estimators import build_pipeline
from .eventlog import EventLogError, last_event, read_events
from .events import EventRefusedError
from .learner import OnlineModel
from .quarantine import Quarantine, quarantine_path, reflects
from .spec import SPEC_KIND, OnlineSpec

__all__ = ["Recovery", "TailLearner", "WarmStart", "dataset_rows", "open_online", "read_spec",
           "warm_start"]

_CHUNK = 1000


@dataclass
class Recovery:
    """How a model was opened: from which checkpoint, how many logged events were replayed,
    and what went wrong on the way (a corrupted checkpoint, another River version)."""

    checkpoint: Artifact | None
    replayed: int = 0
    notes: list[str] = field(default_factory=list)
    quarantine: Quarantine = field(default_factory=lambda: Quarantine([]))
    skipped: int = 0
    guard: Any = None
    """The guard's state the checkpoint holds (``None``: none, or no checkpoint)."""


TailLearner = Callable[[Sequence[tuple[int, bytes]]], None]
"""Learns a chunk of logged ``(seq, payload)`` events after the checkpoint, quarantined ones
left out (the model's ``seq`` is set to the chunk's last event afterwards)."""


@dataclass(frozen=True)
class WarmStart:
    """What a warm start learnt from a dataset version, and what it refused."""

    learnt: int
    refused: int
    first_refusal: str | None = None


def read_spec(ws: Workspace, name: str) -> tuple[Artifact, OnlineSpec]:
    """The spec artifact of the online model ``name`` and the spec it holds."""
    artifact = ws.resolve(name, (SPEC_KIND,))
    text = ws.path_for_read(artifact, purpose="online").read_text(encoding="utf-8")
    return artifact, OnlineSpec.from_json(text)


def open_online(ws: Workspace, name: str, *, writable: bool = True,
                policy: CheckpointPolicy | None = None,
                tail: Callable[[OnlineModel, Recovery], TailLearner] | None = None,
                ) -> tuple[OnlineModel, Recovery]:
    """The online model ``name`` as it stood after its last logged event.

    ``writable`` opens its event log for new events — taking the log's lock first, so no other
    process appends while it is read —; otherwise the model is a scratch copy that learns in
    memory only. ``tail(model, recovery)``, called with the model as its checkpoint holds it,
    returns what learns the logged events after it (default: the model itself).
    """
    artifact, spec = read_spec(ws, name)
    durability = Durability(ws, artifact, policy or CheckpointPolicy()) if writable else None
    try:
        model, recovery = _start(ws, artifact, spec,
                                 Quarantine.load(quarantine_path(ws, spec.name)))
        _replay_log(ws, model, recovery, tail(model, recovery) if tail is not None else None)
    except BaseException:
        if durability is not None:
            durability.log.close()
        raise
    if durability is not None:
        durability.resume_from(recovery.checkpoint)
        durability.checkpoint_meta["quarantine"] = recovery.quarantine.skipped()
        model.durability = durability
    return model, recovery


def warm_start(model: OnlineModel, rows: Iterable[Mapping[str, Any]]) -> WarmStart:
    """Learn ``rows`` in order before the first logged event (those the contract refuses are
    counted and skipped)."""
    learnt = refused = 0
    first: str | None = None
    for chunk in _chunks(rows):
        events = []
        for row in chunk:
            try:
                events.append(model.checker.learn_event(row))
            except EventRefusedError as exc:
                refused, first = refused + 1, first or str(exc)
        model.warm_up(events)
        learnt += len(events)
    return WarmStart(learnt, refused, first)


def _replay_log(ws: Workspace, model: OnlineModel, recovery: Recovery,
                learner: TailLearner | None) -> None:
    """Learn the logged events after the model's checkpoint; refuse a log that ends before it."""
    directory = events_dir(ws, model.spec.name)
    skip = recovery.quarantine.skip_set()
    for chunk in _chunks(read_events(directory, model.seq)):
        kept = [(seq, payload) for seq, payload in chunk if seq not in skip]
        if learner is not None:
            learner(kept)
        else:
            model.replay_logged([payload for _, payload in kept])
        model.seq = chunk[-1][0]
        recovery.replayed += len(kept)
        recovery.skipped += len(chunk) - len(kept)
    logged = last_event(directory)
    if logged < model.seq:
        source = recovery.checkpoint.ref if recovery.checkpoint else "the warm start"
        raise EventLogError(f"{source} holds events up to {model.seq} but the event log in "
                            f"{directory} ends at event {logged}: it was truncated or removed; "
                            "restore it from a backup")


def _start(ws: Workspace, artifact: Artifact, spec: OnlineSpec,
           quarantine: Quarantine) -> tuple[OnlineModel, Recovery]:
    """The newest checkpoint that verifies and skipped exactly the events quarantined now, or
    the model rebuilt from its spec."""
    notes: list[str] = []
    unfit = 0
    for candidate in checkpoints(ws, artifact):
        if not reflects(candidate.meta, quarantine, int(candidate.meta["last_event"])):
            unfit += 1
            continue
        if unfit:
            notes.append(f"{unfit} newer checkpoint(s) passed over: they do not reflect the "
                         "current quarantine (events quarantined or released since)")
            unfit = 0
        try:
            loaded = load_checkpoint(ws, candidate)
        except CheckpointCorruptError as exc:
            notes.append(f"{exc}; using the checkpoint before it")
            continue
        if candidate.meta.get("river") != river_version():
            notes.append(f"{candidate.ref} was written by River {candidate.meta.get('river')}, "
                         f"this is {river_version()}: replayed events may differ slightly")
        return OnlineModel(spec, loaded.model, loaded.seq), Recovery(
            candidate, notes=notes, quarantine=quarantine, guard=loaded.guard)
    model = OnlineModel(spec, build_pipeline(spec))
    if spec.warm_start is not None:
        warm_start(model, dataset_rows(ws, spec.warm_start))
    if notes:
        notes.append("no checkpoint left: rebuilt from the spec"
                     + (" and its warm start" if spec.warm_start else "")
                     + ", replaying every logged event")
    return model, Recovery(None, notes=notes, quarantine=quarantine)


def dataset_rows(ws: Workspace, dataset_id: str) -> Iterator[dict[str, Any]]:
    """The rows of a dataset version, in order (what a warm start learns)."""
    from .reading import read_records

    artifact = ws.get(dataset_id)
    for chunk in read_records(ws.path_for_read(artifact, purpose="online-warm-start")):
        yield from chunk


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk
