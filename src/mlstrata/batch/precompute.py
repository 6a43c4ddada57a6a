"""Precompute: score a whole batch and store one prediction per entity key in SQLite or PostgreSQL.

Applications then read a row (:mod:`mlstrata.serve.precomputed`) instead of calling the model.

How a run replaces the table without ever showing a half-written one:

1. leftover ``<table>__staging_*`` tables of crashed runs are dropped;
2. the predictions are loaded batch by batch into ``<table>__staging_<run id>`` (SQLite: inserts
   in WAL mode; PostgreSQL: ``COPY`` of CSV written by Arrow);
3. a unique key index is built; a key that appears twice fails the run with a one-line error
   naming the key (which of two predictions to keep is ambiguous, so none is guessed);
4. in ONE transaction the old table is dropped, the staging table renamed to ``<table>`` and
   the run recorded in ``mlstrata_precompute_runs``.

A crash before step 4 leaves the previous table complete and queryable; readers see either the
old table or the new one. Only tables that a previous precompute made are replaced. The key is
stored as text in a column named ``key`` (the source column's name is recorded with the run);
rows with a missing key are counted as rejects. One run per table at a time.

Rows that break only ``warn`` rules of the contract are stored with their ``warnings`` (a TEXT
column, empty when none: ``field 'x' (max): ...``), which a lookup returns; the report counts
them.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from rich.console import Console
from rich.table import Table

from ..errors import DataError
from ..predlog import PredictionLog
from ..reports import Report
from ..reports.html import html_page, table
from ..runtime.model import LoadedModel, load
from ..serve.precomputed import (
    PROBABILITY_PREFIX,
    RUNS_TABLE,
    Database,
    PrecomputedError,
    check_table_name,
    connect,
    parse_db_url,
    quote,
    table_names,
)
from ..workspace import Workspace
from .cleaning import RecipeMode, clean_batches
from .predlogging import logged_batches
from .reading import BATCH_ROWS, describe_source, read_batches
from .scoring import REJECT_REASON, WARNINGS, OnInvalid, score_batches

__all__ = ["PrecomputeReport", "ScoredLike", "precompute", "store_predictions"]

_EXAMPLES = 3
_RUN_COLUMNS = ("table_name", "run_id", "model", "model_version", "key_column", "source",
                "row_count", "reject_count", "started_at", "finished_at")


class ScoredLike(Protocol):
    """What :func:`store_predictions` reads from each scored batch."""

    @property
    def scored(self) -> pa.Table: ...

    @property
    def rejects(self) -> pa.Table: ...


@dataclass
class PrecomputeReport(Report):
    """What a precompute run stored, where, with which model, and how fast."""

    table: str
    db: str
    model: str
    model_version: int
    run_id: str
    key_column: str
    rows: int
    rejects: int
    reject_examples: list[str]
    seconds: float
    computed_at: str
    replaced_previous: bool
    cleaned_staging: list[str] = field(default_factory=list)
    warned: int = 0

    @property
    def rows_per_second(self) -> float:
        """Stored rows per second of wall time (load, index and swap included)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Every fact of the run, JSON-ready."""
        return {"table": self.table, "db": self.db, "model": self.model,
                "model_version": self.model_version, "run_id": self.run_id,
                "key_column": self.key_column, "rows": self.rows, "rejects": self.rejects,
                "reject_examples": self.reject_examples, "warned": self.warned,
                "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1),
                "computed_at": self.computed_at, "replaced_previous": self.replaced_previous,
                "cleaned_staging": self.cleaned_staging}

    def render_terminal(self, console: Console) -> None:
        """A two-column summary of the run."""
        grid = Table(title=f"precomputed {self.rows:,} predictions into '{self.table}'",
                     show_header=False)
        for name, value in self._facts().items():
            grid.add_row(name, value)
        console.print(grid)

    def to_html(self) -> str:
        """A one-page HTML summary."""
        rows = [{"fact": name, "value": value} for name, value in self._facts().items()]
        return html_page(f"Precompute into {self.table}", [("Run", [table(rows)])],
                         subtitle=self.db)

    def _facts(self) -> dict[str, str]:
        return {"database": self.db, "table": self.table,
                "model": f"{self.model} v{self.model_version}", "run id": self.run_id,
                "key column": self.key_column, "rows stored": f"{self.rows:,}",
                "rows rejected": f"{self.rejects:,}" + "".join(
                    f"\n  e.g. {reason}" for reason in self.reject_examples),
                "rows with warnings": f"{self.warned:,} (stored, with their warnings)",
                "throughput": f"{self.rows_per_second:,.0f} rows/s ({self.seconds:.2f} s)",
                "computed at": self.computed_at,
                "replaced previous table": "yes" if self.replaced_previous else "no (new table)"}


def precompute(
    model: LoadedModel | str | Path,
    source: str,
    *,
    key: str,
    db_url: str,
    table: str = "predictions",
    batch_rows: int = BATCH_ROWS,
    on_invalid: OnInvalid = "reject",
    input_table: str | None = None,
    query: str | None = None,
    recipe: RecipeMode = "auto",
    workspace: Workspace | None = None,
    progress: Callable[[int], None] | None = None,
    log: PredictionLog | None = None,
    strict: bool = False,
) -> PrecomputeReport:
    """Score every row of ``source`` with ``model`` and store the predictions by ``key``.

    Raw input is cleaned like the training data first when it needs to be (``recipe``, as in
    :func:`mlstrata.batch.predict.predict`; the recipes come from ``workspace``); rows a
    recipe drops count as rejects.

    ``model`` is a loaded model or a package directory; ``source`` anything
    :func:`~mlstrata.batch.reading.read_batches` reads (``input_table``/``query`` pick the rows
    of a database source); ``progress`` is called with the number of rows stored so far after
    each batch. Invalid rows are rejected (counted) or, with
    ``on_invalid="fail"``, stop the run; either way the previous table stays until the swap.
    With ``log`` every scored row is also written to the prediction log (source
    ``precompute``, the run id as request id, ``key`` as the business key). ``strict``
    rejects rows that break a warn rule too (a loaded ``model`` keeps its own setting).
    """
    loaded = model if isinstance(model, LoadedModel) else load(model, strict=strict)
    run_id = _new_run_id()
    where = describe_source(source)
    batches = _with_key(read_batches(source, batch_rows=batch_rows, table=input_table,
                                     query=query), key, where)
    dropped: list[str] = []
    cleaned = clean_batches(loaded, batches, workspace, recipe,
                            lambda rows, _: dropped.extend(rows.column(REJECT_REASON).to_pylist()))
    scored = logged_batches(score_batches(loaded, cleaned.batches, keys=(key,),
                                          on_invalid=on_invalid, run_id=run_id),
                            log, loaded, run_id=run_id, source="precompute", key=key)
    return store_predictions(_with_recipe_rejects(scored, dropped), key=key, db_url=db_url,
                             table=table, model=loaded.name, model_version=loaded.version,
                             run_id=run_id, source=where, progress=progress)


def store_predictions(
    scored: Iterable[ScoredLike],
    *,
    key: str,
    db_url: str,
    table: str = "predictions",
    model: str,
    model_version: int,
    run_id: str | None = None,
    source: str = "",
    progress: Callable[[int], None] | None = None,
) -> PrecomputeReport:
    """Load scored batches (key column, ``prediction``, ``probability_<class>``...) into
    ``table`` of ``db_url`` through a staging table swapped in atomically (module docstring).

    Any failure, including one raised by the ``scored`` iterator, leaves the previous table as
    it was and drops the staging table.
    """
    db, run_id = parse_db_url(db_url), run_id or _new_run_id()
    staging = f"{check_table_name(table)}__staging_{run_id}"
    started, clock = datetime.now(UTC), time.perf_counter()
    run = _Run(db, table, staging, run_id, key, started.isoformat())
    with _writing(db, table) as con:
        cleaned, replacing = _prepare(con, db, table)
        try:
            rows, rejects, examples, warned = _load(con, run, scored, model, model_version,
                                                    progress)
            _index(con, run, source)
            _swap(con, run, (table, run_id, model, model_version, key, source, rows, rejects,
                             started.isoformat(), datetime.now(UTC).isoformat()))
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute(f"DROP TABLE IF EXISTS {quote(staging)}")
            raise
    return PrecomputeReport(table, db.display, model, model_version, run_id, key, rows, rejects,
                            examples, time.perf_counter() - clock, started.isoformat(),
                            replacing, cleaned, warned)


@dataclass(frozen=True)
class _Run:
    db: Database
    table: str
    staging: str
    run_id: str
    key: str
    computed_at: str


@contextlib.contextmanager
def _writing(db: Database, table: str) -> Iterator[Any]:
    """A read-write connection; database errors become one-line :class:`PrecomputedError`."""
    con = connect(db, read_only=False)
    if db.kind == "sqlite":
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
    try:
        yield con
    except (sqlite3.Error, _psycopg_error(db)) as exc:
        raise PrecomputedError(f"writing table '{table}' in {db.display} failed: "
                               f"{str(exc).strip().splitlines()[0]}") from exc
    finally:
        con.close()


def _prepare(con: Any, db: Database, table: str) -> tuple[list[str], bool]:
    """Create the runs table, refuse to replace a foreign table, drop leftover staging tables."""
    timestamp = _timestamp_type(db)
    con.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (table_name TEXT NOT NULL, "
                "run_id TEXT NOT NULL, model TEXT NOT NULL, model_version INTEGER NOT NULL, "
                "key_column TEXT NOT NULL, source TEXT NOT NULL, row_count BIGINT NOT NULL, "
                f"reject_count BIGINT NOT NULL, started_at {timestamp} NOT NULL, "
                f"finished_at {timestamp} NOT NULL, PRIMARY KEY (table_name, run_id))")
    names = table_names(con, db)
    replacing = table in names
    if replacing and not con.execute(f"SELECT 1 FROM {RUNS_TABLE} WHERE table_name = "
                                     f"{db.placeholder}", (table,)).fetchone():
        raise PrecomputedError(f"table '{table}' in {db.display} was not made by mlstrata "
                               "precompute; choose another --table or drop it yourself")
    leftovers = sorted(name for name in names if name.startswith(f"{table}__staging_"))
    for name in leftovers:
        con.execute(f"DROP TABLE {quote(name)}")
    return leftovers, replacing


def _load(con: Any, run: _Run, scored: Iterable[ScoredLike], model: str, model_version: int,
          progress: Callable[[int], None] | None) -> tuple[int, int, list[str], int]:
    """Append every batch to the staging table; rows stored, rows rejected, a few reasons, rows
    stored with warnings."""
    rows = rejects = warned = 0
    examples: list[str] = []
    for batch in scored:
        frame = _table_rows(batch.scored, run, model, model_version)
        rejects += batch.rejects.num_rows + batch.scored.num_rows - frame.num_rows
        examples += [reason for reason in dict.fromkeys(_reasons(batch, frame, run.key))
                     if reason not in examples][:_EXAMPLES - len(examples)]
        if frame.num_rows == 0:
            continue
        if rows == 0:
            con.execute(_create_sql(run, frame.schema))
        _append(con, run, frame)
        rows += frame.num_rows
        if WARNINGS in frame.schema.names:
            warned += int(pc.sum(pc.not_equal(frame.column(WARNINGS), "")).as_py() or 0)
        if progress is not None:
            progress(rows)
    if rows == 0:
        raise DataError(f"no prediction to store: every input row was rejected ({rejects:,}); "
                        f"table '{run.table}' was left as it was; e.g. "
                        f"{examples[0] if examples else 'no row at all'}")
    return rows, rejects, examples, warned


def _reasons(batch: ScoredLike, frame: pa.Table, key: str) -> list[str]:
    """Why rows of ``batch`` were not stored (the scorer's reasons, then missing keys)."""
    reasons: list[str] = []
    if REJECT_REASON in batch.rejects.schema.names:
        reasons = batch.rejects.column(REJECT_REASON).unique().slice(0, _EXAMPLES).to_pylist()
    if batch.scored.num_rows > frame.num_rows:
        reasons.append(f"key column '{key}' is missing")
    return reasons


def _table_rows(scored: pa.Table, run: _Run, model: str, model_version: int) -> pa.Table:
    """The table's columns for one scored batch; rows whose key is missing are dropped."""
    _require_key(scored.schema.names, run.key, "the scored batch")
    keys = scored.column(run.key)
    kept = scored.filter(pc.is_valid(keys)) if keys.null_count else scored
    n = kept.num_rows
    columns: dict[str, Any] = {"key": _key_text(kept.column(run.key), run.key),
                               "prediction": kept.column("prediction")}
    for name in scored.schema.names:
        if name.startswith(PROBABILITY_PREFIX):
            columns[name] = pc.cast(kept.column(name), pa.float64())
    if WARNINGS in scored.schema.names:
        columns[WARNINGS] = pc.fill_null(kept.column(WARNINGS), "")
    columns.update(model=pa.repeat(model, n), model_version=pa.repeat(model_version, n),
                   run_id=pa.repeat(run.run_id, n), computed_at=pa.repeat(run.computed_at, n))
    return pa.table(columns)


def _key_text(keys: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    kind = keys.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
            or pa.types.is_integer(kind) or pa.types.is_temporal(kind)):
        raise DataError(f"key column '{name}' holds {kind} values; a key must be text, an "
                        "integer or a date (cast it in the source)")
    return pc.cast(keys, pa.string())


def _create_sql(run: _Run, schema: pa.Schema) -> str:
    types = {"key": "TEXT NOT NULL", "model": "TEXT", "model_version": "INTEGER",
             "run_id": "TEXT", "computed_at": _timestamp_type(run.db)}
    columns = ", ".join(f"{quote(f.name)} {types.get(f.name) or _sql_type(f.type)}"
                        for f in schema)
    return f"CREATE TABLE {quote(run.staging)} ({columns})"


def _sql_type(kind: pa.DataType) -> str:
    """A column type both SQLite (by affinity) and PostgreSQL understand."""
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE PRECISION"
    return "TEXT"


def _append(con: Any, run: _Run, frame: pa.Table) -> None:
    names = ", ".join(quote(name) for name in frame.schema.names)
    if run.db.kind == "sqlite":
        marks = ", ".join(["?"] * frame.num_columns)
        values = zip(*(column.to_pylist() for column in frame.columns), strict=True)
        with _transaction(con, run.db):
            con.executemany(f"INSERT INTO {quote(run.staging)} ({names}) VALUES ({marks})",
                            values)
        return
    buffer = io.BytesIO()
    pacsv.write_csv(frame, buffer, pacsv.WriteOptions(include_header=False))
    with con.transaction(), con.cursor() as cursor, cursor.copy(
        f"COPY {quote(run.staging)} ({names}) FROM STDIN (FORMAT csv)"
    ) as copy:
        copy.write(buffer.getbuffer())


def _index(con: Any, run: _Run, source: str) -> None:
    """Index the key (unique); a duplicate key fails the run naming the key."""
    index = quote(f"{run.table}__key_{run.run_id}")
    if run.db.kind == "sqlite":
        sql = f"CREATE UNIQUE INDEX {index} ON {quote(run.staging)} (key)"
    else:
        sql = f"ALTER TABLE {quote(run.staging)} ADD CONSTRAINT {index} PRIMARY KEY (key)"
    try:
        con.execute(sql)
    except (sqlite3.IntegrityError, _psycopg_error(run.db)) as exc:
        duplicate = con.execute(f"SELECT key, count(*) FROM {quote(run.staging)} GROUP BY key "
                                "HAVING count(*) > 1 LIMIT 1").fetchone()
        if duplicate is None:
            raise
        where = f" of {source}" if source else ""
        raise DataError(f"key '{duplicate[0]}' appears {duplicate[1]} times in column "
                        f"'{run.key}'{where}; precompute stores one prediction per key, so "
                        "deduplicate the input") from exc


def _swap(con: Any, run: _Run, record: tuple[Any, ...]) -> None:
    """In one transaction: drop the old table, rename the staging one, record the run."""
    marks = ", ".join([run.db.placeholder] * len(record))
    with _transaction(con, run.db):
        con.execute(f"DROP TABLE IF EXISTS {quote(run.table)}")
        con.execute(f"ALTER TABLE {quote(run.staging)} RENAME TO {quote(run.table)}")
        con.execute(f"INSERT INTO {RUNS_TABLE} ({', '.join(_RUN_COLUMNS)}) VALUES ({marks})",
                    record)


@contextlib.contextmanager
def _transaction(con: Any, db: Database) -> Iterator[None]:
    if db.kind == "postgresql":
        with con.transaction():
            yield
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@dataclass(frozen=True)
class _Scored:
    """A scored batch whose rejects are only their reasons."""

    scored: pa.Table
    rejects: pa.Table


def _with_recipe_rejects(scored: Iterable[ScoredLike], dropped: list[str]
                         ) -> Iterator[ScoredLike]:
    """The scored batches, each also counting the rows a recipe dropped while it was read."""
    for batch in scored:
        if not dropped:
            yield batch
            continue
        reasons = (batch.rejects.column(REJECT_REASON).to_pylist()
                   if REJECT_REASON in batch.rejects.column_names else [])
        yield _Scored(batch.scored, pa.table({REJECT_REASON: reasons + dropped}))
        dropped.clear()


def _with_key(batches: Iterable[pa.RecordBatch], key: str, source: str
              ) -> Iterator[pa.RecordBatch]:
    """``batches``, after checking that the first one has the key column."""
    checked = False
    for batch in batches:
        if not checked:
            _require_key(batch.schema.names, key, source)
            checked = True
        yield batch


def _require_key(names: list[str], key: str, where: str) -> None:
    if key not in names:
        raise DataError(f"key column '{key}' not found in {where}; its columns are "
                        f"{', '.join(names)}")


def _timestamp_type(db: Database) -> str:
    return "TEXT" if db.kind == "sqlite" else "TIMESTAMPTZ"


def _psycopg_error(db: Database) -> type[Exception]:
    if db.kind == "sqlite":
        return sqlite3.Error
    import psycopg

    return psycopg.Error


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]
