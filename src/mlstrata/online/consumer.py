"""Learning from a Redis stream: a consumer group that acknowledges an event once it is durable.

:class:`StreamConsumer` reads a Redis stream through a consumer group (``XREADGROUP``; the group
is created, with the stream, when missing). Each entry holds one event: a JSON object — the
features and the label under the target's name — in one field (``event`` by default)::

    XADD loans '*' event '{"amount": 12.5, "region": "north", "paid": "yes"}'

A batch of entries is checked against the model's contract and learnt through the core
(:meth:`~.learner.OnlineModel.learn_events`, which returns once the events are fsynced in the
write-ahead log), and only then acknowledged (``XACK``). An entry the contract refuses, whose
label is outside the target's domain, or that is not a JSON object (malformed) goes to the
dead-letter stream with the reason, in the same ``MULTI``/``EXEC`` transaction as the ``XACK``,
so it is dead-lettered once and never lost.

**Exactly once.** Every learnt event carries its entry's id in the event log (``source``:
stream, group, id). Entries reach the log in id order (new entries come in id order, and
pending ones are re-read in id order before any new one), so the last logged id for the
stream and group is a high-water mark: on restart, pending entries (``XAUTOCLAIM`` gives this
consumer whatever an earlier run left pending in the group, then they are re-read from id
``0``) are processed first, and one at or below the mark was learnt already — a crash came
between its ``fsync`` and its ``XACK`` — so it is only acknowledged. A small hint file beside
the log (``consumers/``) remembers where the mark was, so a restart reads only the log's tail.
A consumer group therefore belongs to one model (the default group is ``mlstrata.NAME``).

Batches are pipelined: while one worker thread learns batch *k* (mostly waiting for its
``fsync``) and acknowledges it, the main thread reads and checks batch *k + 1*; batches are still
learnt and acknowledged one after the other, in order. Stopping (:attr:`StreamConsumer.stop`,
set by SIGTERM/SIGINT in the CLI) ends the loop between two batches: the batch in hand is learnt
and acknowledged first (a batch read but not yet learnt stays pending, for the next run).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
from rich.console import Console

from ..errors import DataError, MlstrataError
from ..reports import Report, html_page, paragraph
from ..workspace import Workspace
from .durability import CheckpointPolicy, events_dir
from .eventlog import read_events
from .events import Event, EventRefusedError
from .learner import OnlineModel, Prediction

if TYPE_CHECKING:
    from ..predlog import PredictionLog
    from .guard import GuardedModel
    from .logged import LoggedModel

__all__ = ["ConsumeReport", "ConsumerSettings", "StreamConsumer", "StreamSourceError",
           "connect", "entry_key", "open_model"]

EntryId = tuple[int, int]
Entry = tuple[str, Mapping[str, str] | None]
_PROGRESS_SECONDS = 5.0
_HINT_SECONDS = 5.0


class StreamSourceError(MlstrataError):
    """The Redis server cannot be reached, or refused a command."""


@dataclass(frozen=True)
class ConsumerSettings:
    """Where to read (stream, group, consumer), where refused entries go, and how much at once."""

    url: str
    stream: str
    group: str
    consumer: str = "mlstrata"
    dead_letter: str = ""
    field: str = "event"
    batch: int = 100
    block_ms: int = 1000
    max_events: int | None = None

    @property
    def dead_letter_stream(self) -> str:
        """The dead-letter stream (``<stream>.dead-letter`` unless named)."""
        return self.dead_letter or f"{self.stream}.dead-letter"


@dataclass
class ConsumeReport(Report):
    """What a consumer run did: entries read, learnt, skipped as already learnt, refused,
    malformed (both dead-lettered), the events' sequence numbers, the rate."""

    model: str
    stream: str
    group: str
    dead_letter: str
    read: int = 0
    learnt: int = 0
    already_learnt: int = 0
    refused: int = 0
    malformed: int = 0
    seconds: float = 0.0
    first_event: int | None = None
    last_event: int | None = None
    stopped_by: str = "max-events"
    notes: list[str] = field(default_factory=list)

    @property
    def dead_lettered(self) -> int:
        """Entries sent to the dead-letter stream."""
        return self.refused + self.malformed

    @property
    def events_per_second(self) -> float | None:
        """Entries handled (learnt, skipped or dead-lettered) per second of the run."""
        return self.read / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Every count of the run."""
        return {"model": self.model, "stream": self.stream, "group": self.group,
                "dead_letter": self.dead_letter, "read": self.read, "learnt": self.learnt,
                "already_learnt": self.already_learnt, "refused": self.refused,
                "malformed": self.malformed, "dead_lettered": self.dead_lettered,
                "seconds": round(self.seconds, 3),
                "events_per_second": self.events_per_second,
                "events": [self.first_event, self.last_event]
                if self.first_event is not None else None,
                "stopped_by": self.stopped_by, "notes": list(self.notes)}

    def summary(self) -> str:
        """One line: the counts and the rate."""
        rate = self.events_per_second
        return (f"{self.read} entries: {self.learnt} learnt, {self.already_learnt} already "
                f"learnt, {self.dead_lettered} dead-lettered ({self.refused} refused, "
                f"{self.malformed} malformed), {self.seconds:.1f} s"
                + (f", {rate:,.0f} events/s" if rate is not None else ""))

    def render_terminal(self, console: Console) -> None:
        """The summary line, where the events went, and the notes."""
        console.print(f"{self.model} from {self.stream} (group {self.group}): {self.summary()}; "
                      f"stopped by {self.stopped_by}", highlight=False)
        if self.first_event is not None:
            console.print(f"learnt as events {self.first_event}..{self.last_event}",
                          highlight=False)
        if self.dead_lettered:
            console.print(f"refused and malformed entries are in {self.dead_letter}",
                          highlight=False)
        for note in self.notes:
            console.print(f"  {note}", highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """The counts as a facts table."""
        return html_page(f"Consumer of {self.stream} for {self.model}",
                         [("Summary", [paragraph(self.summary())])], facts=self.to_dict())


def entry_key(entry_id: str) -> EntryId:
    """A stream entry id (``<ms>-<seq>``) as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def connect(url: str) -> Any:
    """A Redis client for ``url`` that answered ``PING`` (else :class:`StreamSourceError`)."""
    import redis

    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                      health_check_interval=30)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise StreamSourceError(f"cannot reach Redis at {url}: {exc}; start it or fix --redis "
                                "(redis://HOST:PORT/DB)") from exc
    return client


def open_model(ws: Workspace, name: str, policy: CheckpointPolicy | None = None,
               guard: bool | None = None) -> tuple[OnlineModel, list[str], GuardedModel | None]:
    """The model a consumer feeds, writable — guarded when ``guard`` (default:
    ``online.guard.enabled``) —, what its recovery noted, and the guard (the one place a
    consumer opens a model)."""
    from .recovery import open_online

    if guard if guard is not None else ws.config.online.guard.enabled:
        from .guard import open_guarded

        guarded, recovery = open_guarded(ws, name, policy=policy)
        # the guard has the model's calls (duck-typed)
        return cast("OnlineModel", guarded), list(recovery.notes), guarded
    model, recovery = open_online(ws, name, policy=policy)
    return model, list(recovery.notes), None


@dataclass
class _Outcome:
    """One batch sorted: events to learn (with their entry ids), dead letters, ids to ack."""

    learn: list[Event] = field(default_factory=list)
    learn_ids: list[str] = field(default_factory=list)
    dead: list[dict[str, str]] = field(default_factory=list)
    ack: list[str] = field(default_factory=list)


class StreamConsumer:
    """Feed one online model from one Redis stream (see the module docstring)."""

    def __init__(self, model: OnlineModel, client: Any, settings: ConsumerSettings,
                 state_dir: Path, events: Path,
                 log: tuple[PredictionLog, LoggedModel] | None = None) -> None:
        self.model = model
        self.client = client
        self.log = log
        self.settings = settings
        self.stop = threading.Event()
        self._hint = state_dir / f"{_slug(settings.stream, settings.group)}.json"
        self._events = events
        self.mark = self._find_mark()
        self._hinted: tuple[str, int] | None = None
        self._taken = 0
        self._hint_saved = time.monotonic()
        self.report = ConsumeReport(model.spec.name, settings.stream, settings.group,
                                    settings.dead_letter_stream)

    @classmethod
    def for_workspace(cls, ws: Workspace, model: OnlineModel, client: Any,
                      settings: ConsumerSettings,
                      log: PredictionLog | None = None) -> StreamConsumer:
        """A consumer whose hint file lives beside the model's event log; with ``log``, each
        learnt event goes to that prediction log (the prediction made just before learning it,
        then its label as feedback; the request id is the entry's id)."""
        from .logged import logged_model
        from .recovery import read_spec

        events = events_dir(ws, model.spec.name)
        logging = (log, logged_model(model.spec, read_spec(ws, model.spec.name)[0])) \
            if log is not None else None
        return cls(model, client, settings, events.parent / "consumers", events, logging)

    def run(self, progress: Callable[[ConsumeReport], None] | None = None) -> ConsumeReport:
        """Create the group if missing, handle what an earlier run left pending, then new
        entries, until :attr:`stop` is set or ``max_events`` entries were handled."""
        import redis

        started = last_progress = time.monotonic()
        try:
            self._ensure_group()
            claimed = self._claim_pending()
            if claimed:
                self.report.notes.append(f"{claimed} pending entries claimed from other "
                                         "consumers of the group")
            with ThreadPoolExecutor(1, thread_name_prefix="mlstrata-consume") as applier:
                in_flight: Future[None] | None = None
                for pending in (True, False):
                    after = "0"  # pending entries are re-read after the last one read
                    while not self._done():
                        entries = self._read(after if pending else ">")
                        if not entries and pending:
                            break
                        if entries:
                            after, self._taken = entries[-1][0], self._taken + len(entries)
                            batch = self._sort(entries)
                            if in_flight is not None:
                                in_flight.result()
                            in_flight = applier.submit(self._apply, batch, len(entries))
                        now = time.monotonic()
                        if progress is not None and now - last_progress >= _PROGRESS_SECONDS:
                            self.report.seconds, last_progress = now - started, now
                            progress(self.report)
                if in_flight is not None:
                    in_flight.result()
        except redis.RedisError as exc:
            raise StreamSourceError(f"Redis at {self.settings.url} failed: {exc}; entries "
                                    "learnt but not acknowledged are recognised on restart"
                                    ) from exc
        finally:
            self.report.seconds = time.monotonic() - started
            self._save_hint()
        self.report.stopped_by = "signal" if self.stop.is_set() else "max-events"
        return self.report

    def _done(self) -> bool:
        limit = self.settings.max_events
        return self.stop.is_set() or (limit is not None and self._taken >= limit)

    def _ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.settings.stream, self.settings.group, id="0",
                                      mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _claim_pending(self) -> int:
        """Take over every entry pending in the group (a group belongs to one model, so they
        were left by an earlier run, perhaps under another consumer name)."""
        s = self.settings
        summary = self.client.xpending(s.stream, s.group)
        others = sum(int(c["pending"]) for c in summary.get("consumers") or []
                     if c["name"] != s.consumer)
        start = "0-0"
        while others:
            answer = self.client.xautoclaim(s.stream, s.group, s.consumer, min_idle_time=0,
                                            start_id=start, count=max(s.batch, 100))
            start = answer[0]
            if start == "0-0":
                break
        return others

    def _read(self, start: str) -> list[Entry]:
        """Up to a batch of entries: new ones (``>``, waiting up to ``block_ms``) or this
        consumer's pending ones after ``start``."""
        s = self.settings
        count = s.batch if s.max_events is None else min(s.batch, s.max_events - self._taken)
        answer = self.client.xreadgroup(s.group, s.consumer, {s.stream: start}, count=count,
                                        block=s.block_ms if start == ">" else None)
        if not answer:
            return []
        entries: list[Entry] = answer[0][1]
        return entries

    def _apply(self, batch: _Outcome, read: int) -> None:
        """Learn, dead-letter and acknowledge one sorted batch — acknowledged only once durable
        (runs on one worker thread, batch after batch, while the next batch is read)."""
        if batch.learn:
            observed: list[tuple[Any, Prediction]] = []
            last = self.model.learn_events(
                batch.learn, observe=None if self.log is None else
                lambda label, prediction: observed.append((label, prediction)))
            self.mark = entry_key(batch.learn_ids[-1])
            report = self.report
            report.first_event = report.first_event or last - len(batch.learn) + 1
            report.last_event = last
            report.learnt += len(batch.learn)
        with self.client.pipeline(transaction=True) as pipe:
            for dead in batch.dead:
                pipe.xadd(self.settings.dead_letter_stream, dead)
            pipe.xack(self.settings.stream, self.settings.group, *batch.ack)
            pipe.execute()
        self.report.read += read
        if batch.learn and self.log is not None:
            self._log(*self.log, batch, observed)
        if batch.learn:
            self._hinted = batch.learn_ids[-1], last
            if time.monotonic() - self._hint_saved >= _HINT_SECONDS:
                self._save_hint()

    def _log(self, log: PredictionLog, logged: LoggedModel, batch: _Outcome,
             observed: list[tuple[Any, Prediction]]) -> None:
        """Each learnt event as a prediction line (made just before learning it) and its label
        as a feedback line, the entry id as the request id. A full log queue makes the worker
        wait (no line is dropped, unlike a server's log: a consumer has no caller waiting)."""
        from ..predlog import FeedbackItem
        from .logged import as_predictions, plain

        spec, now = self.model.spec, time.time()
        for entry_id, event, (_, prediction) in zip(batch.learn_ids, batch.learn, observed,
                                                    strict=True):
            log.log_predictions(logged, request_id=entry_id, source="redis", columns={},
                                predictions=as_predictions(spec, [prediction]),
                                latency_ms=0.0, records=[event["record"]], when=now,
                                block=True)
        log.log_feedback([FeedbackItem(spec.name, plain(label), entry_id, 0, time=now)
                          for entry_id, (label, _) in zip(batch.learn_ids, observed,
                                                          strict=True)], block=True)

    def _sort(self, entries: Iterable[Entry]) -> _Outcome:
        batch = _Outcome()
        s = self.settings
        for entry_id, fields in entries:
            batch.ack.append(entry_id)
            learnt = self.mark is not None and entry_key(entry_id) <= self.mark
            try:
                event = self._event(fields)
            except EventRefusedError as exc:
                self.report.refused += 1
                batch.dead.append(_dead_letter(entry_id, s, "refused", str(exc), fields,
                                               [v.to_dict() for v in exc.violations]))
                continue
            except _MalformedError as exc:
                if learnt and not fields:
                    self.report.already_learnt += 1  # deleted after it was learnt
                    continue
                self.report.malformed += 1
                batch.dead.append(_dead_letter(entry_id, s, "malformed", str(exc), fields))
                continue
            if learnt:
                self.report.already_learnt += 1
                continue
            event["source"] = {"redis": s.stream, "group": s.group, "id": entry_id}
            batch.learn.append(event)
            batch.learn_ids.append(entry_id)
        return batch

    def _event(self, fields: Mapping[str, str] | None) -> Event:
        name = self.settings.field
        if not fields:
            raise _MalformedError("the entry was deleted from the stream before it was "
                                  "processed")
        raw = fields.get(name)
        if raw is None:
            raise _MalformedError(f"the entry has no field '{name}' (fields: "
                                  f"{', '.join(sorted(fields))}); send the event as JSON in "
                                  f"'{name}'")
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _MalformedError(f"field '{name}' is not JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise _MalformedError(f"field '{name}' holds a JSON {type(record).__name__}, not "
                                  "an object of columns")
        try:
            return self.model.checker.learn_event(record)
        except EventRefusedError:
            raise
        except (DataError, TypeError, ValueError) as exc:
            raise _MalformedError(f"the event cannot be read: {exc}") from exc

    def _find_mark(self) -> EntryId | None:
        """The highest entry id of this stream and group in the event log (hint, then tail)."""
        after, mark = 0, None
        try:
            hint = orjson.loads(self._hint.read_bytes())
            after, mark = int(hint["seq"]), entry_key(str(hint["id"]))
        except (OSError, orjson.JSONDecodeError, KeyError, ValueError, TypeError):
            pass
        s = self.settings
        for _, payload in read_events(self._events, after):
            if b'"source"' not in payload:
                continue
            source = orjson.loads(payload).get("source") or {}
            if source.get("redis") == s.stream and source.get("group") == s.group:
                key = entry_key(source["id"])
                mark = key if mark is None or key > mark else mark
        return mark

    def _save_hint(self) -> None:
        """Remember the mark and the event it was reached at, every few seconds and at the end
        of a run (atomic, not fsynced: a stale or lost hint only makes the next start read more
        of the log's tail)."""
        self._hint_saved = time.monotonic()
        if self._hinted is None:
            return
        entry_id, seq = self._hinted
        self._hint.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._hint.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps({"stream": self.settings.stream,
                                            "group": self.settings.group,
                                            "seq": seq, "id": entry_id}))
        os.replace(temporary, self._hint)
        self._hinted = None


class _MalformedError(ValueError):
    """An entry that holds no readable event."""


def _dead_letter(entry_id: str, settings: ConsumerSettings, kind: str, reason: str,
                 fields: Mapping[str, str] | None,
                 violations: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The dead-letter entry: where it came from, why, and the entry's fields as they were."""
    letter = {"id": entry_id, "stream": settings.stream, "group": settings.group, "kind": kind,
              "reason": reason, "fields": orjson.dumps(dict(fields or {})).decode()}
    if violations is not None:
        letter["violations"] = orjson.dumps(violations, default=str).decode()
    return letter


def _slug(stream: str, group: str) -> str:
    """A file name for a stream and group (any characters allowed in both)."""
    return hashlib.sha256(f"{stream}\0{group}".encode()).hexdigest()[:24]
