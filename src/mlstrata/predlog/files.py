"""The file sink: time-partitioned JSON Lines under a log directory, rotated by size and time.

Each stream (a model version's predictions, a model's feedback) has at most one open file per
process: ``<stream>/<YYYY-MM-DD>/<host>-<pid>-<seq>.jsonl``, created exclusively (``O_EXCL``:
a file is never shared or overwritten, even by a restarted process that got the same pid) and
only appended to. It is closed — flushed to disk with ``fsync`` — and a new one started when
the UTC day changes, when it reaches ``max_bytes`` or after ``max_seconds``, and on
:meth:`FileSink.close`. Each batch of lines goes to the file in one ``write`` with no buffer
in between, so other processes (a reader, another worker answering feedback) see it at once.

:meth:`FileSink.find` answers which request ids and keys a model's log holds, newest files
first, for feedback sent to a worker that did not answer the prediction itself.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._atomic import fsync_dir
from .format import feedback_dir, model_dir, write_format

__all__ = ["FileSink", "log_files"]

_MB = 1024 * 1024
_PAUSE_LINES = 32  # ~0.1 ms of serializing between two hand-overs of the interpreter lock
_ID_FIELD = re.compile(rb'"request_id":("(?:[^"\\]|\\.)*")')
_KEY_FIELD = re.compile(rb'"key":("(?:[^"\\]|\\.)*")')
_FEW = 16


@dataclass
class _Open:
    fd: int
    path: Path
    day: str
    opened: float
    size: int = 0


def log_files(root: Path, model: str | None = None, *, feedback: bool = False) -> list[Path]:
    """The ``.jsonl`` files of a log (one model's, or every model's), newest first; prediction
    files, or feedback files with ``feedback``."""
    if model is not None:
        models = [root / model]
    else:
        models = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    found: list[Path] = []
    for directory in models:
        streams = ([directory / "feedback"] if feedback
                   else [p for p in directory.glob("v*") if p.is_dir()])
        for stream in streams:
            found += stream.glob("*/*.jsonl")
    return sorted(found, key=_mtime, reverse=True)


class FileSink:
    """Writes log lines into ``root`` (see the module docstring)."""

    def __init__(self, root: Path, *, max_bytes: int = 64 * _MB,
                 max_seconds: float = 3600.0) -> None:
        self.root = Path(root)
        self.target = str(self.root)
        """The directory, as :func:`~mlstrata.predlog.open_log` takes it."""
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._files: dict[Path, _Open] = {}
        self._streams: dict[tuple[str, int | None], Path] = {}
        self._prefix = f"{socket.gethostname().replace('/', '_')}-{os.getpid()}"
        self._seq = 0
        write_format(self.root)

    def write(self, rows: Sequence[dict[str, Any]],
              pause: Callable[[], None] | None = None) -> None:
        """Append ``rows`` (prediction and feedback lines) to their streams' files, calling
        ``pause`` every few lines serialized."""
        groups: dict[tuple[Path, str], list[bytes]] = {}
        for done, row in enumerate(rows, 1):
            if pause is not None and done % _PAUSE_LINES == 0:
                pause()
            stream = self._stream(row["model"], row["version"] if row["kind"] == "prediction"
                                  else None)
            groups.setdefault((stream, row["time"][:10]), []).append(orjson.dumps(row))
        for (stream, day), lines in groups.items():
            lines.append(b"")
            self._append(stream, day, b"\n".join(lines))

    def _stream(self, model: str, version: int | None) -> Path:
        """The directory of a model version's predictions (or, version None, its feedback)."""
        key = (model, version)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = (feedback_dir(self.root, model) if version is None
                                           else model_dir(self.root, model, version))
        return stream

    def close(self) -> None:
        """Flush every open file to disk and close it."""
        for stream in list(self._files):
            self._close(stream)

    def find(self, model: str, request_ids: Iterable[str],
             keys: Iterable[str]) -> tuple[dict[str, int], set[str]]:
        """Which of ``request_ids`` (with their record counts) and ``keys`` ``model``'s log
        holds."""
        ids, wanted_keys = set(request_ids), set(keys)
        counts: Counter[str] = Counter()
        seen: set[str] = set()
        for path in log_files(self.root, model):
            data = _read_complete(path)
            counts.update(_matches(data, _ID_FIELD, b'"request_id":', ids))
            seen.update(_matches(data, _KEY_FIELD, b'"key":', wanted_keys - seen))
            if set(counts) >= ids and seen >= wanted_keys:
                break
        return dict(counts), seen

    def _append(self, stream: Path, day: str, data: bytes) -> None:
        current = self._files.get(stream)
        if current is not None and (current.day != day or current.size >= self.max_bytes
                                    or time.monotonic() - current.opened >= self.max_seconds):
            self._close(stream)
            current = None
        if current is None:
            current = self._files[stream] = self._create(stream / day, day)
        view = memoryview(data)
        while view:
            written = os.write(current.fd, view)
            view = view[written:]
        current.size += len(data)

    def _create(self, directory: Path, day: str) -> _Open:
        directory.mkdir(parents=True, exist_ok=True)
        while True:
            self._seq += 1
            path = directory / f"{self._prefix}-{self._seq:06d}.jsonl"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            except FileExistsError:
                continue
            return _Open(fd, path, day, time.monotonic())

    def _close(self, stream: Path) -> None:
        current = self._files.pop(stream)
        try:
            os.fsync(current.fd)
        finally:
            os.close(current.fd)
        fsync_dir(current.path.parent)


def _matches(data: bytes, pattern: re.Pattern[bytes], prefix: bytes,
             wanted: set[str]) -> Counter[str]:
    """How many lines of ``data`` carry each ``wanted`` value in the field ``prefix`` names."""
    found: Counter[str] = Counter()
    if not wanted:
        return found
    if len(wanted) <= _FEW:
        for value in wanted:
            hits = data.count(prefix + orjson.dumps(value))
            if hits:
                found[value] = hits
        return found
    for match in pattern.finditer(data):
        value = orjson.loads(match.group(1))
        if value in wanted:
            found[value] += 1
    return found


def _read_complete(path: Path) -> bytes:
    """A log file's complete lines (a last line still being written is left out)."""
    try:
        data = path.read_bytes()
    except OSError:
        return b""
    return data[:data.rfind(b"\n") + 1]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0

