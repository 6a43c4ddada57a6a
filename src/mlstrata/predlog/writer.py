"""The log writer: a bounded in-memory queue drained by one background thread into a sink.

A request hands :meth:`PredictionLog.log_predictions` what it already has — the typed input
columns and the predictions — and returns at once: appending to a list under a lock. When the
queue already holds ``capacity`` records the new ones are dropped instead, counted in
:attr:`PredictionLog.dropped` (a metric: the ``/metrics`` route exports it) and reported in a
warning at most every ``warn_every`` seconds; the request is never slowed down or refused.
Batch scoring passes ``block=True`` and waits for room instead, so a batch run loses nothing.

The writer thread wakes every ``interval`` seconds (sooner when the queue is half full), takes
everything queued, turns it into log lines (:mod:`.records`: the package id, the PII policy,
one JSON object per record) and writes them to the sink in one call. Waking on a timer rather
than on every request keeps the thread off the interpreter lock while requests are answered.

:meth:`PredictionLog.close` — called on graceful shutdown (SIGTERM) and at the end of a batch
run — refuses new records, lets the thread write everything queued and closes the sink
(``fsync`` of the open files): every answered prediction is on disk when the process exits.

It also remembers the request ids (and keys) it logged recently — the last ``remember`` of
them, ~2 MB at the default 10,000, so a server's memory stays flat under load — so that feedback
for them is matched without reading the log back, even before they are written
(:meth:`PredictionLog.find` asks the sink for older ones).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from .records import FeedbackItem, ModelInfo, PredictionItem, feedback_row, prediction_rows

__all__ = ["PredictionLog", "Sink", "open_log", "open_sink"]

_log = logging.getLogger("mlstrata.predlog")
_CHUNK_ROWS = 1024  # records converted, built and written together
_BEHIND = 2048  # queued records beyond which the writer stops handing the CPU over
Item = PredictionItem | FeedbackItem


class Sink(Protocol):
    """Where log lines go: a directory of JSON Lines files or a PostgreSQL database."""

    @property
    def target(self) -> str:
        """The directory or database URL, as :func:`open_log` takes it (another process — a
        Spark executor — opens its own log there)."""

    def write(self, rows: Sequence[dict[str, Any]],
              pause: Callable[[], None] | None = None) -> None:
        """Store ``rows`` (prediction and feedback lines); raise on failure. ``pause`` may be
        called every few rows (the writer hands the interpreter lock over there)."""

    def find(self, model: str, request_ids: Iterable[str],
             keys: Iterable[str]) -> tuple[dict[str, int], set[str]]:
        """The logged record count of each of ``request_ids`` and which ``keys`` are logged."""

    def close(self) -> None:
        """Flush and release everything."""


def open_log(target: str | Path, *, salt: str | None = None, **options: Any) -> PredictionLog:
    """A started :class:`PredictionLog` writing to ``target``: a directory, or a
    ``postgresql://`` URL. ``salt`` hashes the inputs the PII policy says to hash."""
    return PredictionLog(open_sink(target), salt=salt, **options)


def open_sink(target: str | Path) -> Sink:
    """The sink for ``target``: PostgreSQL for a ``postgresql://`` URL, else a directory of
    JSON Lines files (for a log class of one's own, such as a server's shadow log)."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresSink

        return PostgresSink(text)
    from .files import FileSink

    return FileSink(Path(target))


class PredictionLog:
    """The prediction log of one process (see the module docstring)."""

    def __init__(self, sink: Sink, *, salt: str | None = None, capacity: int = 50_000,
                 interval: float = 0.05, warn_every: float = 10.0,
                 remember: int = 10_000, hand_over: float = 0.0) -> None:
        self.sink = sink
        self.salt = salt
        self.capacity = capacity
        self.written = 0
        """Records (lines) the sink has stored."""
        self.dropped = 0
        """Records that were not logged: the queue was full, or the sink failed."""
        self._interval = interval
        self._hand_over = hand_over
        self._warn_every = warn_every
        self._remember = remember
        self._items: list[Item] = []
        self._pending = 0
        self._closed = False
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._warned_at = -float("inf")
        self._unreported = 0
        self._recent_ids = _Recent(remember)
        self._recent_keys = _Recent(remember)
        self._infos: weakref.WeakKeyDictionary[Any, ModelInfo] = weakref.WeakKeyDictionary()
        self._thread = threading.Thread(target=self._run, name="mlstrata-predlog", daemon=True)
        self._thread.start()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # -- the request side ------------------------------------------------------------------

    def log_predictions(self, model: Any, *, request_id: str, source: str,
                        columns: Mapping[str, np.ndarray[Any, Any]], predictions: Any,
                        latency_ms: float, keys: Sequence[Any] | None = None,
                        records: Sequence[Any] | None = None, first_record: int = 0,
                        positions: Sequence[int] | None = None, when: float | None = None,
                        block: bool = False, remember: bool = True) -> bool:
        """Queue one line per record of ``predictions``; False when they were dropped.

        ``model`` is the :class:`~mlstrata.runtime.model.LoadedModel` that answered,
        ``columns`` the typed inputs it scored, ``keys`` the business key of each record when
        known (else it is read from the request's JSON ``records`` when the package names a
        key field). Record ``i`` is logged as ``positions[i]`` when given, else
        ``first_record + i``. ``block`` waits for room instead of dropping (batch runs).
        """
        if keys is None and records is not None:
            keys = self._request_keys(model, records)
        item = PredictionItem(model, request_id, source, time.time() if when is None else when,
                              round(latency_ms, 3), columns, predictions, keys, first_record,
                              records, positions)
        accepted = self._submit(item, block)
        if accepted and remember:
            self._note(model.name, request_id, item.rows, keys)
        return accepted

    def log_feedback(self, items: Sequence[FeedbackItem], *, block: bool = False) -> bool:
        """Queue feedback lines; False when they were dropped."""
        return all(self._submit(item, block) for item in items)

    def find(self, model: str, request_ids: Iterable[str] = (),
             keys: Iterable[str] = ()) -> tuple[dict[str, int], set[str]]:
        """How many records each of ``request_ids`` has in ``model``'s log, and which ``keys``
        it holds: from memory for what this process logged recently, else from the sink."""
        counts: dict[str, int] = {}
        found: set[str] = set()
        ids, wanted = set(request_ids), set(keys)
        with self._lock:
            for request_id in ids:
                known = self._recent_ids.get(model, request_id)
                if known is not None:
                    counts[request_id] = known
            found = {key for key in wanted if self._recent_keys.get(model, key) is not None}
        if ids - set(counts) or wanted - found:
            more, more_keys = self.sink.find(model, ids - set(counts), wanted - found)
            counts.update(more)
            found |= more_keys
        return counts, found

    @property
    def pending(self) -> int:
        """Records queued and not yet written."""
        return self._pending

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new records, write every queued one and close the sink (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._room.notify_all()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("the prediction log could not write %d queued records within %.0f s",
                         self._pending, timeout)
            return
        self.sink.close()

    def _submit(self, item: Item, block: bool) -> bool:
        rows = item.rows
        warn, reported = False, 0
        with self._lock:
            if block:
                while not self._closed and self._pending and self._pending + rows > self.capacity:
                    self._wake.set()
                    self._room.wait(1.0)
            full = self._pending + rows > self.capacity and not (block and not self._pending)
            if self._closed or full:
                self.dropped += rows
                self._unreported += rows
                warn = time.monotonic() - self._warned_at >= self._warn_every
                if warn:
                    self._warned_at, reported, self._unreported = time.monotonic(), \
                        self._unreported, 0
            else:
                self._items.append(item)
                self._pending += rows
                if self._pending * 2 > self.capacity:
                    self._wake.set()
                return True
        if warn:
            reason = "it is closed" if self._closed else f"its queue is full ({self.capacity}" \
                " records waiting)"
            _log.warning("prediction log: dropped %d records because %s; %d dropped in total",
                         reported, reason, self.dropped)
        return False

    def _request_keys(self, model: Any, records: Sequence[Any]) -> list[Any] | None:
        """Each JSON record's business key, when the package names a key field."""
        try:
            field = self._info(model).key_field
        except Exception:  # noqa: BLE001 — an unreadable package: the writer reports it later
            return None
        if field is None:
            return None
        return [r.get(field) if isinstance(r, Mapping) else None for r in records]

    def _note(self, model: str, request_id: str, rows: int, keys: Sequence[Any] | None) -> None:
        """Remember a logged request (and its keys) for feedback, within ``remember`` entries."""
        with self._lock:
            self._recent_ids.put(model, request_id, rows)
            for key in keys or ():
                if key is not None:
                    self._recent_keys.put(model, str(key), 1)

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while True:
            if not stopping:  # once closing, drain without waiting
                self._wake.wait(self._interval)
                self._wake.clear()
            with self._lock:
                items, self._items = self._items, []
                stopping = self._closed
            if items:
                self._write(items)
                with self._lock:
                    self._pending -= sum(item.rows for item in items)
                    self._room.notify_all()
            elif stopping:
                return

    def _write(self, items: list[Item]) -> None:
        """Write a drain group by group: only one group's lines are in memory at a time (a
        starved writer's big drain must not raise the process's high-water mark)."""
        for group in _groups(items):
            try:
                rows = self._rows(group)
            except Exception:  # noqa: BLE001 — a bug must not stop the log; it is reported
                _log.exception("prediction log: could not build the lines of %d requests",
                               len(group))
                self._count_dropped(sum(item.rows for item in group))
                continue
            self._store(rows)

    def _store(self, rows: list[dict[str, Any]]) -> None:
        try:
            self.sink.write(rows, self._yield)
        except Exception as exc:  # noqa: BLE001 — a full disk or a lost database
            self._count_dropped(len(rows))
            _log.warning("prediction log: could not write %d records (%s: %s)", len(rows),
                         type(exc).__name__, exc)
            return
        self.written += len(rows)

    def _count_dropped(self, rows: int) -> None:
        with self._lock:
            self.dropped += rows

    def _rows(self, group: list[Item]) -> list[dict[str, Any]]:
        first = group[0]
        if isinstance(first, FeedbackItem):
            return [feedback_row(item) for item in group if isinstance(item, FeedbackItem)]
        predictions = [item for item in group if isinstance(item, PredictionItem)]
        return prediction_rows(predictions, self._info(first.model), self.salt, self._yield)

    def _yield(self) -> None:
        """Let the request threads run: called every few records the writer builds or writes.

        Sleeping ``hand_over`` seconds (a server's log) gives the CPU and the interpreter lock
        away for real: ``sleep(0)`` only releases the lock, and on a busy core the writer
        takes it straight back before a request thread is scheduled, which then waits for
        the writer's whole drain (measured: logging cost 40% of the throughput). A batch run
        has no requests to wait for and does not pause. When more than ``_BEHIND`` records
        wait, the writer does not pause at all until it has caught up: even ``sleep(0)`` costs
        it up to a switch interval (5 ms) to win the lock back from a busy event loop, and a
        writer that paused every few records fell behind a saturated server without bound
        (measured: 3,000 requests/s answered, 2,700 written, the queue and RSS growing).
        """
        if self._hand_over and self._pending < _BEHIND:
            time.sleep(self._hand_over)

    def _info(self, model: Any) -> ModelInfo:
        try:
            info = self._infos.get(model)
        except TypeError:  # not weak-referenceable
            return ModelInfo.of(model)
        if info is None:
            info = self._infos[model] = ModelInfo.of(model)
        return info


class _Recent:
    """At most ``size`` recent names (request ids or keys) per model with a count: two
    generations of plain ``str → int`` dicts — the older dropped whole when the newer is full.

    Cheaper than an ordered dict on the request path, and invisible to the garbage collector
    (dicts of strings and integers are not tracked): one with 100,000 tuples cost each request
    ~15 µs of collection work, measured.
    """

    def __init__(self, size: int) -> None:
        self._half = max(1, size // 2)
        self._new: dict[str, dict[str, int]] = {}
        self._old: dict[str, dict[str, int]] = {}

    def put(self, model: str, name: str, count: int) -> None:
        current = self._new.get(model)
        if current is None:
            current = self._new[model] = {}
        current[name] = count
        if len(current) >= self._half:
            self._old[model], self._new[model] = current, {}

    def get(self, model: str, name: str) -> int | None:
        for generation in (self._new, self._old):
            found = generation.get(model, {}).get(name)
            if found is not None:
                return found
        return None


def _groups(items: list[Item], rows: int = _CHUNK_ROWS) -> list[list[Item]]:
    """``items`` grouped by what answered them (one model, or feedback), in queue order, each
    group at most ``rows`` records (or one item): a group's inputs are converted together."""
    groups: dict[int, list[Item]] = {}
    sizes: dict[int, int] = {}
    done: list[list[Item]] = []
    for item in items:
        owner = 0 if isinstance(item, FeedbackItem) else id(item.model)
        group = groups.setdefault(owner, [])
        if group and sizes[owner] + item.rows > rows:
            done.append(group)
            group = groups[owner] = []
            sizes[owner] = 0
        group.append(item)
        sizes[owner] = sizes.get(owner, 0) + item.rows
    return done + [group for group in groups.values() if group]
