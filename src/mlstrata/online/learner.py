"""The online model at work: predict, and learn event by event, durably.

:class:`OnlineModel` holds a River pipeline built from an :class:`~.spec.OnlineSpec`. Learning
a batch of events is: check each against the contract (:class:`~.events.EventChecker`), write
them to the event log and wait until they are on disk, then learn them in order, then
checkpoint when one is due (a periodic checkpoint that fails is logged, not raised: the events
are durable already). So an event is acknowledged (the call returns) only once it is
durable, and the model never learns an event the log does not hold.

Many threads may learn and predict at once: events are logged outside the model's lock (so
their ``fsync`` calls are shared, see :mod:`.eventlog`), then learnt one batch at a time in
the order of the log; a prediction takes the same lock, so it never sees a half-applied update.
Learnt events are the decoded JSON of what was logged, so a model recovered from the log learns
exactly what this one learnt. If logging or learning fails half-way, the model stops learning
(:class:`OnlineModelFailedError`) rather than drift away from its log; reopening it recovers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import MlstrataError
from .durability import Durability
from .events import Event, EventChecker, as_learnt, decode_event, logged_forms
from .features import featurize
from .spec import OnlineSpec

__all__ = ["Observer", "OnlineModel", "OnlineModelFailedError", "Prediction"]


class OnlineModelFailedError(MlstrataError):
    """Logging or learning an event failed; the model no longer matches its log until reopened."""


@dataclass(slots=True)
class Prediction:
    """A classifier's label and class probabilities, or a regressor's value. Read-only by
    convention, and unhashable: not ``frozen``, whose ``__init__`` costs three times as much —
    one is made for every event. ``label`` is None when no class has a positive probability."""

    label: Any = None
    probabilities: Mapping[Any, float] = field(default_factory=dict)
    value: float | None = None

    @property
    def answer(self) -> Any:
        """What a metric compares with the truth: the label, or the value."""
        return self.value if self.value is not None else self.label

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (class keys as text)."""
        if self.value is not None:
            return {"value": self.value}
        return {"label": self.label,
                "probabilities": {str(k): p for k, p in self.probabilities.items()}}


Observer = Callable[[Any, Prediction], None]
"""Called with ``(label, prediction)`` for each event, predicted just before it is learnt."""


class OnlineModel:
    """An online model: its spec, its River pipeline and the last event it learnt."""

    def __init__(self, spec: OnlineSpec, pipeline: Any, seq: int = 0,
                 durability: Durability | None = None) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.seq = seq
        self.durability = durability
        self.checker = EventChecker(spec)
        self._classes = tuple(enumerate(spec.classes))
        self.lock = threading.RLock()
        """Held while the pipeline is read or changed (re-entrant: a guard holds it around
        its own calls)."""
        self._turns: dict[int, threading.Condition] = {}
        self._failure: BaseException | None = None

    def predict(self, record: Mapping[str, Any]) -> Prediction:
        """The model's answer for ``record`` (refused when it breaks an ``error`` rule)."""
        self.checker.check_prediction(record)
        features = featurize(self.spec, [record])[0]
        with self.lock:
            return self.predict_features(features)

    def learn(self, record: Mapping[str, Any]) -> int:
        """Check, log durably and learn one labelled record; its sequence number."""
        return self.learn_events([self.checker.learn_event(record)])

    def learn_events(self, events: Sequence[Event], observe: Observer | None = None) -> int:
        """Log ``events`` (checked by :attr:`checker`) durably, then learn them in order; with
        ``observe``, predict each one first (progressive validation). The last sequence number.

        Logging happens outside the model's lock, so callers on many threads share each
        ``fsync`` (group commit); each batch is then learnt in its turn, in log order.
        """
        durability = self.durability
        if durability is None or not events:
            with self.lock:
                self._learn([as_learnt(event) for event in events], observe)
                self.seq += len(events)
                return self.seq
        payloads, learnt = logged_forms(events)
        last = self._append(durability, payloads)
        with self.lock:
            self._wait_for_turn(last - len(payloads))
            self._learn(learnt, observe)
            self.seq = last
            self._wake_next()
            due = durability.snapshot_if_due(self.pipeline, self.seq)
        if due is not None:
            durability.store_quietly(due)
        return last

    def replay_logged(self, payloads: Sequence[bytes]) -> None:
        """Learn events read back from the event log (recovery: they are logged already)."""
        with self.lock:
            self._learn([decode_event(payload) for payload in payloads], None)
            self.seq += len(payloads)

    def warm_up(self, events: Sequence[Event]) -> None:
        """Learn events that come before the event log (a warm start from a dataset): they are
        neither logged nor counted — the first logged event is still event 1."""
        with self.lock:
            self._learn([as_learnt(event) for event in events], None)

    def close(self) -> None:
        """Checkpoint and release the event log (on shutdown, SIGTERM included); a failed model
        is not checkpointed: reopening it recovers from its log."""
        with self.lock:
            durability, self.durability = self.durability, None
            if durability is None:
                return
            if self._failure is None:
                durability.close(self.pipeline, self.seq)
            else:
                durability.log.close()

    def _append(self, durability: Durability, payloads: list[bytes]) -> int:
        """Log ``payloads`` durably; a failure stops the model learning (as in :meth:`_learn`)."""
        self._check_healthy()
        try:
            return durability.append(payloads)
        except BaseException as exc:
            with self.lock:
                self._failure = exc
                self._wake_next()
            raise

    def _learn(self, decoded: Sequence[Event], observe: Observer | None) -> None:
        """Learn logged events, as their JSON decodes. An error half-way leaves the pipeline
        between two events, out of step with the log: the model then refuses to learn or
        checkpoint until it is reopened."""
        self._check_healthy()
        rows = featurize(self.spec, [event["record"] for event in decoded])
        try:
            for event, features in zip(decoded, rows, strict=True):
                label = event["label"]
                if observe is not None:
                    observe(label, self.predict_features(features))
                self.pipeline.learn_one(features, self.encode_label(label))
        except BaseException as exc:
            self._failure = exc
            self._wake_next()
            raise

    def _wait_for_turn(self, previous: int) -> None:
        """Wait (lock held) until event ``previous`` is learnt: each waiter has its own
        condition, so a learnt batch wakes only the one batch that comes next."""
        if self.seq != previous and self._failure is None:
            turn = self._turns[previous] = threading.Condition(self.lock)
            while self.seq != previous and self._failure is None:
                turn.wait()

    def _wake_next(self) -> None:
        """Wake the batch that starts after :attr:`seq` (all of them after a failure)."""
        keys = list(self._turns) if self._failure is not None else [self.seq]
        for key in keys:
            turn = self._turns.pop(key, None)
            if turn is not None:
                turn.notify()

    def _check_healthy(self) -> None:
        if self._failure is not None:
            raise OnlineModelFailedError(
                f"online model {self.spec.name} stopped learning after an error "
                f"({type(self._failure).__name__}: {self._failure}); restart it to recover "
                "from its checkpoint and event log")

    def encode_label(self, label: Any) -> Any:
        """A classifier learns the class's index; a regressor the number."""
        if self.spec.task == "classification":
            return self.spec.classes.index(label)
        return float(label)

    def predict_features(self, features: dict[str, Any]) -> Prediction:
        """The pipeline's answer for already featurized ``features`` (call with :attr:`lock`
        held; :meth:`predict` checks and featurizes a raw record first)."""
        if self.spec.task == "regression":
            return Prediction(value=float(self.pipeline.predict_one(features) or 0.0))
        scores = self.pipeline.predict_proba_one(features)
        best, top, probabilities = None, 0.0, {}
        for index, label in self._classes:  # the first most probable class; None if all are 0
            probability = probabilities[label] = float(scores.get(index, 0.0))
            if probability > top:
                best, top = label, probability
        return Prediction(best, probabilities)

