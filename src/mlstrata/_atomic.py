"""Atomic file writes: write to a temporary file beside the target, fsync, then rename.

A crash at any moment leaves either the old file or the complete new one, never half of it.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
>>> write_text(target, "hi")
>>> target.read_text()
'hi'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .runtime.manifest import sha256_file  # one implementation, shared with the lean runtime

__all__ = ["atomic_path", "copy_hashed", "fsync_dir", "sha256_file", "write_bytes", "write_text"]

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(target: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(target: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically replace ``target`` with ``data``."""
    with atomic_path(target, mode) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str, mode: int = 0o644) -> None:
    """Atomically replace ``target`` with ``text`` encoded as UTF-8."""
    write_bytes(target, text.encode("utf-8"), mode)


def copy_hashed(source: BinaryIO, target: Path, mode: int = 0o644) -> str:
    """Stream ``source`` into ``target`` atomically and return the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    with atomic_path(target, mode) as tmp, tmp.open("wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
