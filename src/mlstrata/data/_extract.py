"""What every source reader shares: the :class:`Extract` it returns and the chunked row sink.

Readers that get rows from Python (xlsx, SQLite, PostgreSQL, MySQL) append them to DuckDB through
:func:`append_rows`: pyarrow batches of a fixed number of rows, which one ``INSERT`` on another
thread reads as a stream while the next rows are fetched (a per-chunk ``INSERT`` cost three times
as much), so memory stays flat whatever the source size.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import SourceError
from .engine import quote_identifier, quote_literal
from .inference import Locate

__all__ = ["CHUNK_ROWS", "Extract", "append_batches", "append_rows", "cell_text", "check_unique",
           "create_table", "row_batches", "text_schema", "write_parquet"]

CHUNK_ROWS = 10_000
_HANDOFF_BATCHES = 4  # batches produced ahead of the INSERT (memory stays a few chunks)


@dataclass(frozen=True)
class Extract:
    """A source read into a raw DuckDB table, before typing.

    ``source`` names the data in messages (a path, ``sheet 'x' of book.xlsx``, a redacted URL);
    ``infer`` is true when the raw columns are text to type by inference; ``database`` is true
    when ``raw_path`` is an extracted Parquet rather than the user's file.
    """

    source: str
    infer: bool
    locate: Locate
    raw_path: Path
    database: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def check_unique(names: Sequence[str], where: str) -> None:
    """Refuse duplicate column names, naming both positions (1-based)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise SourceError(f"{where} names column {name!r} twice (columns {seen[name]} and "
                              f"{position}); rename one of them")
        seen[name] = position


def text_schema(names: Sequence[str]) -> pa.Schema:
    """An Arrow schema with one string column per name."""
    return pa.schema([pa.field(name, pa.string()) for name in names])


def create_table(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema,
                 select: str = "*") -> None:
    """An empty DuckDB table with the columns of an Arrow schema (``select``: expressions over
    them, such as casts, whose types the table takes)."""
    # an empty reader, not schema.empty_table(): that imports pandas (~50 MB, 0.5 s)
    _with_view(con, table, pa.RecordBatchReader.from_batches(schema, []),
               f"CREATE TABLE {quote_identifier(table)} AS SELECT {select} FROM {{view}}")


def append_rows(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema,
                rows: Iterable[Sequence[Any]],
                converters: Sequence[Callable[[Any], Any] | None]) -> None:
    """Append ``rows`` to ``table`` in chunks of :data:`CHUNK_ROWS`, each column's values passed
    through its converter (None: as they are) and typed by ``schema``."""
    append_batches(con, table, schema, row_batches(rows, schema, converters))


def row_batches(rows: Iterable[Sequence[Any]], schema: pa.Schema,
                converters: Sequence[Callable[[Any], Any] | None]) -> Iterator[pa.RecordBatch]:
    """``rows`` as record batches of :data:`CHUNK_ROWS` rows typed by ``schema``, each column's
    values passed through its converter (None: as they are)."""
    for chunk in _chunks(rows):
        arrays = [pa.array([convert(v) for v in values] if convert else values, type=f.type)
                  for values, f, convert in zip(zip(*chunk, strict=True), schema, converters,
                                                strict=True)]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def append_batches(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema,
                   batches: Iterable[pa.RecordBatch], select: str = "*") -> None:
    """Append ``batches`` to ``table`` in one ``INSERT`` that reads them as a stream (``select``:
    the expressions over their columns that give the table's, as for :func:`create_table`).

    The batches are produced on the calling thread (database drivers such as sqlite3 refuse to
    be used from another) and handed through a small queue to a thread running the ``INSERT``,
    which DuckDB executes without holding the GIL — so inserting overlaps fetching. An error on
    either side stops both and is raised as it was raised.
    """
    handoff: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=_HANDOFF_BATCHES)
    failed: list[BaseException] = []

    def fed() -> Iterator[pa.RecordBatch]:
        while (batch := handoff.get()) is not None:
            yield batch
        if aborted.is_set():
            raise SourceError("the read stopped")

    def insert() -> None:
        try:
            _with_view(con, table, pa.RecordBatchReader.from_batches(schema, fed()),
                       f"INSERT INTO {quote_identifier(table)} SELECT {select} FROM {{view}}")
        except BaseException as exc:  # raised on the calling thread below
            failed.append(exc)

    aborted = threading.Event()
    worker = threading.Thread(target=insert, name="mlstrata-insert", daemon=True)
    worker.start()
    try:
        for batch in batches:
            if not _hand(handoff, batch, worker):
                break
    except BaseException:
        aborted.set()
        raise
    finally:
        _hand(handoff, None, worker)
        worker.join()
    if failed:
        raise failed[0]


def _hand(handoff: queue.Queue[pa.RecordBatch | None], batch: pa.RecordBatch | None,
          worker: threading.Thread) -> bool:
    """Put ``batch`` on the queue unless the inserting thread has stopped; whether it was put."""
    while worker.is_alive():
        try:
            handoff.put(batch, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


def _with_view(con: duckdb.DuckDBPyConnection, table: str, data: pa.RecordBatchReader,
               sql: str) -> None:
    """Run ``sql`` with ``{view}`` naming ``data`` registered as a temporary view."""
    view = f"_arrow_{table}"
    con.register(view, data)
    try:
        con.execute(sql.format(view=quote_identifier(view)))
    finally:
        con.unregister(view)


def _chunks(rows: Iterable[Sequence[Any]]) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK_ROWS)):
        yield chunk


def cell_text(value: Any) -> str | None:
    """A Python value as the text a CSV export would hold, so inference can type it.

    >>> [cell_text(v) for v in (None, True, 7, 2.5, dt.date(2024, 1, 31), b"\\x01")]
    [None, 'true', '7', '2.5', '2024-01-31', '01']
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def write_parquet(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> Path:
    """Write ``table`` to ``path`` as Parquet (the backup of a database extract)."""
    con.execute(f"COPY {quote_identifier(table)} TO {quote_literal(str(path))} (FORMAT parquet)")
    return path
