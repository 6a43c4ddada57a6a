"""Reader of MySQL and MariaDB servers (``mysql://`` or ``mariadb://`` URLs), by table or query.

Rows stream through PyMySQL's unbuffered cursor (``SSCursor``: the server sends rows as they are
read, the client never holds the whole result) and land in DuckDB in chunks through pyarrow, so
memory stays flat whatever the table size. Columns keep their declared types: integers, unsigned
``BIGINT`` (as an unsigned 64-bit integer), ``DECIMAL(p,s)`` (exact in the backup, up to 38
digits, DuckDB's limit; a float in the dataset version, which records the declared type),
``FLOAT``/``DOUBLE``, ``TINYINT(1)``/``BOOL`` as booleans, ``DATE``,
``DATETIME``/``TIMESTAMP`` (MySQL's zero dates ``0000-00-00`` become missing), and everything
else — ``ENUM``, ``SET``, ``TEXT``, ``JSON``, ``TIME`` — as text (``BLOB`` as hex). The password
comes from the URL or the ``MYSQL_PWD`` environment variable and never appears in a message or
the catalog.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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
from ._extract import CHUNK_ROWS, Extract, append_rows, cell_text, check_unique, create_table

__all__ = ["MYSQL_SCHEMES", "connect_mysql", "mysql_arrow_type", "read_mysql"]

MYSQL_SCHEMES = ("mysql", "mariadb")
_DEFAULT_PORT = 3306
_UNSIGNED = 32  # pymysql.constants.FLAG.UNSIGNED
_BINARY_CHARSET = 63
# pymysql.constants.FIELD_TYPE codes
_INTEGERS = {1, 2, 3, 8, 9, 13}  # TINY, SHORT, LONG, LONGLONG, INT24, YEAR
_FLOATS = {4, 5}  # FLOAT, DOUBLE
_DECIMALS = {0, 246}  # DECIMAL, NEWDECIMAL
_DATES = {10, 14}  # DATE, NEWDATE
_TIMESTAMPS = {7, 12}  # TIMESTAMP, DATETIME
_TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
           "ORDER BY 1")


def connect_mysql(url: str) -> Any:
    """An open PyMySQL connection with an unbuffered cursor class, or a :class:`SourceError`
    naming the redacted URL and the server's reason (never the password)."""
    import pymysql
    import pymysql.cursors

    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password else os.environ.get("MYSQL_PWD")
    options = dict(parse_qsl(parts.query))
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise SourceError(f"{redact_url(url)} names no database; add it to the URL, like "
                          "mysql://user@host:3306/sales")
    try:
        return pymysql.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or _DEFAULT_PORT,
            user=unquote(parts.username or ""), password=password or "", database=database,
            unix_socket=options.get("unix_socket"), charset="utf8mb4", connect_timeout=10,
            cursorclass=pymysql.cursors.SSCursor)
    except pymysql.MySQLError as exc:
        reason = first_line(exc).replace(password or "\0", "***")
        raise SourceError(f"cannot connect to {redact_url(url)} ({reason}); check the host, port, "
                          "database, user and password (URL or MYSQL_PWD), and that the server "
                          "is running") from exc


def read_mysql(url: str, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
               table: str | None, query: str | None) -> Extract:
    """Extract a table or query result from MySQL/MariaDB into ``raw``, streamed in chunks."""
    import pymysql

    shown = redact_url(url)
    db = connect_mysql(url)
    what = "the database"
    try:
        with db.cursor() as cursor:
            cursor.execute(_TABLES)
            tables = {name: _quote(name) for (name,) in cursor.fetchall()}
        sql, what, table = source_statement(shown, tables, table, query)
        with db.cursor() as cursor:
            cursor.execute(sql)
            names = [str(column[0]) for column in cursor.description]
            check_unique(names, f"{shown}: {what}")
            types = [mysql_arrow_type(d, f.flags, f.charsetnr)
                     for d, f in zip(cursor.description, cursor._result.fields, strict=True)]
            schema = pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
            create_table(con, raw, schema)
            append_rows(con, raw, schema, _stream(cursor), [_converter(t) for t in types])
    except pymysql.MySQLError as exc:
        raise SourceError(f"{shown}: reading {what} failed ({first_line(exc)}); check the "
                          "table or query") from exc
    finally:
        db.close()
    extract = database_extract(f"{what} of {shown}", False, con, staging, raw, table, query,
                               {"target": shown})
    return decimals_to_double(con, raw, extract)


def mysql_arrow_type(description: Sequence[Any], flags: int, charset: int) -> pa.DataType:
    """The Arrow type of a result column from its DB-API description, flags and character set.

    >>> mysql_arrow_type(("paid", 1, None, 1, 1, 0, True), 0, 63)
    DataType(bool)
    >>> mysql_arrow_type(("amount", 246, None, 12, 12, 2, True), 0, 63)
    Decimal128Type(decimal128(10, 2))
    """
    code, length, scale = description[1], description[3] or 0, description[5] or 0
    if code == 1 and length == 1:
        return pa.bool_()
    if code in _INTEGERS:
        return pa.uint64() if code == 8 and flags & _UNSIGNED else pa.int64()
    if code in _FLOATS:
        return pa.float64()
    if code in _DECIMALS:
        sign = 0 if flags & _UNSIGNED else 1
        precision = length - sign - (1 if scale else 0)
        return pa.decimal128(precision, scale) if 0 < precision <= 38 else pa.float64()
    if code in _DATES:
        return pa.date32()
    if code in _TIMESTAMPS:
        return pa.timestamp("us")
    del charset  # text and binary both arrive as text (BLOB as hex through cell_text)
    return pa.string()


def _converter(arrow_type: pa.DataType) -> Callable[[Any], Any] | None:
    """How to turn a PyMySQL cell into a value of ``arrow_type`` (None: as it comes)."""
    if arrow_type == pa.string():
        return cell_text
    if arrow_type == pa.bool_():
        return _to_bool
    if arrow_type == pa.float64():
        return _to_float
    if arrow_type in (pa.date32(), pa.timestamp("us")):
        return _to_date
    return None


def _to_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _to_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _to_date(value: Any) -> dt.date | None:
    """A date or datetime; MySQL's zero dates (which PyMySQL returns as text) are missing."""
    return value if isinstance(value, dt.date) else None


def _stream(cursor: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of an unbuffered cursor, fetched :data:`CHUNK_ROWS` at a time."""
    while rows := cursor.fetchmany(CHUNK_ROWS):
        yield from rows


def _quote(name: str) -> str:
    """A MySQL identifier in backticks (a backtick inside doubled)."""
    return "`" + name.replace("`", "``") + "`"
