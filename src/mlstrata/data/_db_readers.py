"""Readers of databases: SQLite and DuckDB files, and PostgreSQL servers, by table or query.

The extracted result is copied into DuckDB (SQLite and PostgreSQL rows in chunks through pyarrow,
so memory stays flat) and written to a Parquet file under staging — the backup of a database
source. SQLite is dynamically typed, so its values go through inference like text; DuckDB and
PostgreSQL columns keep their declared types. Messages never show a password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from difflib import get_close_matches
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from ..errors import SourceError
from ._extract import (
    Extract,
    append_rows,
    cell_text,
    check_unique,
    create_table,
    text_schema,
    write_parquet,
)
from ._source_text import first_line, redact_url
from .engine import quote_identifier, quote_literal

__all__ = ["PG_ARROW_TYPES", "database_extract", "decimals_to_double", "first_line",
           "pg_converter", "read_duckdb", "read_postgres", "read_sqlite", "redact_url",
           "source_statement"]

PG_ARROW_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(),
    701: pa.float64(), 1700: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}
_PG_TABLES = ("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
              "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")


def read_sqlite(path: Path, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
                table: str | None, query: str | None) -> Extract:
    """Extract a table or query result of a SQLite file into ``raw`` as text (for inference)."""
    import sqlite3

    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    what = "the database"
    try:
        tables = {name: quote_identifier(name) for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")}
        sql, what, table = source_statement(str(path), tables, table, query)
        cursor = db.execute(sql)
        names = [column[0] for column in cursor.description]
        check_unique(names, f"{path}: {what}")
        schema = text_schema(names)
        create_table(con, raw, schema)
        append_rows(con, raw, schema, cursor, [cell_text] * len(names))
    except sqlite3.Error as exc:
        raise SourceError(f"{path}: reading {what} failed ({exc}); check that the file is a "
                          "SQLite database and the table or query is right") from exc
    finally:
        db.close()
    return database_extract(f"{what} of {path}", True, con, staging, raw, table, query)


def read_duckdb(path: Path, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
                table: str | None, query: str | None) -> Extract:
    """Extract a table or query result of a DuckDB file (attached read-only) into ``raw``."""
    alias = f"_source_{raw}"
    try:
        con.execute(f"ATTACH {quote_literal(str(path))} AS {quote_identifier(alias)} (READ_ONLY)")
    except duckdb.Error as exc:
        raise SourceError(f"{path} cannot be opened as a DuckDB database ({first_line(exc)}); "
                          "check the file, or close the program that holds it open") from exc
    what = "the database"
    try:
        tables = {
            (name if schema == "main" else f"{schema}.{name}"):
                f"{quote_identifier(alias)}.{quote_identifier(schema)}.{quote_identifier(name)}"
            for schema, name in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
                "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? "
                "ORDER BY 1, 2", [alias, alias]).fetchall()}
        sql, what, table = source_statement(str(path), tables, table, query)
        _create_from_query(con, alias, raw, sql, f"{path}: {what}")
    except duckdb.Error as exc:
        raise SourceError(f"{path}: reading {what} failed ({first_line(exc)}); check the table "
                          "or query") from exc
    finally:
        con.execute(f"DETACH {quote_identifier(alias)}")
    return database_extract(f"{what} of {path}", False, con, staging, raw, table, query)


def _create_from_query(con: duckdb.DuckDBPyConnection, alias: str, raw: str, sql: str,
                       where: str) -> None:
    """CREATE ``raw`` in the current database from ``sql`` run with ``alias`` as default."""
    database, schema = con.execute("SELECT current_database(), current_schema()").fetchall()[0]
    con.execute(f"USE {quote_identifier(alias)}")
    try:
        names = [str(row[0]) for row in con.execute(f"DESCRIBE {sql}").fetchall()]
        check_unique(names, where)
        con.execute(f"CREATE TABLE {quote_identifier(database)}.{quote_identifier(schema)}."
                    f"{quote_identifier(raw)} AS {sql}")
    finally:
        con.execute(f"USE {quote_identifier(database)}.{quote_identifier(schema)}")


def read_postgres(url: str, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
                  table: str | None, query: str | None) -> Extract:
    """Extract a table or query result from PostgreSQL with a server-side cursor, in chunks."""
    import psycopg

    shown = redact_url(url)
    try:
        pg = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        reason = first_line(exc).replace(urlsplit(url).password or "\0", "***")
        raise SourceError(f"cannot connect to {shown} ({reason}); check the host, port, database "
                          "and user, and that the server is running") from exc
    what = "the database"
    try:
        with pg:
            tables = {(n if s == "public" else f"{s}.{n}"): f"{quote_identifier(s)}."
                      f"{quote_identifier(n)}" for s, n in pg.execute(_PG_TABLES).fetchall()}
            sql, what, table = source_statement(shown, tables, table, query)
            with pg.cursor(name="mlstrata_extract") as cursor:
                cursor.itersize = 10_000
                cursor.execute(sql)
                description = cursor.description or []
                names = [column.name for column in description]
                check_unique(names, f"{shown}: {what}")
                types = [PG_ARROW_TYPES.get(column.type_code, pa.string())
                         for column in description]
                schema = pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
                create_table(con, raw, schema)
                append_rows(con, raw, schema, cursor, [pg_converter(t) for t in types])
    except psycopg.Error as exc:
        raise SourceError(f"{shown}: reading {what} failed ({first_line(exc)}); check the "
                          "table or query") from exc
    return database_extract(f"{what} of {shown}", False, con, staging, raw, table, query,
                    {"target": shown})


def pg_converter(arrow_type: pa.DataType) -> Callable[[Any], Any] | None:
    """How to turn a psycopg cell into a value of ``arrow_type`` (None: as it comes)."""
    if arrow_type == pa.string():
        return cell_text
    if arrow_type == pa.float64():
        return _to_float
    return None


def _to_float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def source_statement(source: str, tables: Mapping[str, str], table: str | None,
                     query: str | None) -> tuple[str, str, str | None]:
    """The SQL to run, how to name it, and the table read (the named one, the only one, or None
    for a query)."""
    if table and query:
        raise SourceError(f"{source}: pass either a table or a query, not both")
    if query:
        return query.strip().rstrip(";"), "the query", None
    if table is None:
        if len(tables) != 1:
            listed = ", ".join(tables) or "none"
            raise SourceError(f"{source} holds {len(tables)} tables ({listed}); pass --table "
                              "NAME or --query SQL")
        table = next(iter(tables))
    if table not in tables:
        near = get_close_matches(table, list(tables), n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"tables: {', '.join(tables) or 'none'}"
        raise SourceError(f"{source} has no table {table!r}; {hint}")
    return f"SELECT * FROM {tables[table]}", f"table {table!r}", table


def database_extract(source: str, infer: bool, con: duckdb.DuckDBPyConnection, staging: Path,
                     raw: str, table: str | None, query: str | None,
                     extra: dict[str, Any] | None = None) -> Extract:
    """The Extract of a database source, its result backed up as Parquet under ``staging``."""
    backup = write_parquet(con, raw, staging / f"{raw}.parquet")
    details = {"table": table, "query": query, **(extra or {})}
    return Extract(source, infer, lambda row: f"row {row + 1} of {source}", backup, True,
                   {k: v for k, v in details.items() if v is not None})


def decimals_to_double(con: duckdb.DuckDBPyConnection, raw: str, extract: Extract) -> Extract:
    """Turn ``raw``'s DECIMAL columns into DOUBLE once the backup holds them exactly.

    The backup Parquet keeps ``DECIMAL(p,s)`` digit for digit; the dataset version holds floats
    (the training libraries take no decimals), and ``decimal_columns`` in the details records
    each column's declared type.
    """
    decimals = {str(name): str(kind) for name, kind in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "AND data_type LIKE 'DECIMAL%' ORDER BY ordinal_position", [raw]).fetchall()}
    for name in decimals:
        con.execute(f"ALTER TABLE {quote_identifier(raw)} ALTER {quote_identifier(name)} "
                    "TYPE DOUBLE")
    if not decimals:
        return extract
    return replace(extract, details={**extract.details, "decimal_columns": decimals})
