"""Ingest a source into an immutable dataset version, a sealed test set and a raw backup.

One ingest, in order: estimate space → read the source (typed, whole-column inference) → check
the named columns → scan for PII and apply the policy → set the sealed test set aside → write
Parquet → back up the original bytes → catalog all three with lineage. Everything is staged and
computed before anything is cataloged, so a failure leaves the workspace as it was. Re-ingesting
identical content with identical options returns the existing version.

The steps on the rows run in one engine (:class:`IngestWork`): DuckDB in this process, or Spark
for a ``spark:`` source (:mod:`._spark_ingest`), whose rows then never enter this process.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb

from .. import _atomic
from ..config import AccessLevel, DataConfig, PiiAction
from ..errors import DataError
from ..workspace import Workspace
from ._spark_source import is_spark
from .engine import connect, quote_identifier, quote_literal
from .ingest_report import IngestResult
from .pii import PiiFinding, pii_expression, scan_pii
from .sources import LoadedSource, SourceSpec, load_source, source_size
from .split import SplitStrategy, holdout_query
from .types import ColumnInfo, columns_of

__all__ = ["IngestOptions", "IngestResult", "IngestWork", "ingest"]

_INGEST_FORMAT_VERSION = 1
# Staging holds a DuckDB copy, the working and sealed Parquet files and the backup copy.
_SPACE_FACTOR = 4.0

Step = Callable[[str], None]
Check = Callable[[duckdb.DuckDBPyConnection, str], None]


@dataclass(frozen=True)
class IngestOptions:
    """What to call the dataset and how to treat its columns."""

    name: str
    target: str | None = None
    key: str | None = None
    time: str | None = None
    access: AccessLevel | None = None
    description: str = ""
    pii: Mapping[str, PiiAction] = field(default_factory=dict)
    test_fraction: float | None = None
    seed: int | None = None


class IngestWork(Protocol):
    """One engine's part of an ingest: every step that touches the rows."""

    def load(self, spec: SourceSpec) -> LoadedSource:
        """Read and type the source; ``raw_path`` of the result is what to back up."""

    def check_key_unique(self, loaded: LoadedSource, key: str) -> None:
        """Refuse a ``--key`` column that repeats a value or is empty somewhere."""

    def scan_pii(self, loaded: LoadedSource) -> list[PiiFinding]:
        """The PII findings of the typed source (:func:`.pii.scan_pii`'s)."""

    def write_working(self, loaded: LoadedSource, actions: Mapping[str, PiiAction],
                      kinds: Mapping[str, Sequence[str]], salt: str) -> list[ColumnInfo]:
        """Apply the PII policy (:func:`.pii.pii_expression`); return the columns kept."""

    def check_rows(self, before_store: Check) -> None:
        """Run ``ingest``'s ``before_store`` check on the rows about to be stored."""

    def write_splits(self, stage: Path, strategy: SplitStrategy, fraction: float, seed: int,
                     options: IngestOptions) -> dict[str, int]:
        """Write ``train.parquet`` and (when rows are held out) ``test.parquet`` into ``stage``
        by :func:`.split.holdout_query`'s rule; return their row counts."""


def ingest(
    ws: Workspace, spec: SourceSpec, options: IngestOptions, step: Step | None = None,
    before_store: Check | None = None,
) -> IngestResult:
    """Ingest ``spec`` into ``ws`` as dataset ``options.name``; ``step`` reports progress.

    ``before_store(con, sql)`` checks the rows about to be stored (``sql`` selects them) and
    raises to refuse them, so that nothing is written (``ingest --join`` checks its join).
    """
    report = step or (lambda _: None)
    settings = ws.config.data
    fraction = options.test_fraction
    if fraction is None:
        fraction = settings.sealed_test_fraction
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"--test-fraction must be in [0, 1), got {fraction}; 0.2 is typical")
    seed = settings.seed if options.seed is None else options.seed
    report("checking space")
    ws.ensure_space(int(source_size(spec) * _SPACE_FACTOR), f"ingesting {spec.location}")
    raw_sha = _file_sha256(spec)
    with ws.staging() as stage, _work(spec, settings, stage) as work:
        report("reading source")
        loaded = work.load(spec)
        raw_sha = raw_sha or _atomic.sha256_file(loaded.raw_path)
        key = _ingest_key(raw_sha, spec, options, fraction, seed, ws)
        existing = ws.find_by_meta("dataset", "ingest_key", key)
        if existing is not None:
            return IngestResult.reused(ws, existing)
        _check_named_columns(loaded, options)
        if options.key is not None:
            work.check_key_unique(loaded, options.key)
        report("scanning for PII")
        findings = work.scan_pii(loaded)
        actions = _pii_actions(ws, loaded.columns, findings, options)
        if all(actions.get(c.name) == "drop" for c in loaded.columns):
            raise DataError(f"{loaded.location}: the PII policy drops every column; keep at "
                            "least one")
        kinds = {f.column: f.kinds for f in findings}
        columns = work.write_working(loaded, actions, kinds, ws.pii_salt())
        if before_store is not None:
            work.check_rows(before_store)
        report("sealing the test set")
        strategy: SplitStrategy = (
            "time" if options.time else "stratified" if options.target else "random")
        counts = work.write_splits(stage, strategy, fraction, seed, options)
        if counts["train"] == 0:
            raise DataError("the source has too few rows to keep any for training; add rows "
                            "or lower --test-fraction")
        report("writing the dataset version")
        meta = _catalog_meta(loaded, options, columns, findings, actions, raw_sha, key)
        return _store(ws, stage, loaded, options, meta, counts, fraction)


@contextmanager
def _work(spec: SourceSpec, settings: DataConfig, stage: Path) -> Iterator[IngestWork]:
    """The engine for ``spec``: Spark for a ``spark:`` source, else DuckDB in this process."""
    if is_spark(spec.location):
        from ._spark_ingest import spark_work

        with spark_work(stage) as spark:
            yield spark
        return
    con = connect(settings, stage / "spill", stage / "work.duckdb")
    try:
        yield _DuckDBWork(con, stage)
    finally:
        con.close()


@dataclass(frozen=True)
class _DuckDBWork:
    """The ingest's steps in DuckDB, out of core in this process."""

    con: duckdb.DuckDBPyConnection
    stage: Path

    def load(self, spec: SourceSpec) -> LoadedSource:
        return load_source(spec, self.con, self.stage)

    def check_key_unique(self, loaded: LoadedSource, key: str) -> None:
        _check_key_unique(self.con, loaded, key)

    def scan_pii(self, loaded: LoadedSource) -> list[PiiFinding]:
        return scan_pii(self.con, loaded.table, loaded.columns)

    def write_working(self, loaded: LoadedSource, actions: Mapping[str, PiiAction],
                      kinds: Mapping[str, Sequence[str]], salt: str) -> list[ColumnInfo]:
        return _write_working_table(self.con, loaded, actions, kinds, salt)

    def check_rows(self, before_store: Check) -> None:
        before_store(self.con, "SELECT * FROM working")

    def write_splits(self, stage: Path, strategy: SplitStrategy, fraction: float, seed: int,
                     options: IngestOptions) -> dict[str, int]:
        return _write_splits(self.con, stage, strategy, fraction, seed, options)


def _file_sha256(spec: SourceSpec) -> str | None:
    path = Path(spec.location)
    return _atomic.sha256_file(path) if path.is_file() else None


def _ingest_key(
    raw_sha: str, spec: SourceSpec, options: IngestOptions, fraction: float, seed: int,
    ws: Workspace,
) -> str:
    """A digest of everything that decides the ingest's output: same key → same version."""
    spec_fields = {k: v for k, v in vars(spec).items() if k != "location"}
    fields = {
        "format_version": _INGEST_FORMAT_VERSION,
        "raw_sha256": raw_sha,
        "spec": {**spec_fields, "schema": dict(spec.schema)},
        "name": options.name,
        "target": options.target,
        "key": options.key,
        "time": options.time,
        "pii": {**ws.config.data.pii, **options.pii},
        "pii_default": ws.config.data.pii_default,
        "fraction": fraction,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _check_named_columns(loaded: LoadedSource, options: IngestOptions) -> None:
    names = [c.name for c in loaded.columns]
    for flag, column in (("--target", options.target), ("--key", options.key),
                         ("--time", options.time)):
        if column is not None and column not in names:
            close = difflib.get_close_matches(column, names, n=3)
            hint = (f"did you mean {', '.join(close)}?" if close
                    else f"columns are: {', '.join(names)}")
            raise DataError(f"{loaded.location}: {flag} column '{column}' does not exist; {hint}")
    if options.time is not None:
        kind = next(c.type for c in loaded.columns if c.name == options.time)
        if kind not in ("date", "timestamp", "integer", "float"):
            raise DataError(
                f"{loaded.location}: --time column '{options.time}' holds {kind} values; "
                "name a date or timestamp column, or force its type with --schema"
            )


def _check_key_unique(con: duckdb.DuckDBPyConnection, loaded: LoadedSource, key: str) -> None:
    column = quote_identifier(key)
    row = con.execute(
        f"SELECT {column}, count(*) FROM {loaded.table} GROUP BY {column} "
        f"HAVING count(*) > 1 OR {column} IS NULL LIMIT 1"
    ).fetchone()
    if row is not None:
        raise key_refusal(loaded.location, key, *row)


def key_refusal(location: str, key: str, value: Any, times: int) -> DataError:
    """The error for a ``--key`` column that repeats ``value`` ``times`` times (or is empty)."""
    problem = ("is empty in some rows" if value is None
               else f"repeats value {value!r} {times} times")
    return DataError(f"{location}: --key column '{key}' {problem}; a key must identify each row "
                     "uniquely, so pick another column or drop --key")


def _pii_actions(
    ws: Workspace,
    columns: Sequence[ColumnInfo],
    findings: Sequence[PiiFinding],
    options: IngestOptions,
) -> dict[str, PiiAction]:
    """The action per column: a flag beats the config, which beats the default for findings."""
    names = {c.name for c in columns}
    explicit = {**ws.config.data.pii, **options.pii}
    unknown = sorted(set(explicit) - names)
    if unknown:
        raise DataError(
            f"PII policy names column '{unknown[0]}' which the source does not have; "
            f"fix --pii or data.pii in mlstrata.yaml"
        )
    actions = {f.column: ws.config.data.pii_default for f in findings}
    actions.update(explicit)
    protected = {options.target, options.key, options.time} - {None}
    for column in protected & {c for c, a in actions.items() if a == "drop"}:
        raise DataError(f"column '{column}' is the target/key/time and cannot be dropped as PII")
    return actions


def _write_working_table(
    con: duckdb.DuckDBPyConnection,
    loaded: LoadedSource,
    actions: Mapping[str, PiiAction],
    kinds: Mapping[str, Sequence[str]],
    salt: str,
) -> list[ColumnInfo]:
    """Create table ``working``: the source with the PII policy applied, in source order."""
    parts = []
    for column in loaded.columns:
        action = actions.get(column.name, "keep")
        expression = pii_expression(column.name, action, kinds.get(column.name, ()), salt)
        if expression is not None:
            parts.append(f"{expression} AS {quote_identifier(column.name)}")
    con.execute(f"CREATE TABLE working AS SELECT {', '.join(parts)} FROM {loaded.table}")
    return columns_of(con.table("working"))


def _write_splits(
    con: duckdb.DuckDBPyConnection, stage: Path, strategy: SplitStrategy, fraction: float,
    seed: int, options: IngestOptions,
) -> dict[str, int]:
    """Write ``train.parquet`` and (when fraction > 0) ``test.parquet``; return their row counts."""
    if fraction > 0:
        query = holdout_query("working", strategy=strategy, fraction=fraction, seed=seed,
                              target=options.target, time=options.time)
        con.execute(f"CREATE TABLE sealed AS {query}")
    else:
        con.execute("CREATE TABLE sealed AS SELECT *, FALSE AS __holdout FROM working")
    counts = {}
    for subset, flag in (("train", "NOT"), ("test", "")):
        (counts[subset],) = con.execute(
            f"SELECT count(*) FROM sealed WHERE {flag} __holdout"
        ).fetchall()[0]
        if subset == "test" and counts[subset] == 0:
            continue
        target = quote_literal(str(stage / f"{subset}.parquet"))
        con.execute(
            f"COPY (SELECT * EXCLUDE (__holdout) FROM sealed WHERE {flag} __holdout "
            f"ORDER BY rowid) TO {target} (FORMAT parquet, COMPRESSION zstd)"
        )
    return counts


def _catalog_meta(
    loaded: LoadedSource,
    options: IngestOptions,
    columns: Sequence[ColumnInfo],
    findings: Sequence[PiiFinding],
    actions: Mapping[str, PiiAction],
    raw_sha: str,
    key: str,
) -> dict[str, Any]:
    return {
        "source": loaded.location,
        "format": loaded.format,
        "source_details": loaded.details,
        "source_columns": [c.to_dict() for c in loaded.columns],
        "columns": [c.to_dict() for c in columns],
        "target": options.target,
        "key": options.key,
        "time": options.time,
        "pii": [{**f.to_dict(), "action": actions.get(f.column, "keep")} for f in findings],
        "pii_policy": dict(actions),
        "raw_sha256": raw_sha,
        "ingest_key": key,
    }


def _store(
    ws: Workspace,
    stage: Path,
    loaded: LoadedSource,
    options: IngestOptions,
    meta: dict[str, Any],
    counts: Mapping[str, int],
    fraction: float,
) -> IngestResult:
    """Back up the raw bytes and catalog the backup, the sealed test set and the dataset."""
    backup = stage / ("raw" + "".join(loaded.raw_path.suffixes))
    with loaded.raw_path.open("rb") as source:
        backup_sha = _atomic.copy_hashed(source, backup, mode=0o600)
    if backup_sha != meta["raw_sha256"]:
        raise DataError(f"{loaded.location} changed while it was being ingested; ingest it again")
    raw = ws.put_file(
        backup, kind="raw", name=f"{options.name}.raw", access="restricted",
        meta={"source": loaded.location, "format": loaded.format, **loaded.details},
        description=f"byte-exact backup of {loaded.location}",
    )
    testset = None
    if counts["test"]:
        testset = ws.put_file(
            stage / "test.parquet", kind="testset", name=f"{options.name}.test",
            access="restricted", inputs={"source": raw.id},
            meta={**meta, "rows": counts["test"], "sealed_fraction": fraction},
            description=f"sealed test set of {options.name}; only 'mlstrata test' may read it",
        )
    dataset = ws.put_file(
        stage / "train.parquet", kind="dataset", name=options.name, access=options.access,
        inputs={"source": raw.id},
        meta={**meta, "rows": counts["train"], "testset": testset.id if testset else None,
              "sealed_fraction": fraction},
        description=options.description,
    )
    return IngestResult(dataset=dataset, testset=testset, raw=raw, reused_existing=False)

