"""Run a benchmarked command and read its own peak RSS, not the benchmark process's.

The trap: on Linux a child's ``ru_maxrss`` (what ``os.wait4`` returns) starts from memory it
never used. ``fork`` copies the parent's page tables, so the child's resident-set counters start
at the parent's; ``vfork`` and ``posix_spawn`` (what ``subprocess`` uses) share the parent's
memory until ``exec``; and ``exec`` folds the high-water mark of the memory it drops — the
parent's, in both cases — into the process's ``maxrss``, which survives the ``exec`` (and any
``taskset`` in between). A benchmark that has generated 1 GB of input, or trained a model, in
its own process therefore reads about 1 GB for every command it measures, whatever the command
used. (Measured: from a parent holding 500 MB, ``python -S -c pass`` reads 513 MB through
``subprocess`` — with or without ``taskset`` or ``posix_spawn`` — and 8 MB through the launcher.)

The fix is a lean launcher: the benchmark starts a fresh ``python -I -S`` process (its own
``maxrss`` is tainted, but it is never reported) whose memory is a few MB; the launcher pins
itself to the requested CPUs, spawns the command, waits for it with ``os.wait4`` and writes the
command's ``ru_maxrss``, wall seconds and exit code to a pipe. The command inherits only the
launcher's few MB, so the figure is the command's own peak (or the launcher's ~8 MB, whichever is
larger). Reading ``VmHWM`` from ``/proc/<pid>/status`` instead would need the process stopped
just before it exits; polling it misses the last peak.

Linux only (``ru_maxrss`` is in KiB there; ``sched_setaffinity``), like the benchmarks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measured", "run_measured"]

_LAUNCHER = r"""
import os, sys, time
fd, cpus, command = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
os.set_inheritable(fd, False)
if cpus:
    os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})
start = time.perf_counter()
pid = os.posix_spawnp(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
os.write(fd, f"{usage.ru_maxrss} {seconds} {os.waitstatus_to_exitcode(status)}".encode())
"""


@dataclass(frozen=True)
class Measured:
    """A measured command: its stdout (when captured), wall seconds, peak RSS, exit code."""

    stdout: str
    seconds: float
    peak_rss_mb: float
    exit_code: int


def run_measured(command: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
                 cpus: str = "", capture: bool = False) -> Measured:
    """Run ``command`` through the lean launcher; see the module docstring.

    ``cpus`` ("0", "0,1") pins the command like ``taskset -c``; ``capture`` keeps its stdout
    (otherwise discarded). stderr passes through. Peak RSS is in MiB (``ru_maxrss`` / 1024),
    the unit the results have always used.
    """
    read, write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write), cpus,
             *map(os.fspath, command)],
            cwd=cwd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            pass_fds=(write,))
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as results:
        out, _ = process.communicate()
        line = results.read().decode()
    if process.returncode != 0 or not line:
        raise RuntimeError(f"the launcher could not run {os.fspath(command[0])!r} "
                           f"(exit code {process.returncode}; its error is above)")
    maxrss_kib, seconds, code = line.split()
    return Measured((out or b"").decode(), float(seconds), int(maxrss_kib) / 1024, int(code))
