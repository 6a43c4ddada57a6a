"""The guard: roll an online model back when a burst of poisoned events corrupts it.

:class:`GuardedModel` wraps an :class:`~.learner.OnlineModel` with the same ``predict``,
``learn``, ``learn_events`` and ``close`` calls. For every learnt event it

1. scores the live model's prediction (made just before learning it) and feeds the error to
   River's ADWIN; a rise in the error opens a *suspect episode* starting where ADWIN cut its
   window;
2. scores a *shadow* copy of the model on the same event — the shadow learns every event
   ``shadow_delay`` events late, so a burst shorter than the delay has not reached it yet;
3. while an episode is open, compares their accuracy over the last ``window`` events. A real
   drift hurts both (the live model, learning first, recovers first: live ≥ shadow); a poisoned
   burst is learnt by the live model first, and once the burst ends the live model is the worse
   one. When it is worse by more than ``margin``, the guard **rolls back**: the events from the
   episode's start to now are quarantined (:mod:`.quarantine`, still in the event log), the
   pipeline is restored from an in-memory snapshot taken before the episode and the events
   after that snapshot, minus the quarantined ones, are learnt again — exactly what recovery
   does from a checkpoint, so a recovered model equals the guarded run. An alert is logged on
   ``mlstrata.online`` and counted in :meth:`GuardedModel.counters`; serving goes on.

An episode that sees no such gap within ``shadow_delay + window`` events is closed as real
change. Guarded learning is serialized (one batch at a time) — batch learns for throughput.

The guard's state (ADWIN, windows, episode, shadow model, in-memory snapshots, counters) goes
into each checkpoint with the model (:meth:`GuardedModel.state`; the events it keeps are read
back from the event log), a checkpoint is taken after each rollback, and
:func:`open_guarded` restores it, then lets the guard learn the events logged after the
checkpoint itself: a guarded model restarted mid-stream goes on as if it had never stopped.
"""

from __future__ import annotations

import copy
import logging
import pickle
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

from ..config import GuardConfig
from ..workspace import Workspace
from .checkpoints import Snapshot
from .durability import CheckpointPolicy, events_dir
from .eventlog import EventLog, read_events
from .events import Event, decode_event, logged_forms
from .features import featurize
from .learner import Observer, OnlineModel, Prediction
from .quarantine import Quarantine, quarantine_path
from .recovery import Recovery, TailLearner, open_online, read_spec

__all__ = ["GuardedModel", "decide", "open_guarded"]

_log = logging.getLogger("mlstrata.online")


@dataclass
class _Episode:
    start: int
    opened: int


_STATE_FORMAT = 1
"""The layout of :meth:`GuardedModel.state`; a checkpoint with another starts the guard afresh."""


class GuardedModel:
    """An online model with a guard (see the module docstring); same calls as the model."""

    def __init__(self, model: OnlineModel, settings: GuardConfig,
                 quarantine: Quarantine | None = None,
                 restore: tuple[Mapping[str, Any], Mapping[int, bytes]] | None = None) -> None:
        """Guard ``model``; ``restore`` is a :meth:`state` taken after ``model.seq`` with the
        logged events it names (``seq → payload``), else the guard starts afresh."""
        from river import drift  # untyped: the detector is used through Any

        self.model = model
        self.spec = model.spec
        self.checker = model.checker
        self.settings = settings
        self.quarantine = quarantine if quarantine is not None else Quarantine([])
        self._drift: Any = drift
        self._lock = threading.Lock()
        self._adwin: Any = self._drift.ADWIN(delta=settings.delta)
        self._live: deque[float] = deque(maxlen=settings.window)
        self._shadow_scores: deque[float] = deque(maxlen=settings.window)
        self._episode: _Episode | None = None
        self._every = max(settings.window, settings.shadow_delay // 4)  # between snapshots
        keep = settings.shadow_delay + 4 * settings.window + 2 * self._every
        self._history: deque[tuple[int, bytes]] = deque(maxlen=keep)
        self._snapshots: deque[tuple[int, bytes]] = deque(maxlen=keep // self._every + 2)
        self._pending: deque[tuple[dict[str, Any], Any]] = deque()
        self.rollbacks = 0
        self.quarantined_events = 0
        self.changes = 0
        self.last_alert: str | None = None
        if restore is None:
            self._take_snapshot()
            self._reset_shadow()
        else:
            self._restore(*restore)

    @property
    def seq(self) -> int:
        return self.model.seq

    @property
    def durability(self) -> Any:
        return self.model.durability

    @property
    def pipeline(self) -> Any:
        return self.model.pipeline

    def predict(self, record: Mapping[str, Any]) -> Prediction:
        """The live model's answer."""
        return self.model.predict(record)

    def learn(self, record: Mapping[str, Any]) -> int:
        """Check, log durably, learn one labelled record, then guard; its sequence number."""
        return self.learn_events([self.checker.learn_event(record)])

    def learn_events(self, events: Sequence[Event], observe: Observer | None = None) -> int:
        """As :meth:`OnlineModel.learn_events`, then the guard's checks (maybe a rollback)."""
        if not events:
            return self.model.seq
        with self._lock:
            seen: list[tuple[Any, Prediction]] = []

            def watch(label: Any, prediction: Prediction) -> None:
                seen.append((label, prediction))
                if observe is not None:
                    observe(label, prediction)

            last = self.model.learn_events(events, observe=watch)
            first = last - len(events) + 1
            self._watch(list(zip(range(first, last + 1), logged_forms(events)[0],
                                 strict=True)), seen)
            due = self._due_checkpoint()
        if due is not None and self.model.durability is not None:
            self.model.durability.store_quietly(due)
        return last

    def learn_logged(self, logged: Sequence[tuple[int, bytes]]) -> None:
        """Learn and watch events read back from the event log (recovery's events after the
        checkpoint, with no durability attached yet): as :meth:`learn_events`, not logged
        again."""
        if not logged:
            return
        with self._lock:
            seen: list[tuple[Any, Prediction]] = []
            self.model.learn_events([decode_event(payload) for _, payload in logged],
                                    observe=lambda label, p: seen.append((label, p)))
            self.model.seq = logged[-1][0]
            self._watch(logged, seen)

    def state(self) -> dict[str, Any]:
        """The guard after the model's last event, as a checkpoint keeps it (called by the
        model's :class:`~.durability.Durability` while both locks are held). The events it
        holds are named by number only: they are in the event log."""
        return {"format": _STATE_FORMAT, "settings": self.settings.model_dump(),
                "seq": self.model.seq,
                "adwin": self._adwin, "live": list(self._live),
                "shadow_scores": list(self._shadow_scores),
                "episode": None if self._episode is None else [self._episode.start,
                                                               self._episode.opened],
                "history": [seq for seq, _ in self._history], "pending": len(self._pending),
                "snapshots": list(self._snapshots), "shadow": self._shadow.pipeline,
                "shadow_seq": self._shadow.seq, "last_alert": self.last_alert,
                "counters": [self.rollbacks, self.quarantined_events, self.changes]}

    def counters(self) -> dict[str, float]:
        """What a metrics endpoint exports: rollbacks, quarantined events, changes seen, the
        live and shadow accuracy over the last window."""
        return {"rollbacks": self.rollbacks, "quarantined_events": self.quarantined_events,
                "changes_detected": self.changes,
                "live_window_score": _mean(self._live), "shadow_window_score":
                    _mean(self._shadow_scores),
                "suspect": 1.0 if self._episode is not None else 0.0}

    def close(self) -> None:
        """Close the live model (a last checkpoint, with the guard's state)."""
        with self._lock:
            self.model.close()

    # -- the checks ----------------------------------------------------------------------------

    def _watch(self, logged: Sequence[tuple[int, bytes]],
               seen: Sequence[tuple[Any, Prediction]]) -> None:
        """Check each learnt event (``seq``, payload) with the live prediction made before it."""
        self._history.extend(logged)
        rows = featurize(self.spec, [decode_event(payload)["record"] for _, payload in logged])
        for (seq, _), (label, live), features in zip(logged, seen, rows, strict=True):
            self._observe(seq, label, live, features)
        if self._snapshots[-1][0] + self._every <= self.model.seq and self._episode is None:
            self._take_snapshot()

    def _due_checkpoint(self) -> Snapshot | None:
        """A checkpoint the model's durability deferred until the guard had seen its events."""
        durability = self.model.durability
        if durability is None:
            return None
        with self.model.lock:
            return durability.take_due(self.model.pipeline, self.model.seq)

    def _restore(self, state: Mapping[str, Any], logged: Mapping[int, bytes]) -> None:
        """Take up a :meth:`state` again; the kept events come back from the log."""
        self._adwin = state["adwin"]
        self._live.extend(state["live"])
        self._shadow_scores.extend(state["shadow_scores"])
        self._episode = None if state["episode"] is None else _Episode(*state["episode"])
        self._history.extend((seq, logged[seq]) for seq in state["history"])
        self._snapshots.extend((int(seq), payload) for seq, payload in state["snapshots"])
        self._shadow = OnlineModel(self.spec, state["shadow"], int(state["shadow_seq"]))
        pending = [decode_event(logged[seq]) for seq in
                   state["history"][len(state["history"]) - int(state["pending"]):]]
        rows = featurize(self.spec, [event["record"] for event in pending])
        self._pending = deque((features, self._shadow.encode_label(event["label"]))
                              for features, event in zip(rows, pending, strict=True))
        self.rollbacks, self.quarantined_events, self.changes = state["counters"]
        self.last_alert = state["last_alert"]

    def _observe(self, seq: int, label: Any, live: Prediction,
                 features: dict[str, Any]) -> None:
        shadow = self._shadow.predict_features(features)
        live_score, shadow_score = self._score(label, live), self._score(label, shadow)
        self._live.append(live_score)
        self._shadow_scores.append(shadow_score)
        before = self._adwin.estimation
        self._adwin.update(1.0 - live_score)
        if self._adwin.drift_detected and self._adwin.estimation > before:
            self.changes += 1
            if self._episode is None:
                start = max(seq - int(self._adwin.width), self._floor())
                self._episode = _Episode(start, seq)
        self._pending.append((features, self._shadow.encode_label(label)))
        if len(self._pending) > self.settings.shadow_delay:
            self._shadow.pipeline.learn_one(*self._pending.popleft())
        episode = self._episode
        if episode is None:
            return
        if len(self._live) == self.settings.window \
                and _mean(self._live) < _mean(self._shadow_scores) - self.settings.margin \
                and seq - episode.opened >= self.settings.window // 2:
            self._rollback(episode, seq)
        elif seq - episode.opened > self.settings.shadow_delay + self.settings.window:
            self._episode = None  # real change: the shadow caught up and was no better

    def _rollback(self, episode: _Episode, upto: int) -> None:
        """Quarantine ``episode.start..upto`` and rebuild the live model without them."""
        live_score, shadow_score = _mean(self._live), _mean(self._shadow_scores)
        oldest = self._history[0][0] - 1 if self._history else self.model.seq
        usable = [s for s in self._snapshots if oldest <= s[0] < episode.start]
        if not usable:
            _log.warning("online model %s: the guard saw the live model fall behind its shadow "
                         "but holds no snapshot before event %d; not rolled back",
                         self.spec.name, episode.start)
            self._episode = None
            return
        seq, payload = usable[-1]
        entry = self.quarantine.add(
            episode.start, upto,
            reason=f"live accuracy {live_score:.3f} < shadow {shadow_score:.3f} - margin "
                   f"{self.settings.margin} over the last {self.settings.window} events")
        skip = self.quarantine.skip_set()
        replay = [p for n, p in self._history if seq < n <= self.model.seq and n not in skip]
        model = self.model
        with model.lock:
            model.pipeline = pickle.loads(payload)  # noqa: S301 - our own in-memory pickle
            current = model.seq
            model.replay_logged(replay)
            model.seq = current
            if model.durability is not None:
                model.durability.checkpoint_meta["quarantine"] = self.quarantine.skipped()
                model.durability.mark_due()  # a restart goes on from after the rollback
        self.rollbacks += 1
        self.quarantined_events += entry.events
        self.last_alert = (f"online model {self.spec.name}: rolled back to event {seq} and "
                           f"quarantined events {entry.first}..{entry.last} (entry {entry.id}): "
                           f"{entry.reason}")
        _log.warning("%s; release or drop them with `mlstrata online quarantine %s`",
                     self.last_alert, self.spec.name)
        while self._snapshots and self._snapshots[-1][0] >= episode.start:
            self._snapshots.pop()
        self._take_snapshot()
        self._reset_shadow()
        self._episode = None
        self._adwin = self._drift.ADWIN(delta=self.settings.delta)
        self._live.clear()
        self._shadow_scores.clear()

    def _floor(self) -> int:
        """The earliest event a rollback can reach (after the oldest snapshot)."""
        oldest = self._history[0][0] - 1 if self._history else self.model.seq
        return max(self._snapshots[0][0], oldest) + 1

    def _take_snapshot(self) -> None:
        with self.model.lock:
            self._snapshots.append((self.model.seq, pickle.dumps(
                self.model.pipeline, protocol=pickle.HIGHEST_PROTOCOL)))

    def _reset_shadow(self) -> None:
        with self.model.lock:
            self._shadow = OnlineModel(self.spec, copy.deepcopy(self.model.pipeline),
                                       self.model.seq)
        self._pending = deque()

    def _score(self, label: Any, prediction: Prediction) -> float:
        """1 for a right class (0 wrong); a regressor: 1 / (1 + absolute error)."""
        if self.spec.task == "classification":
            return 1.0 if prediction.label == label else 0.0
        return 1.0 / (1.0 + abs(float(label) - float(prediction.value or 0.0)))


def _mean(values: deque[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def open_guarded(ws: Workspace, name: str, *, writable: bool = True,
                 policy: CheckpointPolicy | None = None,
                 settings: GuardConfig | None = None) -> tuple[GuardedModel, Recovery]:
    """:func:`~.recovery.open_online` with the guard on (``settings``: ``online.guard`` of
    mlstrata.yaml unless given), restored from the checkpoint's guard state when it holds one
    taken with the same settings, then learning the events logged after it. A writable model
    persists its quarantine beside its log and its guard's state in its checkpoints; a scratch
    copy keeps both in memory."""
    chosen = settings or ws.config.online.guard
    guards: list[GuardedModel] = []

    def tail(model: OnlineModel, recovery: Recovery) -> TailLearner:
        quarantine = recovery.quarantine
        if not writable:
            quarantine = Quarantine(quarantine.entries)
        elif quarantine.path is None:
            quarantine.path = quarantine_path(ws, model.spec.name)
        guards.append(GuardedModel(model, chosen, quarantine,
                                   _restorable(ws, model, recovery, chosen)))
        return guards[0].learn_logged

    model, recovery = open_online(ws, name, writable=writable, policy=policy, tail=tail)
    if model.durability is not None:
        model.durability.companion = guards[0].state
    return guards[0], recovery


def _restorable(ws: Workspace, model: OnlineModel, recovery: Recovery, settings: GuardConfig
                ) -> tuple[Mapping[str, Any], dict[int, bytes]] | None:
    """The checkpoint's guard state with the logged events it names, or None (said why in
    the recovery's notes when there was a checkpoint)."""
    state = recovery.guard
    why = ("holds no guard state (written by an unguarded model)" if state is None
           else "holds a guard state in another format (another mlstrata release)"
           if state.get("format") != _STATE_FORMAT
           else "holds a guard state taken with other online.guard settings"
           if state["settings"] != settings.model_dump()
           else "holds a guard state of another event" if state["seq"] != model.seq else "")
    if not why:
        seqs = state["history"]
        logged = dict(takewhile(lambda item: item[0] <= model.seq, read_events(
            events_dir(ws, model.spec.name), seqs[0] - 1))) if seqs else {}
        if all(seq in logged for seq in seqs):
            return state, logged
        why = "names events the event log does not hold"
    if recovery.checkpoint is not None:
        recovery.notes.append(f"{recovery.checkpoint.ref} {why}: the guard starts afresh at "
                              f"event {model.seq}")
    return None


def decide(ws: Workspace, name: str, which: str, action: str,
           policy: CheckpointPolicy | None = None) -> list[dict[str, Any]]:
    """Release (learn again) or drop (skip for good) quarantine entry ``which`` (an id or
    ``all``) of the online model ``name``. Releasing rebuilds the model from a checkpoint older
    than the released events (recovery picks it) and checkpoints it; the model must not be
    open in another process (its event log's lock is taken)."""
    _, spec = read_spec(ws, name)
    lock = EventLog(events_dir(ws, spec.name))  # refuses while a server holds the model
    try:
        quarantine = Quarantine.load(quarantine_path(ws, spec.name))
        chosen = quarantine.decide(which, "released" if action == "release" else "dropped")
    finally:
        lock.close()
    if action == "release" and chosen:
        model, _ = open_online(ws, spec.name, policy=policy)
        model.close()
    return [entry.to_dict() for entry in chosen]

