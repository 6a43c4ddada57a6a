"""Look up predictions that ``mlstrata precompute`` stored in SQLite or PostgreSQL.

The precompute serving pattern: a batch run scores every entity and stores one row per key;
applications (or ``GET /v1/precomputed/{key}``) read that row instead of calling the model. A
table holds ``key`` (text, primary key), ``prediction``, one ``probability_<class>`` column per
class, ``model``, ``model_version``, ``run_id`` and ``computed_at`` (UTC); the table
``mlstrata_precompute_runs`` records every run that replaced it.

Database URLs: ``sqlite:///path.db`` or a bare file path (SQLite, opened read-only here), and
``postgresql://user@host:port/db``. Only the standard library's ``sqlite3`` and psycopg 3 are
used, so a serving image stays lean.

>>> import sqlite3, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.db"
>>> with sqlite3.connect(path) as con:
...     _ = con.execute("CREATE TABLE predictions (key TEXT PRIMARY KEY, prediction INTEGER, "
...                     "probability_1 REAL, model TEXT, model_version INTEGER, run_id TEXT, "
...                     "computed_at TEXT)")
...     _ = con.execute("INSERT INTO predictions VALUES ('a7', 1, 0.9, 'credit', 3, 'r1', "
...                     "'2024-01-01T00:00:00+00:00')")
>>> con.close()
>>> found = lookup(str(path), "a7")
>>> found["prediction"], found["probabilities"], found["model"], found["age_seconds"] > 0
(1, {'1': 0.9}, 'credit', True)
>>> lookup(str(path), "nobody") is None
True
"""

from __future__ import annotations

import re
import sqlite3
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ..errors import MlstrataError

__all__ = [
    "PROBABILITY_PREFIX",
    "RUNS_TABLE",
    "Database",
    "PrecomputedError",
    "PrecomputedStore",
    "check_table_name",
    "connect",
    "lookup",
    "open_precomputed",
    "parse_db_url",
    "quote",
    "table_names",
]

RUNS_TABLE = "mlstrata_precompute_runs"
PROBABILITY_PREFIX = "probability_"
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_CONNECT_TIMEOUT_SECONDS = 10


class PrecomputedError(MlstrataError):
    """A precompute database cannot be used: bad URL, unreachable server, unknown table."""


@dataclass(frozen=True)
class Database:
    """Where predictions live: ``kind`` and ``target`` (a file path or a PostgreSQL URL)."""

    kind: Literal["sqlite", "postgresql"]
    target: str

    @property
    def placeholder(self) -> str:
        """The query parameter marker of this database's driver."""
        return "?" if self.kind == "sqlite" else "%s"

    @property
    def display(self) -> str:
        """The URL to show people: the password, if any, replaced by ``***``."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.target}"
        parts = urlsplit(self.target)
        if parts.password is None:
            return self.target
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def parse_db_url(url: str) -> Database:
    """The database ``url`` names: ``sqlite:///path``, a bare path, or ``postgresql://...``.

    >>> parse_db_url("sqlite:///out/p.db"), parse_db_url("p.db").kind
    (Database(kind='sqlite', target='out/p.db'), 'sqlite')
    >>> parse_db_url("postgresql://u:secret@h:5432/db").display
    'postgresql://u:***@h:5432/db'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        if not url.strip():
            raise PrecomputedError("empty database URL; pass sqlite:///path.db, a file path or "
                                   "postgresql://user@host:port/db")
        return Database("sqlite", url)
    if scheme in ("postgresql", "postgres"):
        return Database("postgresql", url)
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return Database("sqlite", rest[1:])
    raise PrecomputedError(f"unsupported database URL '{Database('postgresql', url).display}'; "
                           "use sqlite:///path.db, a file path or postgresql://user@host:port/db")


def check_table_name(name: str) -> str:
    """``name`` if it is a plain SQL identifier of at most 40 characters (else a one-line error).

    The limit leaves room for the staging suffix within PostgreSQL's 63-character names.
    """
    if not _TABLE_NAME.fullmatch(name):
        raise PrecomputedError(f"invalid table name '{name}': use letters, digits and _ (not "
                               "first), at most 40 characters, no schema prefix")
    return name


def quote(identifier: str) -> str:
    """``identifier`` as a double-quoted SQL identifier (valid in SQLite and PostgreSQL)."""
    return '"' + identifier.replace('"', '""') + '"'


def connect(db: Database, *, read_only: bool) -> Any:
    """A DB-API connection to ``db`` in autocommit mode; a one-line error when it fails.

    SQLite is opened ``mode=ro`` when ``read_only`` (the file must exist) and shareable across
    threads; PostgreSQL statements are never server-prepared, so a table swapped under a
    long-lived connection is simply planned again.
    """
    if db.kind == "sqlite":
        return _connect_sqlite(Path(db.target), read_only)
    import psycopg

    try:
        return psycopg.connect(db.target, autocommit=True, prepare_threshold=None,
                               connect_timeout=_CONNECT_TIMEOUT_SECONDS)
    except psycopg.Error as exc:
        raise PrecomputedError(f"cannot connect to {db.display}: {_first_line(exc)}") from exc


def table_names(con: Any, db: Database) -> list[str]:
    """The tables of the database (SQLite) or of the current schema (PostgreSQL)."""
    if db.kind == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return [str(row[0]) for row in con.execute(sql).fetchall()]


class PrecomputedStore:
    """Read access to one predictions table, safe to share between a server's threads.

    Each thread gets its own connection on first use; :meth:`close` closes them all.
    """

    def __init__(self, db: Database, table: str) -> None:
        self.database = db
        self.table = table
        self._sql = f"SELECT * FROM {quote(table)} WHERE key = {db.placeholder}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The stored prediction for ``key`` (with its model and age in seconds), or None."""
        cursor = self._execute(self._sql, (key,))
        row = cursor.fetchone()
        if row is None:
            return None
        return _prediction(_column_names(cursor.description), row, datetime.now(UTC))

    def describe(self) -> dict[str, Any] | None:
        """The latest run that filled the table: model, version, rows, source, times."""
        sql = (f"SELECT * FROM {RUNS_TABLE} WHERE table_name = {self.database.placeholder} "
               "ORDER BY finished_at DESC LIMIT 1")
        cursor = self._execute(sql, (self.table,))
        row = cursor.fetchone()
        if row is None:
            return None
        return {name: _plain(value) for name, value in
                zip(_column_names(cursor.description), row, strict=True)}

    def close(self) -> None:
        """Close every connection the store opened (from any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        self._local = threading.local()

    def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        con = self._connection()
        try:
            return con.execute(sql, params)
        except (sqlite3.Error, _psycopg_error()) as exc:
            self._forget(con)
            raise PrecomputedError(f"cannot read table '{self.table}' in "
                                   f"{self.database.display}: {_first_line(exc)}") from exc

    def _connection(self) -> Any:
        con = getattr(self._local, "con", None)
        if con is None:
            con = connect(self.database, read_only=True)
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def _forget(self, con: Any) -> None:
        """Drop a connection that failed, so the thread's next lookup reconnects."""
        self._local.con = None
        with self._lock:
            if con in self._connections:
                self._connections.remove(con)
        con.close()


def open_precomputed(url: str, table: str = "predictions") -> PrecomputedStore:
    """Open the predictions ``table`` at ``url`` for lookups; fails early if it is not there."""
    db = parse_db_url(url)
    store = PrecomputedStore(db, check_table_name(table))
    if table not in table_names(store._connection(), db):
        store.close()
        raise PrecomputedError(f"table '{table}' not found in {db.display}; fill it with "
                               f"'mlstrata precompute MODEL --input SRC --key COL --db {url} "
                               f"--table {table}'")
    return store


def lookup(url: str, key: str, table: str = "predictions") -> dict[str, Any] | None:
    """One lookup on its own connection (scripts; servers keep a :class:`PrecomputedStore`)."""
    store = open_precomputed(url, table)
    try:
        return store.lookup(key)
    finally:
        store.close()


def _connect_sqlite(path: Path, read_only: bool) -> sqlite3.Connection:
    if read_only and not path.is_file():
        raise PrecomputedError(f"no SQLite database at {path}; run 'mlstrata precompute' first "
                               "or check the --db path")
    if not read_only and not path.parent.is_dir():
        raise PrecomputedError(f"folder {path.parent} does not exist; create it or choose "
                               "another --db path")
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
    # SQLite stores booleans as 0/1: a BOOLEAN column (a boolean target's predictions) is read
    # back as the user's labels, True/False, as PostgreSQL gives them.
    sqlite3.register_converter("BOOLEAN", lambda stored: stored not in (b"0", b""))
    try:
        con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                              timeout=30, detect_types=sqlite3.PARSE_DECLTYPES)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise PrecomputedError(f"cannot open SQLite database {path}: {exc}") from exc
    return con


def _prediction(columns: list[str], row: Sequence[Any], now: datetime) -> dict[str, Any]:
    record = dict(zip(columns, row, strict=True))
    computed = _as_datetime(record["computed_at"])
    result: dict[str, Any] = {"key": record["key"], "prediction": _plain(record["prediction"])}
    probabilities = {name[len(PROBABILITY_PREFIX):]: record[name] for name in columns
                     if name.startswith(PROBABILITY_PREFIX)}
    if probabilities:
        result["probabilities"] = probabilities
    if record.get("warnings"):  # the contract's warn rules the entity broke when scored
        result["warnings"] = record["warnings"]
    result.update(model=record["model"], model_version=record["model_version"],
                  run_id=record["run_id"], computed_at=computed.isoformat(),
                  age_seconds=round((now - computed).total_seconds(), 3))
    return result


def _as_datetime(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _plain(value: Any) -> Any:
    """A JSON-ready value: datetimes as ISO text, everything else unchanged."""
    return value.isoformat() if isinstance(value, datetime) else value


def _column_names(description: Sequence[Sequence[Any]]) -> list[str]:
    return [str(column[0]) for column in description]


def _psycopg_error() -> type[Exception]:
    """psycopg's base error class, without importing psycopg for a SQLite-only process."""
    module = sys.modules.get("psycopg")
    return module.Error if module is not None else sqlite3.Error


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
