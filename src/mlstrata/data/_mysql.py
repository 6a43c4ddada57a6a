"""Reader of MySQL and MariaDB servers (``mysql://`` or ``mariadb://`` URLs), by table or query.

The rows stream from the server through the driver's unbuffered cursor and land in DuckDB in
batches through pyarrow (:mod:`._mysql_client`), so memory stays flat whatever the table size; one
``INSERT`` casts them as it goes. A table is read in primary-key order, and a large one with an
integer key can be read in key ranges over several connections at once (:mod:`._mysql_ranges`).

The driver converts nothing: every value arrives as the text the server sent and DuckDB casts
each column to its declared type in the same pass that inserts it — integers (unsigned ``BIGINT``
as an unsigned 64-bit integer), ``DECIMAL(p,s)`` exactly up to 38 digits (DuckDB's limit; a float
beyond), ``FLOAT``/``DOUBLE``, ``TINYINT(1)``/``BOOL`` as booleans, ``DATE``, ``DATETIME`` and
``TIMESTAMP`` (MySQL's zero dates ``0000-00-00`` become missing) — while ``ENUM``, ``SET``,
``TEXT``, ``JSON`` and ``TIME`` stay text and binary columns (``BLOB``) become hex. The backup
keeps the decimals exact; the dataset version holds them as floats (:func:`decimals_to_double`).
The password comes from the URL or the ``MYSQL_PWD`` environment variable and never appears in a
message or the catalog.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import SourceError
from ._db_readers import database_extract, decimals_to_double, redact_url, source_statement
from ._extract import Extract, append_batches, check_unique, create_table
from ._mysql_client import (
    RangeTask,
    Statements,
    connect,
    explained_rows,
    fetch_all,
    mysql_driver,
    read_batches,
    record_batches,
    server_error,
    wire_schema,
)
from ._mysql_ranges import connections, in_order, mysql_quote, plan_reads
from .engine import quote_identifier

__all__ = ["MYSQL_SCHEMES", "mysql_engine_type", "read_mysql"]

MYSQL_SCHEMES = ("mysql", "mariadb")
_UNSIGNED, _BINARY = 32, 128  # column flags (pymysql.constants.FLAG)
# Column type codes (pymysql.constants.FIELD_TYPE)
_INTEGERS = {1, 2, 3, 8, 9, 13}  # TINY, SHORT, LONG, LONGLONG, INT24, YEAR
_FLOATS = {4, 5}  # FLOAT, DOUBLE
_DECIMALS = {0, 246}  # DECIMAL, NEWDECIMAL
_DATES = {10, 14}  # DATE, NEWDATE
_TIMESTAMPS = {7, 12}  # TIMESTAMP, DATETIME
_BYTES = {249, 250, 251, 252, 253, 254, 255}  # BLOB and string types; binary when flagged
_TEXT_COLUMNS = ("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                 "DATABASE() AND table_name = %s AND character_set_name IS NOT NULL")
_TABLES = ("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
           "ORDER BY 1")


def read_mysql(url: str, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
               table: str | None, query: str | None) -> Extract:
    """Extract a table or query result from MySQL/MariaDB into ``raw``, streamed in batches and
    typed as they are inserted."""
    driver = mysql_driver()
    shown = redact_url(url)
    db = connect(driver, url)
    what = "the database"
    workers = connections(url)
    try:
        tables = {name: mysql_quote(name) for (name,) in fetch_all(db, _TABLES)}
        sql, what, table = source_statement(shown, tables, table, query)
        plan = (plan_reads(functools.partial(fetch_all, db), lambda q: explained_rows(db, q), table,
                           tables[table], workers) if table else None)
        declared = fetch_all(db, _TEXT_COLUMNS, (table,)) if table else []
        cursor = db.cursor()
        cursor.execute(plan.statement("FALSE") if plan else sql)  # a table: its columns only
        names = [str(column[0]) for column in cursor.description]
        check_unique(names, f"{shown}: {what}")
        types = [mysql_engine_type(d, f) for d, f in zip(cursor.description,
                                                         driver.flags(cursor), strict=True)]
        types = _text_as_text(types, names, declared)
        binary = tuple(n for n, kind in enumerate(types) if kind != "VARCHAR")
        schema, select = wire_schema(names, binary), _typed_select(names, types)
        create_table(con, raw, schema, select)
        if plan is None:  # a query: its rows as the driver gives them
            append_batches(con, raw, schema, record_batches(cursor, schema), select)
        cursor.close()
        if plan and plan.ranges:
            tasks = [RangeTask(url, lines, values, tuple(names), binary,
                               str(staging / f"{raw}_{n:05d}.arrows"))
                     for n, (lines, values) in enumerate(zip(
                         plan.range_statements(_line(names, types)), plan.range_statements(),
                         strict=True))]
            append_batches(con, raw, schema, _range_batches(tasks, workers), select)
        elif plan:
            read_batches(db, Statements(plan.statement(select=_line(names, types)),
                                        plan.statement()), schema, f"{what} of {shown}",
                         lambda batches: append_batches(con, raw, schema, batches, select))
    except driver.module.Error as exc:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(raw)}")
        raise SourceError(f"{shown}: reading {what} failed ({server_error(exc)[1]}); check the "
                          "table or query") from exc
    except SourceError:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(raw)}")
        raise
    finally:
        db.close()
    details = {"target": shown, "driver": driver.name,
               **(plan.details(workers) if plan else {})}
    extract = database_extract(f"{what} of {shown}", False, con, staging, raw, table, query,
                               details)
    return decimals_to_double(con, raw, extract)


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


def _text_as_text(types: Sequence[str], names: Sequence[str],
                  declared: Sequence[tuple[Any, ...]]) -> list[str]:
    """``types`` with the table's text columns (``declared``: the names of those with a character
    set) read as text. The protocol flags a text column with a binary collation
    (``utf8mb4_bin``) as binary, as it flags BLOBs, so the flags alone would show it as hex.

    >>> _text_as_text(["BLOB", "BLOB", "BIGINT"], ["code", "photo", "n"], [("code",)])
    ['VARCHAR', 'BLOB', 'BIGINT']
    """
    text = {str(name) for (name, *_) in declared}
    return ["VARCHAR" if kind == "BLOB" and name in text else kind
            for name, kind in zip(names, types, strict=True)]


def _line(names: Sequence[str], types: Sequence[str]) -> str:
    """The select list that has the server write each row as one CSV line (read back by
    :func:`~._mysql_client.read_batches`). ``CONCAT``, not ``CONCAT_WS``: a field the server
    cannot write (longer than its ``max_allowed_packet``) makes the whole line NULL, which the
    reader sees, instead of dropping out of it."""
    fields = ", ',', ".join(_field(mysql_quote(name), kind)
                            for name, kind in zip(names, types, strict=True))
    return f"CAST(CONCAT({fields}) AS BINARY)"


def _field(column: str, kind: str) -> str:
    """One column's CSV field: text (converted to the connection's UTF-8, as the server sends it)
    and bytes quoted, other values as the text the server sends, NULL as an empty field.

    >>> print(_field("`n`", "BIGINT"))
    IFNULL(`n`, '')
    >>> print(_field("`t`", "VARCHAR"))
    IF(`t` IS NULL, '', CONCAT('"', REPLACE(CONVERT(`t` USING utf8mb4), '"', '""'), '"'))
    """
    if kind not in ("VARCHAR", "BLOB"):
        return f"IFNULL({column}, '')"
    text = f"CONVERT({column} USING utf8mb4)" if kind == "VARCHAR" else column
    return f"""IF({column} IS NULL, '', CONCAT('"', REPLACE({text}, '"', '""'), '"'))"""


def _typed_select(names: Sequence[str], types: Sequence[str]) -> str:
    """The expressions that turn the batches' columns into the table's: text as sent, bytes of a
    binary column as lower-case hex, any other column cast from its text to its declared type (a
    value that does not cast — only MySQL's zero dates can — becomes missing).

    >>> _typed_select(["a", "b", "c"], ["VARCHAR", "BLOB", "DATE"])
    '"a", lower(hex("b")) AS "b", TRY_CAST(CAST("c" AS VARCHAR) AS DATE) AS "c"'
    """
    columns = [quote_identifier(name) for name in names]
    return ", ".join(
        column if kind == "VARCHAR" else f"lower(hex({column})) AS {column}" if kind == "BLOB"
        else f"TRY_CAST(CAST({column} AS VARCHAR) AS {kind}) AS {column}"
        for column, kind in zip(columns, types, strict=True))
