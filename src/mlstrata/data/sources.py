"""Data sources: describe one with :class:`SourceSpec`, read it into DuckDB: :func:`load_source`.

Formats: CSV/TSV, Parquet, JSON (array of objects) and JSON Lines, Excel ``.xlsx``, SQLite and
DuckDB files, PostgreSQL (``postgresql://`` URL), MySQL/MariaDB (``mysql://``, ``mariadb://``) and
any database SQLAlchemy reaches (``dialect+driver://`` URL, or ``--format sqlalchemy``) — by table
or query for the databases. Every
reader streams, so memory does not grow with the source. Text sources are typed by whole-column
inference (:mod:`.inference`); typed sources keep their types. Problems raise
:class:`~mlstrata.errors.SourceError` with one line naming the file, line and column, and the fix.
A folder, a glob or an ``s3://`` URL is a lake of many files, read by :mod:`._lake`; a
``spark:`` location is read by Spark (:mod:`._spark_source`).
This module reads; storing, PII and splitting belong to :mod:`.ingest`.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     csv = Path(folder) / "loans.csv"
...     _ = csv.write_text("zip,amount,paid\\n08001,12.5,true\\n28004,3,NA\\n")
...     loaded = load_source(SourceSpec(str(csv)), duckdb.connect(), Path(folder))
>>> [(c.name, c.type) for c in loaded.columns], loaded.rows
([('zip', 'text'), ('amount', 'float'), ('paid', 'boolean')], 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import duckdb

from ..config import ColumnType
from ..errors import SourceError
from ._db_readers import read_duckdb, read_postgres, read_sqlite, redact_url
from ._extract import Extract
from ._file_readers import read_parquet, read_xlsx
from ._lake import is_lake, plan_lake, plan_source, read_lake
from ._mysql import MYSQL_SCHEMES, read_mysql
from ._spark_source import is_spark
from ._sqlalchemy_reader import is_sqlalchemy_url, read_sqlalchemy
from ._text_readers import read_csv, read_json
from .engine import quote_identifier
from .inference import build_typed_table
from .types import ColumnInfo

__all__ = ["SUPPORTED_FORMATS", "LoadedSource", "SourceSpec", "detect_format", "load_source",
           "source_size"]

SUPPORTED_FORMATS = ("csv", "tsv", "parquet", "json", "jsonl", "xlsx", "sqlite", "duckdb",
                     "postgres", "mysql", "sqlalchemy")
_SERVERS = ("postgres", "mysql", "sqlalchemy")  # formats read from a URL, not a file
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
               ".pq": "parquet", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".xlsx": "xlsx", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".duckdb": "duckdb",
               ".ddb": "duckdb"}
_URL_SCHEMES = {"postgresql": "postgres", "postgres": "postgres",
                **dict.fromkeys(MYSQL_SCHEMES, "mysql")}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OPTIONS = {  # which formats each option applies to
    "delimiter": ("csv", "tsv"),
    "encoding": ("csv", "tsv", "json", "jsonl"),
    "sheet": ("xlsx",),
    "table": ("sqlite", "duckdb", *_SERVERS),
    "query": ("sqlite", "duckdb", *_SERVERS),
}


@dataclass(frozen=True)
class SourceSpec:
    """Where the data is and how to read it; every ``None`` means detect."""

    location: str
    format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    table: str | None = None
    query: str | None = None
    schema: Mapping[str, ColumnType] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedSource:
    """A source read into DuckDB table ``table`` (typed, rows in source order).

    ``raw_path`` is what to back up byte-exact: the user's file, or for a database source a
    Parquet of the extracted result written under staging. ``location`` never holds a password.
    """

    table: str
    columns: list[ColumnInfo]
    rows: int
    format: str
    location: str
    raw_path: Path
    details: dict[str, Any]


def detect_format(spec: SourceSpec) -> str:
    """The format of a source: ``spec.format`` if given, else from the URL scheme or extension."""
    if spec.format is not None:
        if spec.format not in SUPPORTED_FORMATS:
            raise SourceError(f"unknown format {spec.format!r}; supported formats: "
                              f"{', '.join(SUPPORTED_FORMATS)}")
        return spec.format
    scheme = urlsplit(spec.location).scheme.lower()
    if scheme in _URL_SCHEMES:
        return _URL_SCHEMES[scheme]
    if is_sqlalchemy_url(spec.location):
        return "sqlalchemy"
    suffix = Path(spec.location).suffix.lower()
    if suffix == ".db":
        return "sqlite" if _head(_existing_file(spec.location), 16) == _SQLITE_MAGIC else "duckdb"
    if suffix not in _EXTENSIONS:
        raise SourceError(f"{spec.location}: unsupported file type {suffix or '(no extension)'!r};"
                          f" supported formats: {', '.join(SUPPORTED_FORMATS)} (pass --format "
                          "to name one)")
    return _EXTENSIONS[suffix]


def source_size(spec: SourceSpec) -> int:
    """Bytes on disk of a file source (0 for a database server), to estimate the space needed."""
    if is_spark(spec.location):
        return 0
    if is_lake(spec.location):
        return plan_lake(spec.location, spec.format).size
    if detect_format(spec) in _SERVERS:
        return 0
    return _existing_file(spec.location).stat().st_size


def load_source(spec: SourceSpec, con: duckdb.DuckDBPyConnection, staging: Path) -> LoadedSource:
    """Read ``spec`` into a new typed table of ``con``; scratch files go under ``staging``.

    The user's file is never modified. On error nothing is left in ``con``.
    """
    plan = plan_source(spec.location, spec.format, staging)
    fmt = plan.format if plan else detect_format(spec)
    _check_options(spec, fmt)
    token = uuid4().hex[:12]
    raw, target = f"_raw_{token}", f"source_{token}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        extract = (_read(fmt, spec, con, staging, raw) if plan is None else
                   read_lake(plan, con, staging, raw, delimiter=spec.delimiter,
                             encoding=spec.encoding, overrides=spec.schema))
        rows = len(con.table(quote_identifier(raw)))
        if rows == 0:
            raise SourceError(_no_rows(extract))
        columns = build_typed_table(con, raw, target, overrides=spec.schema, infer=extract.infer,
                                    source=extract.source, locate=extract.locate)
    except BaseException:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(target)}")
        raise
    finally:
        con.execute(f"DROP TABLE IF EXISTS {quote_identifier(raw)}")
    location = redact_url(spec.location) if fmt in _SERVERS else str(Path(spec.location))
    if plan is not None:
        location = plan.shown
    return LoadedSource(target, columns, rows, fmt, location, extract.raw_path, extract.details)


def _read(fmt: str, spec: SourceSpec, con: duckdb.DuckDBPyConnection, staging: Path,
          raw: str) -> Extract:
    if fmt in _SERVERS:
        server_reader = {"postgres": read_postgres, "mysql": read_mysql,
                         "sqlalchemy": read_sqlalchemy}[fmt]
        return server_reader(spec.location, con, staging, raw, table=spec.table, query=spec.query)
    path = _existing_file(spec.location)
    if path.stat().st_size == 0:
        raise SourceError(f"{path} is empty (0 bytes); pass a file with a header row and data")
    if fmt in ("csv", "tsv"):
        return read_csv(path, con, staging, raw, delimiter=spec.delimiter, encoding=spec.encoding,
                        tsv=fmt == "tsv")
    if fmt in ("json", "jsonl"):
        return read_json(path, con, staging, raw, encoding=spec.encoding)
    if fmt == "parquet":
        return read_parquet(path, con, raw)
    if fmt == "xlsx":
        return read_xlsx(path, con, raw, sheet=spec.sheet)
    reader = read_sqlite if fmt == "sqlite" else read_duckdb
    return reader(path, con, staging, raw, table=spec.table, query=spec.query)


def _check_options(spec: SourceSpec, fmt: str) -> None:
    for option, formats in _OPTIONS.items():
        if getattr(spec, option) is not None and fmt not in formats:
            raise SourceError(f"{spec.location if fmt not in _SERVERS else 'the database URL'}: "
                              f"--{option} applies to {', '.join(formats)} sources, not {fmt}; "
                              f"remove it")


def _no_rows(extract: Extract) -> str:
    if extract.database:
        return f"{extract.source} has no rows; check the table or query"
    return f"{extract.source} has a header but no data rows; add data or pass the right file"


def _existing_file(location: str) -> Path:
    path = Path(location)
    if not path.exists():
        raise SourceError(f"{location} does not exist; check the path (relative paths start at "
                          f"{Path.cwd()})")
    if not path.is_file():
        raise SourceError(f"{location} is a directory, not a file; pass the data file inside it")
    return path


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)
