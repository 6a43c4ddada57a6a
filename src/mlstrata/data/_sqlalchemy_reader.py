"""Reader of any database SQLAlchemy can reach, through a SQLAlchemy URL (``dialect+driver://``).

The user installs the dialect's package (``snowflake-sqlalchemy``, ``pyodbc`` for ``mssql+pyodbc``,
``oracledb`` for ``oracle+oracledb``, ...); mlstrata needs nothing else. Rows stream with
``stream_results`` (a server-side cursor where the driver has one) and land in DuckDB in chunks
through pyarrow. A table keeps its reflected column types (integers, floats, ``NUMERIC(p,s)``
— exact in the backup, a float in the dataset version —, booleans, dates, timestamps; everything
else as text); a query's result has no declared types SQLAlchemy can see, so its values are typed
by whole-column inference like a CSV export. Messages and the catalog show the URL without its
password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    append_rows,
    cell_text,
    check_unique,
    create_table,
    text_schema,
)

__all__ = ["SQLALCHEMY_SCHEMES", "is_sqlalchemy_url", "read_sqlalchemy", "sqlalchemy_arrow_type"]

# Dialect names SQLAlchemy knows without a "+driver" suffix that mean nothing else to mlstrata.
SQLALCHEMY_SCHEMES = ("sqlite", "mssql", "oracle")


def is_sqlalchemy_url(location: str) -> bool:
    """Whether ``location`` is a SQLAlchemy URL: ``dialect+driver://...`` or a bare dialect name
    of :data:`SQLALCHEMY_SCHEMES`.

    >>> is_sqlalchemy_url("mysql+pymysql://ann@db/sales"), is_sqlalchemy_url("/data/x.csv")
    (True, False)
    """
    scheme = urlsplit(location).scheme.lower()
    return "+" in scheme or scheme in SQLALCHEMY_SCHEMES


def read_sqlalchemy(url: str, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
                    table: str | None, query: str | None) -> Extract:
    """Extract a table or query result through SQLAlchemy into ``raw``, streamed in chunks."""
    import sqlalchemy as sa

    shown = redact_url(url)
    engine = _engine(url, shown)
    what = "the database"
    try:
        with engine.connect() as db:
            inspector = sa.inspect(db)
            quote = engine.dialect.identifier_preparer.quote
            names = [*inspector.get_table_names(), *inspector.get_view_names()]
            tables = {name: quote(name) for name in sorted(names)}
            sql, what, table = source_statement(shown, tables, table, query)
            # A reflected table is selected through SQLAlchemy so its types' result processors
            # turn each dialect's storage (SQLite's date text, ...) into Python values.
            reflected = sa.Table(table, sa.MetaData(), autoload_with=db) if table else None
            statement = sa.select(reflected) if reflected is not None else sa.text(sql)
            result = db.execution_options(stream_results=True).execute(statement)
            columns = [str(name) for name in result.keys()]
            check_unique(columns, f"{shown}: {what}")
            schema = (pa.schema([pa.field(c.name, sqlalchemy_arrow_type(c.type))
                                 for c in reflected.columns])
                      if reflected is not None else text_schema(columns))
            create_table(con, raw, schema)
            converters = [_converter(f.type) for f in schema]
            append_rows(con, raw, schema, _stream(result), converters)
    except sa.exc.SQLAlchemyError as exc:
        reason = _reason(exc)
        if isinstance(exc, sa.exc.OperationalError) and what == "the database":
            raise SourceError(f"cannot connect to {shown} ({_hide(reason, url)}); check the host, "
                              "port, database, user and password") from exc
        raise SourceError(f"{shown}: reading {what} failed ({_hide(reason, url)}); check the "
                          "table or query") from exc
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SourceError(f"{shown}: {what} holds a value that does not fit its declared column "
                          f"type ({first_line(exc)}); read it with --query and CAST the column"
                          ) from exc
    finally:
        engine.dispose()
    extract = database_extract(f"{what} of {shown}", table is None, con, staging, raw, table,
                               query, {"target": shown})
    return decimals_to_double(con, raw, extract)


def sqlalchemy_arrow_type(declared: Any) -> pa.DataType:
    """The Arrow type of a reflected SQLAlchemy column type (text when nothing closer fits).

    >>> import sqlalchemy as sa
    >>> [str(sqlalchemy_arrow_type(t)) for t in (sa.Integer(), sa.Numeric(10, 2), sa.Enum("a"))]
    ['int64', 'decimal128(10, 2)', 'string']
    """
    import sqlalchemy as sa

    if isinstance(declared, sa.Boolean):
        return pa.bool_()
    if isinstance(declared, sa.Integer):
        return pa.int64()
    if isinstance(declared, sa.Float):
        return pa.float64()
    if isinstance(declared, sa.Numeric):
        precision, scale = declared.precision, declared.scale or 0
        return (pa.decimal128(precision, scale) if precision and precision <= 38
                else pa.float64())
    if isinstance(declared, sa.DateTime):
        return pa.timestamp("us")
    if isinstance(declared, sa.Date):
        return pa.date32()
    return pa.string()


def _engine(url: str, shown: str) -> Any:
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except sa.exc.NoSuchModuleError as exc:
        dialect = urlsplit(url).scheme
        raise SourceError(f"{shown}: SQLAlchemy has no dialect {dialect!r}; install the "
                          "package that provides it (e.g. pymysql for mysql+pymysql, "
                          "snowflake-sqlalchemy for snowflake)") from exc
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise SourceError(f"{shown} is not a usable SQLAlchemy URL ({first_line(exc)}); write "
                          "it as dialect+driver://user@host:port/database") from exc


def _converter(arrow_type: pa.DataType) -> Callable[[Any], Any] | None:
    if arrow_type == pa.string():
        return cell_text
    if arrow_type == pa.float64():
        return _to_float
    return None


def _to_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _stream(result: Any) -> Iterator[Sequence[Any]]:
    for rows in result.partitions(CHUNK_ROWS):
        yield from rows


def _reason(exc: Exception) -> str:
    """The driver's message: ``error 1045: Access denied ...`` for DB-API ``(code, text)``
    errors, else its first line."""
    original = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return f"error {args[0]}: {str(args[1]).splitlines()[0]}"
    return first_line(original)


def _hide(reason: str, url: str) -> str:
    secret = urlsplit(url).password
    return reason.replace(secret, "***") if secret else reason
