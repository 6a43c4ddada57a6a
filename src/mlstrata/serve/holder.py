"""The model a server answers with, swappable while requests are in flight.

A request reads :attr:`ModelHolder.current` once and uses that model to the end, so replacing
it (when the registry alias moves to a new version) never changes a model under a running
request and drops none: the old model is released when its last request finishes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..runtime.model import LoadedModel, load

__all__ = ["ModelHolder"]


class ModelHolder:
    """Holds the served model; :meth:`refresh` loads a new package when ``locate`` moves.

    ``locate`` returns the package directory the server should serve now (for ``MODEL@alias``,
    whatever the alias points at); it is called by :meth:`refresh`, e.g. every few seconds.
    ``strict`` loads every version so that it refuses values breaking warn rules too.
    """

    def __init__(self, locate: Callable[[], Path], *, threads: int | None = 1,
                 strict: bool = False) -> None:
        self._locate = locate
        self._threads = threads
        self._strict = strict
        self._lock = threading.Lock()
        self._path = locate()
        self.current: LoadedModel = load(self._path, threads=threads, strict=strict)

    @property
    def path(self) -> Path:
        """The package directory of the current model."""
        return self._path

    def refresh(self) -> bool:
        """Load and swap in the package ``locate`` names now, if it changed; True if swapped.

        A package that fails to load (e.g. a sha256 mismatch) raises and the current model
        keeps serving.
        """
        with self._lock:
            path = self._locate()
            if path == self._path:
                return False
            model = load(path, threads=self._threads, strict=self._strict)
            self._path, self.current = path, model
            return True
