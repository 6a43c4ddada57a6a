"""What every source reader shares: the :class:`Extract` it returns and the chunked row sink.

Readers that get rows from Python (xlsx, SQLite, PostgreSQL) append them to DuckDB through
:func:`append_rows`, a fixed number of rows at a time via pyarrow, so memory stays flat whatever
the source size.
"""

from __future__ import annotations

import datetime as dt
import json
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

__all__ = ["CHUNK_ROWS", "Extract", "append_rows", "cell_text", "check_unique", "create_table",
           "text_schema", "write_parquet"]

CHUNK_ROWS = 10_000


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


def create_table(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema) -> None:
    """An empty DuckDB table with the columns of an Arrow schema."""
    _with_view(con, table, schema.empty_table(),
               f"CREATE TABLE {quote_identifier(table)} AS SELECT * FROM {{view}}")


def append_rows(con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema,
                rows: Iterable[Sequence[Any]],
                converters: Sequence[Callable[[Any], Any] | None]) -> None:
    """Append ``rows`` to ``table`` in chunks of :data:`CHUNK_ROWS`, each column's values passed
    through its converter (None: as they are) and typed by ``schema``."""
    for chunk in _chunks(rows):
        arrays = [pa.array([convert(v) for v in values] if convert else values, type=f.type)
                  for values, f, convert in zip(zip(*chunk, strict=True), schema, converters,
                                                strict=True)]
        _with_view(con, table, pa.Table.from_arrays(arrays, schema=schema),
                   f"INSERT INTO {quote_identifier(table)} SELECT * FROM {{view}}")


def _with_view(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, sql: str) -> None:
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
