"""Write scored batches to a file or a database table, all or nothing.

A destination (``DST``) is one of:

- ``PATH.parquet`` (or ``.pq``) and ``PATH.csv`` — a file, written to a temporary file beside it,
  batch by batch, and renamed onto ``PATH`` only when the run succeeds, so a crashed or
  interrupted run leaves no partial file (and an existing file untouched);
- ``sqlite:///PATH.db?table=NAME`` (a relative path; four slashes for an absolute one, as in
  SQLAlchemy) or ``PATH.db`` / ``.sqlite`` / ``.sqlite3`` with a table name — a SQLite table,
  replaced inside one transaction;
- ``postgresql://USER@HOST/DB?table=NAME`` — a PostgreSQL table, replaced inside one transaction
  (rows loaded with ``COPY``); readers see the old table until the commit.

The table may also be given apart (``mlstrata predict --output-table NAME``).
:class:`TableWriter` opens its destination at the first table written to it, so a rejects file
appears only when there are rejects; every writer entered in the same
:class:`contextlib.ExitStack` is committed when the stack closes normally and discarded when it
closes with an exception.

>>> parse_destination("sqlite:////tmp/scores.db?table=daily")
Destination(kind='sqlite', location='/tmp/scores.db', table='daily')
>>> parse_destination("sqlite:///scores.db", table="daily").location
'scores.db'

>>> parse_destination("scores.csv").kind
'csv'
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from .._atomic import atomic_path
from ..data._db_readers import redact_url
from ..data.engine import quote_identifier
from ..errors import SourceError

__all__ = ["Destination", "TableWriter", "default_rejects_path", "parse_destination"]

DestinationKind = Literal["parquet", "csv", "sqlite", "postgres"]
Write = Callable[[pa.Table], None]
_FILES: dict[str, DestinationKind] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_FORMS = ("PATH.parquet, PATH.csv, sqlite:///PATH.db?table=NAME or "
          "postgresql://USER@HOST/DB?table=NAME")


@dataclass(frozen=True)
class Destination:
    """Where scored rows go: a ``kind``, a path or URL (no ``table`` parameter) and a table."""

    kind: DestinationKind
    location: str
    table: str | None = None

    def __str__(self) -> str:
        if self.kind == "postgres":
            return f"{redact_url(self.location)} table {self.table}"
        return f"{self.location} table {self.table}" if self.table else self.location

    @property
    def path(self) -> Path | None:
        """The file written (the database file for SQLite), None for PostgreSQL."""
        return None if self.kind == "postgres" else Path(self.location)


def parse_destination(dst: str, table: str | None = None) -> Destination:
    """Read a ``DST`` string (see the module docstring); ``table`` overrides ``?table=``."""
    parts = urlsplit(dst)
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        query = parse_qsl(parts.query)
        named = next((v for k, v in query if k == "table"), None)
        rest = urlencode([(k, v) for k, v in query if k != "table"])
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
        return Destination("postgres", url, _table(dst, table or named))
    if scheme == "sqlite":
        named = dict(parse_qsl(parts.query)).get("table")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return Destination("sqlite", path or parts.netloc, _table(dst, table or named))
    suffix = Path(dst).suffix.lower()
    if suffix in _SQLITE_SUFFIXES:
        return Destination("sqlite", dst, _table(dst, table))
    if suffix not in _FILES:
        raise SourceError(f"{dst}: cannot tell the output format from "
                          f"{suffix or 'a name without extension'!r}; write to {_FORMS}")
    if table is not None:
        raise SourceError(f"{dst}: --output-table applies to database outputs, not files; "
                          "remove it")
    return Destination(_FILES[suffix], dst)


def _table(dst: str, table: str | None) -> str:
    if not table:
        shown = redact_url(dst) if dst.lower().startswith("postgres") else dst
        raise SourceError(f"{shown}: a database output needs a table; add ?table=NAME or pass "
                          "--output-table NAME")
    return table


def default_rejects_path(destination: Destination) -> Path:
    """``<output stem>.rejects.csv`` beside a file output; ``<table>.rejects.csv`` beside a
    SQLite file; in the current folder for PostgreSQL."""
    if destination.kind in ("parquet", "csv"):
        path = Path(destination.location)
        return path.with_name(f"{path.stem}.rejects.csv")
    folder = Path(destination.location).parent if destination.kind == "sqlite" else Path()
    return folder / f"{destination.table}.rejects.csv"


class TableWriter:
    """Appends Arrow tables to ``destination``; opened lazily, committed by ``stack`` (see the
    module docstring). Every table written must have the first one's schema."""

    def __init__(self, destination: Destination, stack: contextlib.ExitStack[Any]) -> None:
        self.destination = destination
        self.rows = 0
        self._stack = stack
        self._write: Write | None = None

    @property
    def opened(self) -> bool:
        """Whether anything was written (the destination exists once the stack commits)."""
        return self._write is not None

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (opening the destination with its schema on the first call)."""
        if self._write is None:
            self._write = self._stack.enter_context(_open(self.destination, table.schema))
        self._write(table)
        self.rows += table.num_rows


def _open(destination: Destination, schema: pa.Schema) -> contextlib.AbstractContextManager[Write]:
    if destination.kind == "parquet":
        import pyarrow.parquet as pq

        # Dictionary-encoding probabilities (distinct floats) costs half the write and falls back
        # to plain anyway: encode only the columns that repeat (labels, model, run id, keys).
        repeating = [f.name for f in schema if not pa.types.is_floating(f.type)]
        return _arrow_file(Path(destination.location), schema,
                           functools.partial(pq.ParquetWriter, use_dictionary=repeating))
    if destination.kind == "csv":
        import pyarrow.csv as pacsv

        return _arrow_file(Path(destination.location), schema, pacsv.CSVWriter)
    if destination.kind == "sqlite":
        return _sqlite(Path(destination.location), str(destination.table), schema)
    return _postgres(destination.location, str(destination.table), schema)


@contextlib.contextmanager
def _arrow_file(path: Path, schema: pa.Schema, open_writer: Any) -> Iterator[Write]:
    """A pyarrow file writer (Parquet or CSV) on a temporary file renamed into place at the end."""
    with atomic_path(path) as tmp:
        writer = open_writer(tmp, schema)
        try:
            yield writer.write_table
        finally:
            writer.close()


@contextlib.contextmanager
def _sqlite(path: Path, table: str, schema: pa.Schema) -> Iterator[Write]:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    name = quote_identifier(table)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"CREATE TABLE {name} ({_columns(schema, _SQLITE_TYPE)})")
        insert = f"INSERT INTO {name} VALUES ({', '.join('?' * len(schema))})"

        def write(data: pa.Table) -> None:
            con.executemany(insert, _rows(data))

        yield write
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        con.execute("ROLLBACK")
        raise SourceError(f"{path}: writing table {table!r} failed ({exc}); nothing was "
                          "written") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


@contextlib.contextmanager
def _postgres(url: str, table: str, schema: pa.Schema) -> Iterator[Write]:
    import psycopg

    shown = redact_url(url)
    name = ".".join(quote_identifier(part) for part in table.split(".", 1))
    try:
        pg = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to {shown} ({str(exc).strip().splitlines()[0]}); "
                          "check the host, port, database and user") from exc
    try:
        with pg, pg.transaction():
            pg.execute(f"DROP TABLE IF EXISTS {name}")
            pg.execute(f"CREATE TABLE {name} ({_columns(schema, _POSTGRES_TYPE)})")
            copy = f"COPY {name} FROM STDIN"

            def write(data: pa.Table) -> None:
                with pg.cursor().copy(copy) as sink:
                    for row in _rows(data):
                        sink.write_row(row)

            yield write
    except psycopg.Error as exc:
        raise SourceError(f"{shown}: writing table {table!r} failed "
                          f"({str(exc).strip().splitlines()[0]}); nothing was written") from exc


_SQLITE_TYPE = {"int": "INTEGER", "float": "REAL", "bool": "INTEGER", "text": "TEXT"}
_POSTGRES_TYPE = {"int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN", "text": "TEXT",
                  "date": "DATE", "timestamp": "TIMESTAMP"}


def _columns(schema: pa.Schema, types: dict[str, str]) -> str:
    return ", ".join(f"{quote_identifier(f.name)} {types.get(_family(f.type), 'TEXT')}"
                     for f in schema)


def _family(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "int"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "float"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    return "text"


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` as tuples; dates and timestamps as ISO text (both databases parse
    it, and SQLite has no date type)."""
    columns = [pc.cast(c, pa.string()) if _family(c.type) in ("date", "timestamp") else c
               for c in table.columns]
    return zip(*(c.to_pylist() for c in columns), strict=True)
