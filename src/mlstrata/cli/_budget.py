"""The time budget of a budgeted command (``train``, ``automl``) as the user measures it.

A user times the whole process: interpreter start, imports, the search, the finish, and the
interpreter's exit. These helpers keep all of that inside ``--time-budget`` (and
:func:`calm_openmp` keeps multi-threaded fits from collapsing on a busy machine):

- :func:`process_started` dates the budget from the process's start (not from when the command
  function runs, after Python and the command line have loaded);
- :func:`load_finishing_stack` imports what only the finishing steps use (the ONNX converters,
  matplotlib for the error-analysis plots) *before* the search, so its cost — 3–5 s on the
  2-core machine — is paid where the search's clock sees it instead of after the search has
  already stopped;
- :func:`skip_collector_at_exit`: after the result is printed, the interpreter's exit ran the
  garbage collector over ~470,000 objects (1.6–2.0 s measured, 0.2 s without), work that frees
  memory the operating system reclaims anyway.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["budgeted_process", "calm_openmp", "load_finishing_stack", "process_started",
           "skip_collector_at_exit"]


@contextmanager
def budgeted_process() -> Iterator[float]:
    """The body of a budgeted command: yields when the budget began (the process's start),
    with OpenMP calmed and the finishing stack loaded first; after a body that returned, the
    exit's garbage collection is skipped (not after an error: nothing is printed to wait for)."""
    begun = process_started()
    calm_openmp()
    load_finishing_stack()
    yield begun
    skip_collector_at_exit()


_MAX_STARTUP_SECONDS = 60.0
"""A process older than this when its command runs was not dated right (no command takes a
minute to import): the budget then counts from now."""


def process_started() -> float:
    """When this ``mlstrata`` process started, as a ``time.monotonic()`` value.

    Now, when the command runs inside another program (a test runner, a notebook: its start is
    not this command's), the process table cannot be read, or the age it gives is not
    believable (over ``_MAX_STARTUP_SECONDS``: the kernel dates processes on the boot clock,
    which a suspended machine's can disagree with; a budget that began "hours ago" would end
    before the first trial).

    >>> process_started() <= time.monotonic()
    True
    """
    now = time.monotonic()
    if not _own_process():
        return now
    try:  # start in clock ticks since boot (field 22); the name in parentheses may hold spaces
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux: count from now
        return now
    return now - age if 0.0 <= age <= _MAX_STARTUP_SECONDS else now


def calm_openmp() -> None:
    """Let OpenMP's idle threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``, unless
    the environment already says) — in the ``mlstrata`` process only, and before any library
    loads the OpenMP runtime (it reads the variable once). On cores other work keeps busy, a
    spinning LightGBM/XGBoost thread waits for one the system has descheduled: refitting a
    four-model ensemble on 20,000 rows took 13.4 s with two spinning threads at load average
    3.2, 2.5–3.4 s with passive ones (1.6–2.5 s on one thread)."""
    if _own_process():
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load_finishing_stack() -> None:
    """Import the ONNX converters and matplotlib now, inside the budget's clock."""
    import matplotlib.pyplot  # noqa: F401 - the error-analysis plots

    from ..package.double_precision import register_converters

    register_converters()


def skip_collector_at_exit() -> None:
    """Leave the long-lived objects out of the exit's garbage collection (``gc.freeze``) — in
    the ``mlstrata`` process only: a program that called the command lives on and keeps
    collecting.

    Frozen objects held in reference cycles are never collected, so their finalizers
    (``__del__``, weak-reference callbacks) do not run at exit. Hence: the young generations
    are collected first (the garbage the command has just made: closed handles, finished runs;
    milliseconds), and nothing of mlstrata's is left to a finalizer by then — the catalog opens
    and closes a connection per call, DuckDB connections are closed by ``with``, the MLflow run
    is ended by :func:`mlstrata.model.tracking.training_run`, temporary folders are removed by
    ``with`` or ``atexit``, which still runs. Objects reached only through old cycles (imported
    libraries' caches, MLflow's SQLAlchemy pool) are dropped by the operating system with the
    process; their SQLite files are complete (checked: no ``-wal`` or ``-journal`` file is left
    after ``automl``)."""
    if _own_process():
        gc.collect(1)
        gc.freeze()


def _own_process() -> bool:
    """Whether this process is the ``mlstrata`` command (not a test runner or notebook)."""
    return Path(sys.argv[0]).name == "mlstrata"
