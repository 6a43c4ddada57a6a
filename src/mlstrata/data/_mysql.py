"""Reader of MySQL and MariaDB servers (``mysql://`` or ``mariadb://`` URLs), by table or query.

Driver: mysqlclient (C, ``pip install mysqlclient``; needs the MariaDB/MySQL client headers to
build) when it is installed — about four times faster — else PyMySQL (pure Python, always
installed). ``MLSTRATA_MYSQL_DRIVER=pymysql|mysqlclient`` forces one. Either way rows stream
through the driver's unbuffered cursor (``SSCursor``: the server sends rows as they are read,
the client never holds the whole result) and land in DuckDB in chunks through pyarrow, so memory
stays flat whatever the table size. A table is read in primary-key order, and a large one with an
integer key in key ranges over several connections at once (:mod:`._mysql_ranges`).

The driver converts nothing: every value arrives as the text the server sent and DuckDB casts
each column to its declared type in one vectorized pass — integers (unsigned ``BIGINT`` as an
unsigned 64-bit integer), ``DECIMAL(p,s)`` exactly up to 38 digits (DuckDB's limit; a float
beyond), ``FLOAT``/``DOUBLE``, ``TINYINT(1)``/``BOOL`` as booleans, ``DATE``, ``DATETIME`` and
``TIMESTAMP`` (MySQL's zero dates ``0000-00-00`` become missing) — while ``ENUM``, ``SET``,
``TEXT``, ``JSON`` and ``TIME`` stay text and binary columns (``BLOB``) become hex. The backup
keeps the decimals exact; the dataset version holds them as floats (:func:`decimals_to_double`).
The password comes from the URL or the ``MYSQL_PWD`` environment variable and never appears in a
message or the catalog.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb
import pyarrow as pa

from ..errors import SourceError
from ._db_readers import (
    database_extract,
    decimals_to_double,
    first_line,
    redact_url,
    source_statement,
)
from ._extract import (
    CHUNK_ROWS,
    Extract,
    append_batches,
    cell_text,
    check_unique,
    create_table,
    row_batches,
    text_schema,
)
from ._mysql_ranges import connections, in_order, mysql_quote, plan_reads
from .engine import quote_identifier

__all__ = ["MYSQL_SCHEMES", "MySQLDriver", "RangeTask", "mysql_driver", "mysql_engine_type",
           "read_mysql", "read_range"]

MYSQL_SCHEMES = ("mysql", "mariadb")
DRIVER_VARIABLE = "MLSTRATA_MYSQL_DRIVER"
_DEFAULT_PORT = 3306
_UNSIGNED, _BINARY = 32, 128  # column flags (pymysql.constants.FLAG)
# Column type codes (pymysql.constants.FIELD_TYPE)
_INTEGERS = {1, 2, 3, 8, 9, 13}  # TINY, SHORT, LONG, LONGLONG, INT24, YEAR
_FLOATS = {4, 5}  # FLOAT, DOUBLE
_DECIMALS = {0, 246}  # DECIMAL, NEWDECIMAL
_DATES = {10, 14}  # DATE, NEWDATE
_TIMESTAMPS = {7, 12}  # TIMESTAMP, DATETIME
_BYTES = {249, 250, 251, 252, 253, 254, 255}  # BLOB and string types; binary when flagged
_CONNECT_FIXES: dict[int | None, str] = {
    1044: "check that the user may read this database",
    1045: "check the user and the password (in the URL or MYSQL_PWD)",
    1049: "check the database name in the URL",
}
_TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
           "ORDER BY 1")


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


def read_mysql(url: str, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
               table: str | None, query: str | None) -> Extract:
    """Extract a table or query result from MySQL/MariaDB into ``raw``, streamed in chunks."""
    driver = mysql_driver()
    shown = redact_url(url)
    db = _connect(driver, url)
    what, text = "the database", f"{raw}_text"
    workers = connections()
    try:
        tables = {name: mysql_quote(name) for (name,) in _fetch_all(db, _TABLES)}
        sql, what, table = source_statement(shown, tables, table, query)
        plan = (plan_reads(lambda q: _fetch_all(db, q), table, tables[table], workers)
                if table else None)
        cursor = db.cursor()
        cursor.execute(plan.statement("FALSE") if plan and plan.ranges  # the columns only
                       else plan.statement() if plan else sql)
        names = [str(column[0]) for column in cursor.description]
        check_unique(names, f"{shown}: {what}")
        types = [mysql_engine_type(d, f) for d, f in zip(cursor.description,
                                                         driver.flags(cursor), strict=True)]
        schema = text_schema(names)
        create_table(con, text, schema)
        blobs = tuple(n for n, kind in enumerate(types) if kind == "BLOB")
        if plan and plan.ranges:
            cursor.close()
            tasks = [RangeTask(url, statement, tuple(names), blobs,
                               str(staging / f"{raw}_{n:05d}.arrows"))
                     for n, statement in enumerate(plan.range_statements())]
            append_batches(con, text, schema, _range_batches(tasks, workers))
        else:
            append_batches(con, text, schema, _batches(cursor, schema, blobs))
            cursor.close()
    except driver.module.Error as exc:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(text)}")
        raise SourceError(f"{shown}: reading {what} failed ({_server_error(exc)[1]}); check the "
                          "table or query") from exc
    except SourceError:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(text)}")
        raise
    finally:
        db.close()
    _typed(con, text, raw, names, types)
    details = {"target": shown, "driver": driver.name,
               **(plan.details(workers) if plan else {})}
    extract = database_extract(f"{what} of {shown}", False, con, staging, raw, table, query,
                               details)
    return decimals_to_double(con, raw, extract)


@dataclass(frozen=True)
class RangeTask:
    """One key range for a worker process: where to read, what columns to expect (and which
    hold bytes), and the Arrow stream file to write."""

    url: str
    statement: str
    names: tuple[str, ...]
    blobs: tuple[int, ...]
    path: str


def read_range(task: RangeTask) -> str:
    """Read one key range over a connection of its own into an Arrow stream file (run in a
    worker process, :mod:`._mysql_worker`); the file's path."""
    driver = mysql_driver()
    db = _connect(driver, task.url)
    try:
        cursor = db.cursor()
        cursor.execute(task.statement)
        if tuple(str(column[0]) for column in cursor.description) != task.names:
            raise SourceError(f"{redact_url(task.url)}: the table's columns changed while it was "
                              "read; ingest it again")
        schema = text_schema(task.names)
        with pa.OSFile(task.path, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in _batches(cursor, schema, task.blobs):
                writer.write_batch(batch)
        cursor.close()
    except driver.module.Error as exc:
        raise SourceError(f"{redact_url(task.url)}: reading {task.statement} failed "
                          f"({_server_error(exc)[1]}); check the table") from exc
    finally:
        db.close()
    return task.path


def _range_batches(tasks: Sequence[RangeTask], workers: int) -> Iterator[pa.RecordBatch]:
    """The batches of every range in key order, read by ``workers`` processes; each range's file
    is deleted once loaded (and every file when the read stops early)."""
    command = [sys.executable, "-m", "mlstrata.data._mysql_worker"]
    paths = in_order(command, [dataclasses.asdict(t) for t in tasks], workers)
    try:
        for path in paths:
            with pa.OSFile(path, "rb") as source:
                yield from pa.ipc.open_stream(source)
            os.unlink(path)
    finally:
        paths.close()  # the workers stop before their files are removed
        for task in tasks:
            Path(task.path).unlink(missing_ok=True)


def _batches(cursor: Any, schema: pa.Schema, blobs: Sequence[int]) -> Iterator[pa.RecordBatch]:
    """The rows of an unbuffered cursor as text batches (binary columns as hex)."""
    converters = [cell_text if n in blobs else None for n in range(len(schema))]
    return row_batches(_stream(cursor), schema, converters)


def _fetch_all(db: Any, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a small query, text values decoded."""
    cursor = db.cursor()
    try:
        cursor.execute(sql)
        return [tuple(_text(v) if isinstance(v, bytes) else v for v in row)
                for row in cursor.fetchall()]
    finally:
        cursor.close()


def mysql_engine_type(description: Sequence[Any], flags: int) -> str:
    """The DuckDB type of a result column from its DB-API description and flags (``BLOB``: bytes
    to show as hex text; ``VARCHAR``: text as sent).

    >>> mysql_engine_type(("paid", 1, None, 1, 1, 0, True), 0)
    'BOOLEAN'
    >>> mysql_engine_type(("amount", 246, None, 12, 12, 2, True), 0)
    'DECIMAL(10,2)'
    """
    code, length, scale = description[1], description[3] or 0, description[5] or 0
    if code == 1 and length == 1:
        return "BOOLEAN"
    if code in _INTEGERS:
        return "UBIGINT" if code == 8 and flags & _UNSIGNED else "BIGINT"
    if code in _FLOATS:
        return "DOUBLE"
    if code in _DECIMALS:
        precision = length - (0 if flags & _UNSIGNED else 1) - (1 if scale else 0)
        return f"DECIMAL({precision},{scale})" if 0 < precision <= 38 else "DOUBLE"
    if code in _DATES:
        return "DATE"
    if code in _TIMESTAMPS:
        return "TIMESTAMP"
    if code in _BYTES and flags & _BINARY:
        return "BLOB"
    return "VARCHAR"


def _connect(driver: MySQLDriver, url: str) -> Any:
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
        code, reason = _server_error(exc)
        fix = _CONNECT_FIXES.get(code, "check the host and port, and that the server is running")
        raise SourceError(f"cannot connect to {redact_url(url)} "
                          f"({reason.replace(password or chr(0), '***')}); {fix}") from exc


def _server_error(exc: Exception) -> tuple[int | None, str]:
    """The server's error code and message (``MySQL error 1045: Access denied ...``)."""
    if len(exc.args) >= 2 and isinstance(exc.args[0], int):
        return exc.args[0], f"MySQL error {exc.args[0]}: {str(exc.args[1]).splitlines()[0]}"
    return None, first_line(exc)


def _typed(con: duckdb.DuckDBPyConnection, text: str, raw: str, names: Sequence[str],
           types: Sequence[str]) -> None:
    """Create ``raw`` from the text table ``text``, each column cast to its declared type (a
    value that does not cast — only MySQL's zero dates can — becomes missing)."""
    columns = [quote_identifier(name) for name in names]
    select = ", ".join(
        column if kind in ("VARCHAR", "BLOB") else f"TRY_CAST({column} AS {kind}) AS {column}"
        for column, kind in zip(columns, types, strict=True))
    try:
        con.execute(f"CREATE TABLE {quote_identifier(raw)} AS SELECT {select} "
                    f"FROM {quote_identifier(text)}")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(text)}")


def _stream(cursor: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of an unbuffered cursor, fetched :data:`CHUNK_ROWS` at a time."""
    while rows := cursor.fetchmany(CHUNK_ROWS):
        yield from rows


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value

