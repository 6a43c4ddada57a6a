"""How a MySQL/MariaDB table is read: in primary-key order, and in key ranges over several
connections when the key is one integer column and the table is large.

One connection streams every row through one process: the server writes each row as a CSV line,
the ingesting process parses the lines with pyarrow and DuckDB casts and inserts them (see
:mod:`._mysql`). A table with an integer primary key can instead be cut into ranges of key values
(``BETWEEN lo AND hi``), each read by its own worker process over its own connection while the
ingesting process loads the ranges in key order. The result is the single stream's, row for row:
every read of a table with a primary key is ordered by it (free on InnoDB, whose rows are stored
in key order), so the row order is defined either way. Only :data:`LOOKAHEAD` ranges per
connection are read ahead of the one being loaded, each in batches.

The ranges hold about the same number of *rows*, not the same width of keys: they are cut by
halving the key interval until the server's estimate of a part's rows (``EXPLAIN``, which InnoDB
answers from a few dives into the index, in milliseconds) is at most twice :data:`RANGE_ROWS`,
and neighbouring parts that hold few rows are joined again. A skewed key (a few huge ids, a long
gap after deletes) thus gives ranges of comparable size, and memory and staging space stay
bounded by a few ranges; the estimates are approximate (InnoDB's are within a factor of about
two), so are the range sizes.

The ranges help when the server and the ingest do not share the same few cores: by default a
server on this machine (``localhost``, a loopback address or a socket) or a machine of fewer than
four cores reads one stream, which measured faster there (see README). Each range is its own
consistent read, taken at a slightly different moment: a table written to during the ingest may
give a result no single moment had. ``MLSTRATA_MYSQL_CONNECTIONS=1`` reads it as one stream (one
consistent read).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import SourceError

__all__ = ["CONNECTIONS_VARIABLE", "MAX_CONNECTIONS", "RANGE_ROWS", "KeyPlan", "connections",
           "in_order", "mysql_quote", "plan_reads", "row_ranges"]

CONNECTIONS_VARIABLE = "MLSTRATA_MYSQL_CONNECTIONS"
MAX_CONNECTIONS = 16  # reader processes at most (~90 MB each)
RANGE_ROWS = 100_000  # rows a key range should hold; tables of fewer than two are not split
LOOKAHEAD = 2  # ranges per connection read ahead of the one being loaded
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_PRIMARY_KEY = """SELECT k.column_name, c.data_type FROM information_schema.key_column_usage k
JOIN information_schema.columns c ON c.table_schema = k.table_schema
  AND c.table_name = k.table_name AND c.column_name = k.column_name
WHERE k.table_schema = DATABASE() AND k.table_name = %s AND k.constraint_name = 'PRIMARY'
ORDER BY k.ordinal_position"""
_ESTIMATE = ("SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() "
             "AND table_name = %s")

Fetch = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]  # (sql, its %s parameters)
Estimate = Callable[[str], int]  # the server's estimate of the rows a statement reads


@dataclass(frozen=True)
class KeyPlan:
    """The statements that read a table: ``order_by`` its primary key columns (none: no key),
    and the inclusive key ranges of ``column`` to read in parallel (empty: one stream)."""

    table: str  # the quoted table name
    order_by: tuple[str, ...] = ()
    column: str | None = None
    ranges: tuple[tuple[int, int], ...] = ()

    def statement(self, where: str = "", select: str = "*") -> str:
        """``SELECT`` of the table (``where``: a condition), in key order when it has a key."""
        order = f" ORDER BY {', '.join(map(mysql_quote, self.order_by))}" if self.order_by else ""
        return f"SELECT {select} FROM {self.table}{f' WHERE {where}' if where else ''}{order}"

    def range_statements(self, select: str = "*") -> list[str]:
        """One statement per key range, in key order."""
        column = mysql_quote(str(self.column))
        return [self.statement(f"{column} BETWEEN {lo} AND {hi}", select)
                for lo, hi in self.ranges]

    def details(self, workers: int) -> dict[str, Any]:
        """What the catalog records about the read: the key order, and the parallel ranges."""
        if not self.order_by:
            return {}
        split = {"connections": workers, "key_ranges": len(self.ranges)} if self.ranges else {}
        return {"order_by": list(self.order_by), **split}


def connections(url: str) -> int:
    """How many connections read a large table from the server at ``url``:
    ``MLSTRATA_MYSQL_CONNECTIONS``, else one when the server is on this machine or the machine
    has fewer than four cores (the server, the reader and the ingest then share them, and one
    stream measured faster), else the CPU count up to 4."""
    wanted = os.environ.get(CONNECTIONS_VARIABLE, "")
    if not wanted:
        cores = os.cpu_count() or 1
        return 1 if cores < 4 or _is_local(url) else min(4, cores)
    if not wanted.isdigit() or not 1 <= int(wanted) <= MAX_CONNECTIONS:
        raise SourceError(f"{CONNECTIONS_VARIABLE}={wanted!r}: give a whole number of "
                          f"connections from 1 to {MAX_CONNECTIONS} (1 reads the table as one "
                          "stream; each connection is a reader process of ~60 MB)")
    return int(wanted)


def _is_local(url: str) -> bool:
    """Whether the server at ``url`` runs on this machine (a loopback host or a socket).

    >>> _is_local("mysql://ann@127.0.0.1:3306/db"), _is_local("mysql://ann@db.example/db")
    (True, False)
    """
    parts = urlsplit(url)
    host = (parts.hostname or "127.0.0.1").lower()
    return (host in _LOCAL_HOSTS or host.startswith("127.")
            or "unix_socket" in dict(parse_qsl(parts.query)))


def plan_reads(fetch: Fetch, estimate: Estimate, name: str, quoted: str,
               workers: int) -> KeyPlan:
    """How to read table ``name`` (``quoted`` for SQL); ``fetch`` runs a query on the server,
    ``name`` bound as its parameter, and returns its rows as text; ``estimate`` returns the
    server's estimate of a query's rows."""
    key = fetch(_PRIMARY_KEY, (name,))
    plan = KeyPlan(quoted, tuple(str(column) for column, _ in key))
    if workers < 2 or len(key) != 1 or str(key[0][1]).lower() not in _INTEGER_TYPES:
        return plan
    ((rows,),) = fetch(_ESTIMATE, (name,)) or [(0,)]
    if int(rows or 0) < 2 * RANGE_ROWS:
        return plan
    column = mysql_quote(plan.order_by[0])
    ((low, high),) = fetch(f"SELECT MIN({column}), MAX({column}) FROM {quoted}", ())
    if low is None:
        return plan
    ranges = row_ranges(
        lambda lo, hi: estimate(f"SELECT 1 FROM {quoted} WHERE {column} BETWEEN {lo} AND {hi}"),
        int(low), int(high), RANGE_ROWS, probes=4 * math.ceil(int(rows) / RANGE_ROWS) + 128)
    return KeyPlan(quoted, plan.order_by, plan.order_by[0], ranges) if len(ranges) > 1 else plan


def row_ranges(rows_in: Callable[[int, int], int], low: int, high: int, target: int, *,
               probes: int) -> tuple[tuple[int, int], ...]:
    """``[low, high]`` cut into inclusive key ranges of about ``target`` rows each, ``rows_in``
    estimating the rows of a range: a range estimated over ``2 * target`` is halved (at most
    ``probes`` estimates in all, so a server whose estimates make no sense cannot keep it
    splitting), then neighbours whose estimates sum to at most ``2 * target`` are joined.

    >>> keys = [*range(1, 1001), 10**12]  # dense keys and one far outlier
    >>> rows_in = lambda lo, hi: sum(lo <= k <= hi for k in keys)
    >>> [rows_in(lo, hi) for lo, hi in row_ranges(rows_in, 1, 10**12, 100, probes=100)]
    [117, 116, 117, 116, 117, 116, 117, 185]
    """
    leaves: list[tuple[int, int, int]] = []
    pending = [(low, high)]
    while pending:
        lo, hi = pending.pop()
        rows = rows_in(lo, hi)
        probes -= 1
        if lo < hi and rows > 2 * target and probes > len(pending):
            middle = lo + (hi - lo) // 2
            pending += [(middle + 1, hi), (lo, middle)]  # the lower half is taken next
        else:
            leaves.append((lo, hi, rows))
    joined = [leaves[0]]
    for lo, hi, rows in leaves[1:]:
        first, _, before = joined[-1]
        if before + rows <= 2 * target:
            joined[-1] = (first, hi, before + rows)
        else:
            joined.append((lo, hi, rows))
    return tuple((lo, hi) for lo, hi, _ in joined)


def in_order(command: Sequence[str], tasks: Sequence[Mapping[str, Any]],
             workers: int) -> Generator[str, None, None]:
    """Run ``tasks`` on ``workers`` processes started with ``command`` and yield their results in
    task order; at most :data:`LOOKAHEAD` tasks per worker run ahead of the one yielded.

    The protocol is one JSON line per task on a worker's stdin and one JSON line back on its
    stdout, ``{"result": ...}`` or ``{"error": "one line"}`` (raised as a :class:`SourceError`).
    Task ``i`` goes to worker ``i % workers``, which answers its tasks in the order given. Plain
    processes rather than :mod:`multiprocessing`: nothing is forked from a process running DuckDB's
    threads, and nothing depends on how the caller's main module is written.
    """
    count = min(workers, len(tasks))
    # stderr goes to a file, not a pipe: a worker writing more than a pipe holds (warnings, a
    # long traceback) would block on it while this process waits for its stdout
    errors = [tempfile.TemporaryFile(mode="w+") for _ in range(count)]
    processes = [subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=error, text=True) for error in errors]
    try:
        for number in range(min(len(tasks), LOOKAHEAD * count)):
            _send(processes[number % count], tasks[number])
        for number in range(len(tasks)):
            process = processes[number % count]
            answer = _receive(process, errors[number % count])
            if number + LOOKAHEAD * count < len(tasks):
                _send(process, tasks[number + LOOKAHEAD * count])
            yield str(answer)
    finally:
        _stop(processes)
        for error in errors:
            error.close()


def _send(process: subprocess.Popen[str], task: Mapping[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(task) + "\n")
    process.stdin.flush()


def _receive(process: subprocess.Popen[str], error: IO[str]) -> Any:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        error.seek(0)
        lines = error.read().strip().splitlines() or ["no message"]
        raise SourceError(f"a reader process stopped (exit code {process.returncode}: "
                          f"{lines[-1]}); read the table as one stream with "
                          f"{CONNECTIONS_VARIABLE}=1")
    answer = json.loads(line)
    if "error" in answer:
        raise SourceError(str(answer["error"]))
    return answer["result"]


def _stop(processes: Sequence[subprocess.Popen[str]], grace: float = 2.0) -> None:
    """Close every worker's stdin (each exits at the end of its input), give them ``grace``
    seconds together, then end those still busy (the read stopped early)."""
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.terminate()
    for process in processes:
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def mysql_quote(name: str) -> str:
    """A MySQL identifier in backticks (a backtick inside doubled).

    >>> mysql_quote("odd`name")
    '`odd``name`'
    """
    return "`" + name.replace("`", "``") + "`"
