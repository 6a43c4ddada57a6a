"""Learning from many connections at once: one applier thread, one ``fsync`` per burst.

A request (on the event loop) hands its checked events to :meth:`LearnQueue.submit` and
awaits the asyncio future it gets. One thread takes everything queued since its last turn —
the events of every request that arrived meanwhile, in arrival order — and calls
:meth:`OnlineModel.learn_events` once with all of them: one write and one ``fsync`` of the
event log, one turn of the model's lock. The futures are resolved only when that call
returned, so a request is acknowledged only once its events are durable and learnt; the next
prediction uses them. While one burst is written the next one gathers, which is what keeps
``fsync`` off the per-event cost; and a burst's futures are resolved with one wake-up of the
event loop (``call_soon_threadsafe``), not one per request.

:class:`RecentPredictions` is the service's bounded memory of answered predictions, so that a
label can be sent later by request id (``POST /v1/learn``); each record can be labelled once.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import MlstrataError
from .events import Event
from .learner import Observer, Prediction

__all__ = ["Burst", "LearnQueue", "Learner", "LearnTicket", "Progress", "RecentPredictions",
           "UnknownRequestError"]

_log = logging.getLogger("mlstrata.online")


class Learner(Protocol):
    """What the queue needs of a model (an :class:`OnlineModel`, or a guard wrapping one)."""

    def learn_events(self, events: Sequence[Event], observe: Observer | None = None) -> int:
        """Log ``events`` durably, learn them in order; the last sequence number."""


@dataclass
class LearnTicket:
    """One request's events in the queue, the future its request awaits (on ``loop``), and
    ``tag``: what the service logs them under."""

    events: list[Event]
    tag: Any
    future: asyncio.Future[int]
    loop: asyncio.AbstractEventLoop


@dataclass(frozen=True)
class Burst:
    """The tickets learnt together, the last sequence number, and each event's prediction
    just before it was learnt (progressive validation), with its label."""

    tickets: list[LearnTicket]
    last: int
    observed: list[tuple[Any, Prediction]]


class LearnQueue:
    """Serialises learning through one applier thread (see the module docstring).

    ``on_burst`` is called (on the applier thread, after the futures were resolved) with each
    learnt :class:`Burst`; the service logs and counts there.
    """

    def __init__(self, model: Learner, on_burst: Callable[[Burst], None] | None = None,
                 max_events: int = 4096) -> None:
        self._model = model
        self._on_burst = on_burst
        self._max = max_events
        self._items: collections.deque[LearnTicket] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.failure: BaseException | None = None
        """The error that stopped learning (the service then answers 503 and is not live)."""
        self._thread = threading.Thread(target=self._run, name="mlstrata-online-learn",
                                        daemon=True)
        self._thread.start()

    def submit(self, events: list[Event], tag: Any = None) -> asyncio.Future[int]:
        """Queue ``events`` (already checked; call on the event loop): the future holds the
        last one's sequence number once they are durable and learnt."""
        loop = asyncio.get_running_loop()
        ticket = LearnTicket(events, tag, loop.create_future(), loop)
        with self._cond:
            if self._closed:
                raise MlstrataError("the service is shutting down; send the events again to "
                                    "the restarted service")
            self._items.append(ticket)
            self._cond.notify()
        return ticket.future

    def close(self) -> None:
        """Learn what is queued, then stop the thread (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _take(self) -> list[LearnTicket] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None
            taken: list[LearnTicket] = []
            count = 0
            while self._items and (not taken or count + len(self._items[0].events) <= self._max):
                ticket = self._items.popleft()
                taken.append(ticket)
                count += len(ticket.events)
            return taken

    def _run(self) -> None:
        while (tickets := self._take()) is not None:
            events = [event for ticket in tickets for event in ticket.events]
            observed: list[tuple[Any, Prediction]] = []

            def observe(label: Any, prediction: Prediction,
                        seen: list[tuple[Any, Prediction]] = observed) -> None:
                seen.append((label, prediction))

            try:
                last = self._model.learn_events(events, observe=observe)
            except BaseException as exc:  # noqa: BLE001 — every waiting request must hear it
                self.failure = exc
                _settle(tickets, [exc] * len(tickets))
                continue
            ends = list(itertools.accumulate((len(t.events) for t in tickets),
                                             initial=last - len(events)))[1:]
            _settle(tickets, ends)
            if self._on_burst is not None:
                try:
                    self._on_burst(Burst(tickets, last, observed))
                except Exception:  # noqa: BLE001 — counting or logging must never stop learning
                    _log.exception("online model: could not count or log a learnt burst")


def _settle(tickets: list[LearnTicket], outcomes: Sequence[int | BaseException]) -> None:
    """Resolve the tickets' futures (a sequence number, or the error) with one call into each
    event loop; a loop that is closed has nobody waiting any more."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int],
                                                       int | BaseException]]] = {}
    for ticket, outcome in zip(tickets, outcomes, strict=True):
        by_loop.setdefault(ticket.loop, []).append((ticket.future, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:  # the loop is closed (shut down): nobody awaits these
            _log.debug("online model: %d learn requests finished after the loop closed",
                       len(settled))


def _resolve(settled: list[tuple[asyncio.Future[int], int | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class UnknownRequestError(MlstrataError):
    """A label for a request id the service does not remember (or a record it did not have)."""


@dataclass
class _Remembered:
    records: list[Mapping[str, Any]]
    predictions: list[Prediction]
    labelled: list[bool]


class RecentPredictions:
    """The last ``capacity`` answered prediction requests, by request id (thread-safe).

    >>> recent = RecentPredictions(capacity=1)
    >>> recent.remember("a", [{"x": 1}], [Prediction(label="yes")])
    >>> recent.claim("a", None)[0]
    {'x': 1}
    >>> recent.claim("a", None)
    Traceback (most recent call last):
    mlstrata.online.learnqueue.AlreadyLabelledError: record 0 of request 'a' is labelled already; \
a prediction learns one label
    >>> recent.remember("b", [{"x": 2}], [Prediction(label="no")])
    >>> "a" in recent  # forgotten: only the last request is kept
    False
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._items: collections.OrderedDict[str, _Remembered] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._items

    def remember(self, request_id: str, records: Sequence[Mapping[str, Any]],
                 predictions: list[Prediction]) -> None:
        """Keep a prediction request's records (the oldest is forgotten past ``capacity``)."""
        with self._lock:
            self._items[request_id] = _Remembered(list(records), predictions,
                                                  [False] * len(records))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def claim(self, request_id: str, record: int | None) -> tuple[Mapping[str, Any], Prediction]:
        """Mark ``record`` of ``request_id`` labelled; its features and prediction.

        Raises :class:`UnknownRequestError` (404) for an unknown id or record and
        :class:`AlreadyLabelledError` (409) for a record labelled before.
        """
        with self._lock:
            found = self._items.get(request_id)
            if found is None:
                raise UnknownRequestError(
                    f"no prediction with request id {request_id!r} is remembered here (unknown, "
                    f"or older than the last {self.capacity} prediction requests); send the "
                    "features with the label instead")
            if record is None and len(found.records) > 1:
                raise UnknownRequestError(
                    f"request {request_id!r} predicted {len(found.records)} records; name the "
                    "one labelled with 'record' (0 for the first)")
            index = record or 0
            if not 0 <= index < len(found.records):
                raise UnknownRequestError(f"request {request_id!r} has no record {index}; it "
                                          f"predicted {len(found.records)} record(s)")
            if found.labelled[index]:
                raise AlreadyLabelledError(f"record {index} of request {request_id!r} is "
                                           "labelled already; a prediction learns one label")
            found.labelled[index] = True
            return found.records[index], found.predictions[index]

    def release(self, request_id: str, record: int | None) -> None:
        """Undo :meth:`claim` (the learn it was for failed)."""
        with self._lock:
            found = self._items.get(request_id)
            if found is not None:
                found.labelled[record or 0] = False


class AlreadyLabelledError(MlstrataError):
    """A label for a prediction that has one already."""


class Progress:
    """Learn counts, events per second (over the last ``window`` seconds) and the progressive
    metric — accuracy for a classifier, mean absolute error for a regressor — of the events
    learnt, each scored by the model just before it learnt it (thread-safe)."""

    def __init__(self, task: str, window: float = 10.0) -> None:
        self.task = task
        self.accepted = 0
        self.refused = 0
        self.predictions = 0
        self._window = window
        self._bursts: collections.deque[tuple[float, int]] = collections.deque()
        self._scored = 0
        self._total = 0.0
        self._lock = threading.Lock()

    @property
    def metric_name(self) -> str:
        """``accuracy`` or ``mae``."""
        return "accuracy" if self.task == "classification" else "mae"

    def learnt(self, observed: Sequence[tuple[Any, Prediction]]) -> None:
        """Count a learnt burst and score each event's prediction against its label."""
        now = time.monotonic()
        with self._lock:
            self.accepted += len(observed)
            self._bursts.append((now, len(observed)))
            for label, prediction in observed:
                self._scored += 1
                if self.task == "classification":
                    self._total += prediction.label == label
                else:
                    self._total += abs(float(prediction.value or 0.0) - float(label))

    def metric(self) -> float | None:
        """The progressive metric over every event learnt since start-up (None before one)."""
        return self._total / self._scored if self._scored else None

    def events_per_second(self) -> float:
        """Events learnt per second over the last ``window`` seconds."""
        now = time.monotonic()
        with self._lock:
            while self._bursts and self._bursts[0][0] < now - self._window:
                self._bursts.popleft()
            return sum(count for _, count in self._bursts) / self._window
