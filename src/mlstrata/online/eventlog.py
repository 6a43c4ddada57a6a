"""The write-ahead event log: accepted learn events, durable before they are acknowledged.

An online model's events live in ``.mlstrata/online/<name>/events/`` as segment files named by
their first sequence number (``00000000000000000001.events``, a new one every
``segment_events`` events), one event a line::

    <seq> TAB <crc32 of the JSON, hex> TAB <the event's JSON> NEWLINE

:meth:`EventLog.append` writes a batch of events and returns once they are on disk. Appends
from many threads are *group-committed*: while one thread waits for ``fsync``, the others write
their lines, and the next ``fsync`` makes all of them durable at once — one disk flush for many
events, which is what lets a service acknowledge thousands of events a second.

A crash can leave a torn last line (part of a write): opening the log for writing cuts it off
(it was never acknowledged); any other bad line (a wrong checksum or sequence number in the
middle of a segment) is corruption, refused with the file and line. One process at a time may
write a model's log (an exclusive ``flock``); :func:`read_events` reads it without the lock.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with EventLog(folder) as log:
...     log.append([b'{"label": 1}', b'{"label": 0}'])
2
>>> [(seq, payload) for seq, payload in read_events(folder, after=1)]
[(2, b'{"label": 0}')]
"""

from __future__ import annotations

import fcntl
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

from .._atomic import fsync_dir
from ..errors import WorkspaceError

__all__ = ["SEGMENT_EVENTS", "EventLog", "EventLogError", "is_open", "last_event", "read_events"]

SEGMENT_EVENTS = 100_000
_SUFFIX = ".events"


class EventLogError(WorkspaceError):
    """An event log is corrupted, or already open for writing in another process."""


class EventLog:
    """The writer of one model's event log (see the module docstring); thread-safe."""

    def __init__(self, directory: Path, segment_events: int = SEGMENT_EVENTS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.segment_events = segment_events
        self._lock_file = _exclusive_lock(directory)
        try:
            self.last_seq, self._segment_first = _repair(directory)
        except BaseException:
            self._lock_file.close()
            raise
        self._fd = _open_segment(directory, self._segment_first)
        self._synced = self.last_seq
        self._syncing = False
        self._retired: list[int] = []
        self._failure: EventLogError | None = None
        self._cond = threading.Condition()

    def append(self, payloads: Sequence[bytes]) -> int:
        """Write ``payloads`` (one event's JSON each) and return the last one's sequence number
        once every one of them is durable.

        A failed write or ``fsync`` fails the log for good (an ``fsync`` that failed once may
        later claim success for data that was lost): the events were not acknowledged, and the
        model must be reopened, which recovers from what the disk really holds.
        """
        with self._cond:
            self._check_usable()
            lines = [_line(self.last_seq + i, p) for i, p in enumerate(payloads, start=1)]
            try:
                self._write(lines)
            except OSError as exc:
                raise self._fail(exc, "written") from exc
            mine = self.last_seq
            while self._synced < mine:
                self._check_usable()
                if self._syncing:
                    self._cond.wait()
                else:
                    self._sync_as_leader()
        return mine

    def _write(self, lines: list[bytes]) -> None:
        """Write ``lines`` in order, starting a new segment whenever one is full."""
        start = 0
        while start < len(lines):
            room = self._segment_first + self.segment_events - 1 - self.last_seq
            if room <= 0:
                self._roll()
                continue
            part = lines[start:start + room]
            self.last_seq += len(part)
            _write_all(self._fd, part)
            start += len(part)

    def _sync_as_leader(self) -> None:
        """Flush everything written so far, with the lock released so others keep writing."""
        self._syncing, target, fd = True, self.last_seq, self._fd
        done, failure = False, None
        self._cond.release()
        try:
            os.fsync(fd)
            done = True
        except OSError as exc:
            failure = exc
        finally:
            self._cond.acquire()
            self._syncing = False
            while self._retired:
                os.close(self._retired.pop())
            if done:
                self._synced = max(self._synced, target)
            self._cond.notify_all()
        if failure is not None:
            raise self._fail(failure, "flushed to disk") from failure

    def _fail(self, error: OSError, what: str) -> EventLogError:
        self._failure = EventLogError(f"{self.directory}: events could not be {what} "
                                      f"({error.strerror}); they were not acknowledged — fix "
                                      "the disk, then reopen the model")
        self._cond.notify_all()
        return self._failure

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._fd < 0:
            raise EventLogError(f"{self.directory}: the event log is closed; open the model "
                                "again to learn more")

    def _roll(self) -> None:
        """Start the next segment, the current one flushed first (and closed once no leader
        is flushing it)."""
        os.fsync(self._fd)
        if self._syncing:
            self._retired.append(self._fd)
        else:
            os.close(self._fd)
        self._synced = self.last_seq
        self._segment_first = self.last_seq + 1
        self._fd = _open_segment(self.directory, self._segment_first)

    def close(self) -> None:
        """Flush and close the log, and release it for other processes."""
        with self._cond:
            if self._fd < 0:
                return
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        self._lock_file.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def read_events(directory: Path, after: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(seq, payload)`` of every event after ``after``, in order; a torn last line (a write
    cut short by a crash) ends the log; any other bad line, or a gap in the numbers (a removed
    segment), is an :class:`EventLogError`."""
    segments = _segments(directory)
    starts = [first for first, _ in segments] + [None]
    wanted = after + 1
    for (first, path), following in zip(segments, starts[1:], strict=True):
        if following is not None and following <= wanted:
            continue
        if first > wanted:
            raise EventLogError(f"{directory}: events {wanted}..{first - 1} are missing (a "
                                "segment was removed); restore it from a backup")
        for seq, payload in _checked(path, first):
            if seq >= wanted:
                yield seq, payload
                wanted = seq + 1


def _checked(path: Path, first: int) -> Iterator[tuple[int, bytes]]:
    """``(seq, payload)`` of a segment's lines, each checked; a torn tail ends it."""
    expected = first
    for number, _raw, payload, seq in _lines(path):
        if payload is None or seq != expected:
            if _is_tail(path, number):
                return
            raise EventLogError(f"{path}: line {number} is corrupted (bad checksum or "
                                f"sequence, expected event {expected}); restore the file "
                                "from a backup or truncate it before that line")
        yield seq, payload
        expected += 1


def last_event(directory: Path) -> int:
    """The sequence number of the last complete event (0 for none); reads the newest segment."""
    segments = _segments(directory)
    if not segments:
        return 0
    before = segments[-1][0] - 1
    return before + sum(1 for _ in read_events(directory, after=before))


def is_open(directory: Path) -> bool:
    """Whether a process holds the log open for writing (its lock is taken)."""
    if not (directory / "LOCK").exists():
        return False
    try:
        _exclusive_lock(directory).close()
    except EventLogError:
        return True
    return False


def _write_all(fd: int, lines: list[bytes]) -> None:
    data = memoryview(b"".join(lines))
    while data:
        data = data[os.write(fd, data):]


def _line(seq: int, payload: bytes) -> bytes:
    if b"\n" in payload:
        raise ValueError(f"event {seq}: an event's JSON must be one line (it holds a newline)")
    return b"%d\t%08x\t%s\n" % (seq, zlib.crc32(payload), payload)


def _lines(path: Path) -> Iterator[tuple[int, bytes, bytes | None, int | None]]:
    """``(line number, raw line, payload or None when bad, seq or None)`` of a segment."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield (number, raw, *_parse(raw))


def _parse(raw: bytes) -> tuple[bytes | None, int | None]:
    parts = raw.rstrip(b"\n").split(b"\t", 2)
    if not raw.endswith(b"\n") or len(parts) != 3 or not parts[0].isdigit():
        return None, None
    payload = parts[2]
    try:
        good = int(parts[1], 16) == zlib.crc32(payload)
    except ValueError:
        good = False
    return (payload, int(parts[0])) if good else (None, None)


def _is_tail(path: Path, number: int) -> bool:
    """Whether line ``number`` is the last line of the newest segment (a torn write)."""
    newest = _segments(path.parent)[-1][1]
    if path != newest:
        return False
    with path.open("rb") as handle:
        return sum(1 for _ in handle) == number


def _repair(directory: Path) -> tuple[int, int]:
    """Cut a torn last line off the newest segment; return (last seq, newest segment's first)."""
    segments = _segments(directory)
    if not segments:
        return 0, 1
    first, path = segments[-1]
    last, good_bytes = first - 1, 0
    for _number, raw, payload, seq in _lines(path):
        if payload is None or seq != last + 1:
            break
        last, good_bytes = last + 1, good_bytes + len(raw)
    if good_bytes < path.stat().st_size:
        list(read_events(directory, after=last))  # corruption before the tail raises here
        with path.open("rb+") as handle:
            handle.truncate(good_bytes)
            os.fsync(handle.fileno())
    return last, first


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = [(int(p.stem), p) for p in directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()]
    return sorted(found)


def _open_segment(directory: Path, first: int) -> int:
    path = directory / f"{first:020d}{_SUFFIX}"
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if created:
        fsync_dir(directory)
    return fd


def _exclusive_lock(directory: Path) -> TextIO:
    handle = (directory / "LOCK").open("a")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise EventLogError(f"{directory}: the event log is open for writing in another process "
                            "(a server or a replay --commit); stop it first") from exc
    return handle
