"""The ingest's steps on the rows in Spark (``--engine spark``): the rows never enter this process.

Spark reads the source once and writes its snapshot (:func:`._spark_source.write_snapshot`),
which is backed up as the query-plus-result bundle. From that snapshot, in Spark SQL:

* **position**: each row's place in the snapshot (part file, then the row's index in it) — the
  row identity DuckDB's ``rowid`` is on the local path, so both engines number a lake alike;
* **typing**: a text source (CSV, JSON) is typed by the same whole-column evidence and rules as
  :mod:`.inference` (:func:`.inference.decide_type`), counted in one Spark aggregate, then cast;
* **PII**: :func:`.pii.scan_pii` runs here on each column's sample — its first 20,000 non-null
  values in row order, the sample the local path checks — and the policy is applied by
  :func:`.pii.pii_expression` in Spark SQL: the same masks and the same salted hashes;
* **sealed test set**: :func:`.split.assignment_query`'s rule, a function of the row's
  position, its values and the seed, computed from distributed sorts (:mod:`._spark_split`):
  the same rows as the local path seals;
* **the version**: Spark writes ``train.parquet`` and ``test.parquet``, one Parquet file each
  (one Spark task writes each, from the sorted, distributed result), which the workspace stores
  and hashes as any version; readers downstream see an ordinary dataset version.

Only samples (PII), counts and each column's evidence come back to this process.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import duckdb

from .. import _atomic
from ..config import ColumnType, PiiAction
from ..errors import DataError, SourceError
from ._bundle import write_bundle
from ._source_text import first_line
from ._spark_source import (
    partition_keys,
    spark_session,
    spark_target,
    write_snapshot,
)
from ._spark_split import holdout_frame, number_rows
from ._sql_dialect import SPARK
from .inference import (
    DATE_PATTERN,
    INTEGER_PATTERN,
    LEADING_ZERO_PATTERN,
    NULL_TOKEN_MAX_LENGTH,
    NULL_TOKENS,
    NUMBER_PATTERN,
    TIMESTAMP_PATTERN,
    Evidence,
    decide_type,
    is_number_column_with_text,
)
from .ingest import Check, IngestOptions, key_refusal
from .pii import PiiFinding, pii_expression, scan_pii
from .sources import LoadedSource, SourceSpec
from .split import SplitStrategy, strategy_column
from .types import ColumnInfo, logical_type

__all__ = ["SparkWork", "spark_work"]

_ROW = "__mlstrata_row"
_PII_SAMPLE = 20000
_TIMESTAMPS = "spark.sql.parquet.outputTimestampType"
_EVIDENCE = [f.name for f in fields(Evidence)]
_UNSUPPORTED = ("delimiter", "encoding", "sheet", "table", "query", "format")
_ENGINE_TYPES = {"bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT",
                 "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT",
                 "string": "VARCHAR", "boolean": "BOOLEAN", "date": "DATE",
                 "timestamp_ntz": "TIMESTAMP"}
_SPARK_TYPES = {"text": "STRING", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN",
                "date": "DATE", "timestamp": "TIMESTAMP_NTZ"}


@contextmanager
def spark_work(stage: Path) -> Iterator[SparkWork]:
    """The ingest's Spark engine, on the active session or a local one, for one ingest."""
    with spark_session() as spark:
        previous = spark.conf.get(_TIMESTAMPS, None)
        spark.conf.set(_TIMESTAMPS, "TIMESTAMP_MICROS")  # DuckDB's TIMESTAMP, not INT96
        work = SparkWork(spark, stage)
        try:
            yield work
        finally:
            work.release()
            if previous is None:
                spark.conf.unset(_TIMESTAMPS)
            else:
                spark.conf.set(_TIMESTAMPS, previous)


@dataclass
class SparkWork:
    """An ingest's steps in Spark SQL; frames are kept (``persist``) between steps."""

    spark: Any
    stage: Path
    frames: dict[str, Any] = field(default_factory=dict)
    rows: int = 0

    def load(self, spec: SourceSpec) -> LoadedSource:
        """Snapshot the source, number its rows, type them (a text source by inference)."""
        for option in _UNSUPPORTED:
            if getattr(spec, option) is not None:
                raise SourceError(f"{spec.location}: --{option} does not apply to the Spark "
                                  "engine; write it into the Spark SQL query, or remove it")
        folder = self.stage / "spark-snapshot"
        about = write_snapshot(self.spark, spec.location, folder)
        with _failing("typing the snapshot"):
            numbered = _numbered(self.spark, folder)
            if numbered is None:
                raise SourceError(f"{spec.location} has no rows; check the table or query")
            typed = self._keep("typed", _typed(numbered, "text" in about, spec.schema,
                                               spec.location))
            self.rows = rows = typed.count()
        parts = sorted(folder.glob("part-*.parquet"))
        entries: list[dict[str, Any]] = [
            {"name": p.name, "size": p.stat().st_size, "sha256": _atomic.sha256_file(p)}
            for p in parts]
        shown = {k: v for k, v in about.items() if k != "text"}
        bundle = write_bundle(self.stage / "spark-snapshot.tar",
                              [(p, e, p.name) for p, e in zip(parts, entries, strict=True)],
                              {"format": "parquet", **about})
        kind, what = spark_target(spec.location)
        details = {"files": len(parts), "bytes": sum(e["size"] for e in entries),
                   "partitions": partition_keys(what) if kind == "path" else [], **shown,
                   "backup": "tar of the files and manifest.json (key, size, sha256)"}
        return LoadedSource("typed", _columns(typed), rows, "parquet", spec.location, bundle,
                            details)

    def check_key_unique(self, loaded: LoadedSource, key: str) -> None:
        """Refuse a key that repeats or is empty, with the local path's message."""
        from pyspark.sql import functions as F

        with _failing("checking the key"):
            found = (self.frames["typed"].groupBy(key).count()
                     .where(F.col("count") > 1).union(
                         self.frames["typed"].where(F.col(key).isNull())
                         .select(F.col(key), F.lit(1).alias("count")))
                     .limit(1).collect())
        if found:
            raise key_refusal(loaded.location, key, found[0][0], found[0][1])

    def scan_pii(self, loaded: LoadedSource) -> list[PiiFinding]:
        """:func:`.pii.scan_pii` on each column's first non-null values in row order."""
        from pyspark.sql import functions as F

        findings = []
        for column in loaded.columns:
            size = _PII_SAMPLE if column.type == "text" else 1
            with _failing("sampling for PII"):
                sample = (self.frames["typed"].where(F.col(column.name).isNotNull())
                          .orderBy(_ROW).limit(size).select(column.name).toArrow())
            with duckdb.connect() as con:
                con.register("sample", sample)
                findings += scan_pii(con, "sample", [column], sample_size=size)
        return findings

    def write_working(self, loaded: LoadedSource, actions: Mapping[str, PiiAction],
                      kinds: Mapping[str, Sequence[str]], salt: str) -> list[ColumnInfo]:
        """The typed rows with the PII policy applied in Spark SQL, as view ``working``."""
        parts = []
        for column in loaded.columns:
            expression = pii_expression(column.name, actions.get(column.name, "keep"),
                                        kinds.get(column.name, ()), salt, SPARK)
            if expression is not None:
                parts.append(f"{expression} AS {SPARK.identifier(column.name)}")
        with _failing("applying the PII policy"):
            self.frames["typed"].createOrReplaceTempView("mlstrata_typed")
            working = self.spark.sql(f"SELECT {', '.join(parts)}, {_ROW} FROM mlstrata_typed")
            working.createOrReplaceTempView("mlstrata_working")
            self.frames["working"] = working
            return _columns(working)

    def check_rows(self, before_store: Check) -> None:
        """A ``before_store`` check reads the rows through DuckDB: refused on Spark."""
        raise DataError("--join cannot run with --engine spark yet; ingest with Spark, then "
                        "join in a recipe step (mlstrata clean)")

    def write_splits(self, stage: Path, strategy: SplitStrategy, fraction: float, seed: int,
                     options: IngestOptions) -> dict[str, int]:
        """Seal the test set by the local path's rule and have Spark write both sides."""
        from pyspark.sql import functions as F

        with _failing("sealing the test set"):
            if fraction > 0:
                column = strategy_column(strategy, target=options.target, time=options.time)
                sealed = holdout_frame(self.frames["working"], strategy=strategy,
                                       fraction=fraction, seed=seed, rows=self.rows,
                                       column=column)
            else:
                sealed = self.frames["working"].withColumn("__holdout", F.lit(False))
            sealed = self._keep("sealed", sealed)
            held = dict(sealed.groupBy("__holdout").count().collect())
        counts = {"train": int(held.get(False, 0)), "test": int(held.get(True, 0))}
        for subset, flag in (("train", False), ("test", True)):
            if counts[subset]:
                with _failing(f"writing the {subset} rows"):
                    _write_one_file(sealed.where(F.col("__holdout") == flag), stage / subset)
                _single_part(stage / subset, stage / f"{subset}.parquet")
        return counts

    def release(self) -> None:
        """Free the kept frames and the views."""
        for frame in self.frames.values():
            frame.unpersist()
        for view in ("mlstrata_typed", "mlstrata_working"):
            self.spark.catalog.dropTempView(view)

    def _keep(self, name: str, frame: Any) -> Any:
        self.frames[name] = frame.persist()
        return self.frames[name]


@contextmanager
def _failing(step: str) -> Iterator[None]:
    """A Spark failure during ``step`` as one line of the project's own error."""
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise DataError(f"Spark failed while {step}: {first_line(exc)}; nothing was "
                        "written") from exc


def _numbered(spark: Any, folder: Path) -> Any | None:
    """The snapshot with each row's position in ``__mlstrata_row``: the rows of the part files
    before its own plus its index in the file. None for an empty snapshot."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(folder)).select(
        "*", F.col("_metadata.file_name").alias("__mlstrata_file"),
        F.col("_metadata.row_index").alias("__mlstrata_index"))
    if frame.isEmpty():
        return None
    return (number_rows(frame, "__mlstrata_file", F.col("__mlstrata_index"), _ROW)
            .drop("__mlstrata_file", "__mlstrata_index"))


def _typed(frame: Any, text: bool, overrides: Mapping[str, ColumnType], source: str) -> Any:
    """``frame`` with mlstrata's types: overrides, else (text sources) inferred, else kept."""
    from pyspark.sql import functions as F

    names = [c for c in frame.columns if c != _ROW]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise SourceError(f"{source}: the schema names column {unknown[0]!r}, which the source "
                          f"does not have; columns are: {', '.join(names)}")
    kinds = dict(frame.dtypes)
    inferred = [n for n in names if text and kinds[n] == "string" and n not in overrides]
    decided = _infer(frame, inferred, source)
    outputs = []
    for name in names:
        column = SPARK.identifier(name)
        if name in overrides:
            outputs.append(_checked_cast(frame, name, overrides[name], source, text))
        elif name in decided:
            outputs.append(F.expr(_cast(_value(column), decided[name])).alias(name))
        else:
            outputs.append(F.expr(_kept(column, kinds[name])).alias(name))
    return frame.select(*outputs, _ROW)


def _value(column: str) -> str:
    """A text value with the null tokens (``NA``, ``null``, ``''``...) as NULL."""
    tokens = ", ".join(SPARK.literal(token) for token in NULL_TOKENS)
    return (f"(CASE WHEN length(trim({column})) <= {NULL_TOKEN_MAX_LENGTH} "
            f"AND lower(trim({column})) IN ({tokens}) THEN NULL ELSE {column} END)")


def _cast(value: str, to: ColumnType) -> str:
    """Text ``value`` as type ``to`` (NULL where it does not fit), as :mod:`.inference` casts."""
    if to == "text":
        return value
    return f"try_cast(trim({value}) AS {_SPARK_TYPES[to]})"


def _kept(column: str, kind: str) -> str:
    """A typed column in the types the local path keeps: text for what has no logical type,
    timestamps as UTC wall-clock time."""
    if kind == "timestamp":
        return f"convert_timezone(current_timezone(), 'UTC', CAST({column} AS TIMESTAMP_NTZ))"
    if kind in _ENGINE_TYPES or kind.startswith("decimal"):
        return column
    return f"CAST({column} AS STRING)"


def _checked_cast(frame: Any, name: str, to: ColumnType, source: str, text: bool) -> Any:
    """A ``--schema`` override's cast, refused when a value cannot take it."""
    from pyspark.sql import functions as F

    column = SPARK.identifier(name)
    value = _value(column) if text else f"CAST({column} AS STRING)"
    cast = _cast(value, to)
    if to == "integer":
        cast = (f"CASE WHEN try_cast(trim({value}) AS DOUBLE) = try_cast(trim({value}) AS BIGINT)"
                f" THEN try_cast(trim({value}) AS BIGINT) END")
    bad = frame.where(F.expr(f"{value} IS NOT NULL AND ({cast}) IS NULL"))
    first = bad.orderBy(_ROW).select(F.expr(value), _ROW).limit(1).collect()
    if first:
        raise SourceError(
            f"{source}: column {name!r} cannot be read as {to}: {first[0][0]!r} at row "
            f"{first[0][1] + 1} ({bad.count()} failing values); fix the value or choose another "
            f"type in the schema for {name!r}")
    return F.expr(cast).alias(name)


def _infer(frame: Any, names: Sequence[str], source: str) -> dict[str, ColumnType]:
    """Each text column's type by :func:`.inference.decide_type`, from evidence counted over
    the whole column in one Spark aggregate (the counts of :mod:`.inference`)."""
    if not names:
        return {}
    from pyspark.sql import functions as F

    values = frame.select(_ROW, *[F.expr(_value(f"trim({SPARK.identifier(n)})")).alias(f"v{i}")
                                  for i, n in enumerate(names)])
    flags = values.select("*", *[F.expr(sql).alias(f"{flag}{i}") for i in range(len(names))
                                 for flag, sql in _flags(f"v{i}").items()])
    numbers = flags.select("*", *[F.expr(sql).alias(f"{flag}{i}") for i in range(len(names))
                                  for flag, sql in _number_flags(i).items()])
    fitting = numbers.select("*", *[F.expr(f"CASE WHEN int{i} THEN try_cast(v{i} AS BIGINT) IS "
                                           f"NOT NULL ELSE false END").alias(f"fits{i}")
                                    for i in range(len(names))])
    row = fitting.select(*[F.expr(sql) for i in range(len(names))
                           for sql in _evidence_sql(i)]).collect()[0]
    decided: dict[str, ColumnType] = {}
    for index, name in enumerate(names):
        counted = row[index * 10:(index + 1) * 10]
        ev = Evidence(**dict(zip(_EVIDENCE, [int(v or 0) for v in counted[:8]] + list(counted[8:]),
                                 strict=True)))
        if is_number_column_with_text(ev):
            raise SourceError(
                f"{source}: column {name!r} holds numbers in {ev.numbers} of {ev.values} values "
                f"but {ev.first_non_number!r} at row {(ev.first_non_number_row or 0) + 1}; "
                f"fix that value, or read the column as text with --schema {name}=text")
        decided[name] = decide_type(ev)
    return decided


def _flags(v: str) -> dict[str, str]:
    """Whether text ``v`` is a number, an ISO date, an ISO timestamp (:mod:`.inference`'s)."""
    dashed = f"substr({v}, 5, 1) = '-'"
    return {
        "num": f"CASE WHEN try_cast({v} AS DOUBLE) IS NOT NULL "
               f"THEN {SPARK.full_match(v, NUMBER_PATTERN)} ELSE false END",
        "date": f"CASE WHEN {dashed} THEN ({SPARK.full_match(v, DATE_PATTERN)} "
                f"AND try_cast({v} AS DATE) IS NOT NULL) ELSE false END",
        "stamp": f"CASE WHEN {dashed} THEN ({SPARK.full_match(v, TIMESTAMP_PATTERN)} "
                 f"AND try_cast({v} AS TIMESTAMP_NTZ) IS NOT NULL) ELSE false END",
    }


def _number_flags(i: int) -> dict[str, str]:
    """Whether number ``v{i}`` is written as an integer, or with leading zeros (a code)."""
    return {"int": f"CASE WHEN num{i} THEN {SPARK.full_match(f'v{i}', INTEGER_PATTERN)} "
                   "ELSE false END",
            "zero": f"CASE WHEN num{i} THEN {SPARK.full_match(f'v{i}', LEADING_ZERO_PATTERN)} "
                    "ELSE false END"}


def _evidence_sql(i: int) -> list[str]:
    """The aggregates of column ``v{i}``, in :class:`.inference.Evidence`'s field order."""
    other = f"v{i} IS NOT NULL AND NOT num{i}"
    return [f"count(v{i})", f"count_if(fits{i})", f"count_if(num{i})", f"count_if(zero{i})",
            f"count_if(int{i} AND NOT fits{i})", f"count_if(lower(v{i}) IN ('true', 'false'))",
            f"count_if(date{i})", f"count_if(stamp{i})",
            f"min({_ROW}) FILTER (WHERE {other})", f"min_by(v{i}, {_ROW}) FILTER (WHERE {other})"]


def _columns(frame: Any) -> list[ColumnInfo]:
    """The logical and DuckDB types of a typed frame's columns (the row number left out)."""
    columns = []
    for name, kind in frame.dtypes:
        if name == _ROW:
            continue
        engine = kind.upper() if kind.startswith("decimal") else _ENGINE_TYPES[kind]
        columns.append(ColumnInfo(name, logical_type(engine), engine))
    return columns


def _write_one_file(frame: Any, folder: Path) -> None:
    """Write ``frame`` in row order as one zstd Parquet file under ``folder``: Spark sorts in
    parallel, then one task writes the sorted partitions one after another."""
    (frame.orderBy(_ROW).drop(_ROW, "__holdout").coalesce(1).write
     .option("compression", "zstd").mode("errorifexists").parquet(str(folder)))


def _single_part(folder: Path, target: Path) -> None:
    """Move the one part file Spark wrote into ``folder`` to ``target``; drop the folder."""
    parts = sorted(folder.glob("part-*.parquet"))
    if len(parts) != 1:
        raise DataError(f"Spark wrote {len(parts)} files into {folder} where one was expected; "
                        "ingest again")
    parts[0].rename(target)
    shutil.rmtree(folder)
