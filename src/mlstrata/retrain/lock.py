"""The retrain lock: one retrain of a dataset at a time, and a one-line refusal naming the holder.

The lock is a file ``.mlstrata/locks/retrain-<name>.lock`` created exclusively (``O_EXCL``) and
holding who took it (user, host, process id, command) and when. A second retrain is refused with
that information. A lock left by a process that no longer runs on this host (a crash, a killed
pod) is taken over, so one crash never blocks retraining for good; a lock from another host is
always respected (its process cannot be checked from here).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import MlstrataError

__all__ = ["RetrainLockedError", "lock_path", "retrain_lock"]


class RetrainLockedError(MlstrataError):
    """Another retrain of the same dataset holds the lock."""


def lock_path(store: Path, name: str) -> Path:
    """Where the lock of dataset ``name`` lives inside the workspace store ``store``."""
    return store / "locks" / f"retrain-{name}.lock"


@contextlib.contextmanager
def retrain_lock(store: Path, name: str, command: str) -> Iterator[dict[str, Any]]:
    """Hold the retrain lock of ``name`` for the ``with`` block; refuse when another holds it.

    >>> import tempfile
    >>> store = Path(tempfile.mkdtemp())
    >>> with retrain_lock(store, "credit", "doctest") as held:
    ...     try:
    ...         with retrain_lock(store, "credit", "second"):
    ...             pass
    ...     except RetrainLockedError as exc:
    ...         print(str(exc)[:40])
    another retrain of credit holds the lock
    >>> lock_path(store, "credit").exists()
    False
    """
    path = lock_path(store, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
              "since": datetime.now(UTC).isoformat(timespec="seconds"), "command": command}
    _acquire(path, holder, name)
    try:
        yield holder
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _acquire(path: Path, holder: dict[str, Any], name: str) -> None:
    for _ in range(2):  # a second try only after removing a dead process's lock
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            found = _read(path)
            if found is not None and not _dead(found):
                raise RetrainLockedError(_refusal(name, found, path)) from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(holder))
        return
    raise RetrainLockedError(f"another retrain of {name} took the lock just now ({path}); "
                             "try again when it has finished")


def _read(path: Path) -> dict[str, Any] | None:
    """The holder recorded in ``path``; None when it vanished meanwhile."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return {"since": "unknown", "host": "unknown", "pid": "?", "user": "unknown",
                "command": f"an unreadable lock file ({len(text)} bytes)"}
    return found if isinstance(found, dict) else {}


def _dead(holder: dict[str, Any]) -> bool:
    """True when the holder ran on this host and its process is gone."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _refusal(name: str, holder: dict[str, Any], path: Path) -> str:
    return (f"another retrain of {name} holds the lock (since {holder.get('since')}, "
            f"{holder.get('user')} on {holder.get('host')}, pid {holder.get('pid')}: "
            f"{holder.get('command')}); wait for it to finish — or, if that process is gone, "
            f"delete {path}")
