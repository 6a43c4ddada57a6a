"""The client side of a MySQL/MariaDB read: the driver, the connection, and the server's rows as
Arrow record batches — everything a reader process needs, and no DuckDB.

Driver: mysqlclient (C, ``pip install mysqlclient``; needs the MariaDB/MySQL client headers to
build) when it is installed — about four times faster — else PyMySQL (pure Python, always
installed). ``MLSTRATA_MYSQL_DRIVER=pymysql|mysqlclient`` forces one. Either way rows stream
through the driver's unbuffered cursor (``SSCursor``: the server sends rows as they are read,
the client never holds the whole result), and the driver converts nothing: each value is the text
the server sent, as ``bytes`` for numbers, dates and binary columns and as ``str`` for text.

A batch keeps that split (:func:`wire_schema`): the columns that arrive as bytes stay Arrow
``binary`` — no UTF-8 decoding of every number in Python; DuckDB reads them as text when it casts
them — and text columns are Arrow ``string``. The ingest (:mod:`._mysql`) casts each column to its
declared type; a key-range reader process (:mod:`._mysql_worker`) writes the batches to an Arrow
stream file for it. Importing this module loads pyarrow and the driver only, so a reader process
starts in a fraction of the ingest's start-up time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
from pyarrow import csv

from ..errors import SourceError
from ._source_text import first_line, redact_url

__all__ = ["DRIVER_VARIABLE", "MySQLDriver", "RangeTask", "Statements", "connect", "explained_rows",
           "fetch_all", "mysql_driver", "read_batches", "read_range", "record_batches",
           "server_error", "wire_schema"]

DRIVER_VARIABLE = "MLSTRATA_MYSQL_DRIVER"
BATCH_ROWS = 10_000  # rows fetched and converted at a time
_DEFAULT_PORT = 3306
_CONNECT_FIXES: dict[int | None, str] = {
    1044: "check that the user may read this database",
    1045: "check the user and the password (in the URL or MYSQL_PWD)",
    1049: "check the database name in the URL",
}


@dataclass(frozen=True)
class MySQLDriver:
    """A DB-API driver for MySQL: its module, unbuffered cursor and how to connect raw."""

    name: str
    module: ModuleType

    def connect(self, **options: Any) -> Any:
        """A connection whose unbuffered cursors return every value unconverted."""
        if self.name == "mysqlclient":
            import MySQLdb.cursors

            return self.module.connect(**options, conv={}, cursorclass=MySQLdb.cursors.SSCursor)
        import pymysql.converters
        import pymysql.cursors

        return self.module.connect(**options, conv=dict(pymysql.converters.encoders),
                                   cursorclass=pymysql.cursors.SSCursor)

    def flags(self, cursor: Any) -> list[int]:
        """The column flags of the cursor's result (unsigned, binary, ...)."""
        if self.name == "mysqlclient":
            return list(cursor.description_flags)
        return [field.flags for field in cursor._result.fields]


def mysql_driver() -> MySQLDriver:
    """mysqlclient when installed, else PyMySQL; ``MLSTRATA_MYSQL_DRIVER`` forces one."""
    wanted = os.environ.get(DRIVER_VARIABLE, "")
    if wanted not in ("", "mysqlclient", "pymysql"):
        raise SourceError(f"{DRIVER_VARIABLE}={wanted!r}: use mysqlclient or pymysql")
    if wanted in ("", "mysqlclient"):
        try:
            import MySQLdb
        except ImportError as exc:
            if wanted:
                raise SourceError(f"{DRIVER_VARIABLE}=mysqlclient but mysqlclient is not "
                                  "installed; pip install mysqlclient") from exc
        else:
            return MySQLDriver("mysqlclient", MySQLdb)
    import pymysql

    return MySQLDriver("pymysql", pymysql)


def connect(driver: MySQLDriver, url: str) -> Any:
    """An open connection, or a :class:`SourceError` naming the redacted URL and the server's
    reason (never the password)."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else os.environ.get("MYSQL_PWD")
    options = dict(parse_qsl(parts.query))
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise SourceError(f"{redact_url(url)} names no database; add it to the URL, like "
                          "mysql://user@host:3306/sales")
    socket = {"unix_socket": options["unix_socket"]} if "unix_socket" in options else {}
    try:
        return driver.connect(host=parts.hostname or "127.0.0.1",
                              port=parts.port or _DEFAULT_PORT, user=unquote(parts.username or ""),
                              password=password or "", database=database, charset="utf8mb4",
                              connect_timeout=10, **socket)
    except driver.module.Error as exc:
        code, reason = server_error(exc)
        fix = _CONNECT_FIXES.get(code, "check the host and port, and that the server is running")
        raise SourceError(f"cannot connect to {redact_url(url)} "
                          f"({reason.replace(password or chr(0), '***')}); {fix}") from exc


def server_error(exc: Exception) -> tuple[int | None, str]:
    """The server's error code and message (``MySQL error 1045: Access denied ...``)."""
    if len(exc.args) >= 2 and isinstance(exc.args[0], int):
        return exc.args[0], f"MySQL error {exc.args[0]}: {str(exc.args[1]).splitlines()[0]}"
    return None, first_line(exc)


def fetch_all(db: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of a small query (``params`` bound to its ``%s``), text values decoded."""
    cursor = db.cursor()
    try:
        cursor.execute(sql, tuple(params) or None)
        return [tuple(v.decode() if isinstance(v, bytes) else v for v in row)
                for row in cursor.fetchall()]
    finally:
        cursor.close()


def explained_rows(db: Any, sql: str) -> int:
    """The server's estimate of the rows ``sql`` reads (the ``rows`` of its ``EXPLAIN``)."""
    cursor = db.cursor()
    try:
        cursor.execute(f"EXPLAIN {sql}")
        column = [str(d[0]).lower() for d in cursor.description].index("rows")
        return sum(int(row[column] or 0) for row in cursor.fetchall())
    finally:
        cursor.close()


def wire_schema(names: Sequence[str], binary: Sequence[int]) -> pa.Schema:
    """The Arrow schema of the result's batches: the columns at the ``binary`` positions (numbers,
    dates, BLOBs: sent as bytes) as ``binary``, the others as ``string``."""
    return pa.schema([pa.field(name, pa.binary() if n in binary else pa.string())
                      for n, name in enumerate(names)])


def record_batches(cursor: Any, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The rows of an unbuffered cursor as record batches of :data:`BATCH_ROWS` rows."""
    types = schema.types
    while rows := cursor.fetchmany(BATCH_ROWS):
        columns = zip(*rows, strict=True)  # every row has every column
        arrays = [pa.array(values, type=kind) for values, kind in zip(columns, types, strict=True)]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass(frozen=True)
class Statements:
    """Two ways to read the same rows: each row as one CSV line the server writes (text and bytes
    quoted, NULL an empty field: ``lines``), or its values as they are (``values``)."""

    lines: str
    values: str


def read_batches(db: Any, statements: Statements, schema: pa.Schema, source: str,
                 consume: Callable[[Iterator[pa.RecordBatch]], None]) -> None:
    """Hand the batches of a read to ``consume``: the rows as CSV lines, or — should a row be
    longer than the server's ``max_allowed_packet`` as a line — all of them again as the driver's
    values (``consume`` must start afresh: an ``INSERT`` that stopped left nothing, a file is
    written anew). ``source`` names the read in messages."""
    cursor = db.cursor()
    try:
        cursor.execute(statements.lines)
        try:
            consume(_line_batches(cursor, schema, source))
            return
        except _LongLine:
            cursor.close()  # reads the rest of the result off the connection
        cursor = db.cursor()
        cursor.execute(statements.values)
        consume(record_batches(cursor, schema))
    finally:
        cursor.close()


class _LongLine(SourceError):
    """The server gave NULL for a row's line: the line is longer than its max_allowed_packet."""


def _line_batches(cursor: Any, schema: pa.Schema, source: str) -> Iterator[pa.RecordBatch]:
    """The rows of an unbuffered cursor over a one-column result of CSV lines as record batches
    of :data:`BATCH_ROWS` rows, parsed by pyarrow's CSV reader (one value a row for the driver to
    turn into a Python object, instead of one a column: most of the read's cost)."""
    parse = csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
    convert = csv.ConvertOptions(column_types=schema, strings_can_be_null=True,
                                 quoted_strings_can_be_null=False, null_values=[""])
    number = 0
    while rows := cursor.fetchmany(BATCH_ROWS):
        lines = [row[0] for row in rows]
        if None in lines:
            raise _LongLine(f"{source}: row {number + lines.index(None) + 1} is longer than the "
                            "server's max_allowed_packet")
        data = b"\n".join(lines)
        read = csv.ReadOptions(column_names=schema.names, use_threads=False,
                               block_size=len(data) + 1)
        try:
            yield from csv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse,
                                    convert_options=convert).to_batches()
        except pa.ArrowInvalid as exc:
            raise SourceError(f"{source}: rows {number + 1}-{number + len(lines)} cannot be read "
                              f"({first_line(exc)}); check the table's character set") from exc
        number += len(lines)


@dataclass(frozen=True)
class RangeTask:
    """One key range for a reader process: where to read, the columns to expect (and which arrive
    as bytes), and the Arrow stream file to write."""

    url: str
    lines: str
    values: str
    names: tuple[str, ...]
    binary: tuple[int, ...]
    path: str


def read_range(task: RangeTask) -> str:
    """Read one key range over a connection of its own into an Arrow stream file (run in a reader
    process, :mod:`._mysql_worker`); the file's path."""
    driver = mysql_driver()
    db = connect(driver, task.url)
    schema = wire_schema(task.names, task.binary)

    def write(batches: Iterator[pa.RecordBatch]) -> None:
        with pa.OSFile(task.path, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)

    try:
        read_batches(db, Statements(task.lines, task.values), schema, redact_url(task.url), write)
    except driver.module.Error as exc:
        raise SourceError(f"{redact_url(task.url)}: reading {task.values} failed "
                          f"({server_error(exc)[1]}); check the table") from exc
    finally:
        db.close()
    return task.path
