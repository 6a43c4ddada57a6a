"""Read a source through Apache Spark: a Spark SQL query, a metastore table, or a lake path
(``spark:SELECT ...``, ``spark:db.table``, ``spark:/data/lake``).

Spark runs the read and writes the snapshot — Parquet part files under the ingest's staging
folder — so the source itself (a Hive or Delta table, a lake Spark can plan over) is read by
the engine made for it. The part files are renamed ``part-00000.parquet``... (Spark names them
with a random id) and hold the rows in source order: a lake path's files by name, each file's
rows in order (the order DuckDB reads the same lake in). The snapshot is backed up as the
query-plus-result: the bundle of the snapshot files with the query, table or path in its
manifest. ``ingest`` goes on in Spark (:mod:`._spark_ingest`); a batch to validate or score
(:func:`spark_snapshot`) is read like any local Parquet lake (:mod:`._lake`).

The session is the active one when there is one (a notebook's, a ``spark-submit``'s), else a
local one (``local[*]``, no web UI, bound to 127.0.0.1), stopped afterwards. PySpark is imported
only here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ._lake_files import partitions
from ._source_text import first_line

__all__ = ["SPARK_PREFIX", "is_spark", "partition_keys", "spark_session",
           "spark_snapshot", "spark_target", "write_snapshot"]

SPARK_PREFIX = "spark:"
_QUERY = re.compile(r"\s*(SELECT|WITH|FROM|VALUES|TABLE)\b", re.IGNORECASE)


def is_spark(location: str) -> bool:
    """Whether ``location`` asks for the Spark engine (``spark:TABLE``, ``spark:PATH``,
    ``spark:SELECT ...``)."""
    return location.startswith(SPARK_PREFIX)


def spark_target(location: str) -> tuple[str, str]:
    """What Spark reads — ``("query", sql)``, ``("path", path)`` or ``("table", name)`` — from
    a ``spark:`` location.

    >>> spark_target("spark:sales.loans"), spark_target("spark:SELECT 1;")
    (('table', 'sales.loans'), ('query', 'SELECT 1'))
    """
    what = location[len(SPARK_PREFIX):].strip()
    if not what:
        raise SourceError("the Spark engine needs a table, a lake path or a SELECT query, e.g. "
                          "mlstrata ingest --engine spark 'SELECT * FROM sales' --name sales")
    if _QUERY.match(what):
        return "query", what.rstrip(";").strip()
    return ("path", what) if "/" in what else ("table", what)


def spark_snapshot(location: str, folder: Path) -> dict[str, str]:
    """Have Spark read the source and write it as Parquet into ``folder``; return what was read
    (for the catalog and the backup's manifest)."""
    with spark_session() as spark:
        return write_snapshot(spark, location, folder)


def write_snapshot(spark: Any, location: str, folder: Path) -> dict[str, str]:
    """Have ``spark`` read the source and write it, in source order, as Parquet parts
    ``part-00000.parquet``... into ``folder``; return what was read."""
    kind, what = spark_target(location)
    from pyspark.errors import PySparkException

    try:
        frame, text = _frame(spark, kind, what)
        frame.write.mode("errorifexists").parquet(str(folder))
    except PySparkException as exc:
        raise SourceError(f"Spark could not read {kind} {what!r}: {first_line(exc)}; "
                          f"check the {kind}") from exc
    parts = sorted(folder.glob("part-*.parquet"))
    for index, part in enumerate(parts):
        part.rename(folder / f"part-{index:05d}.parquet")
    for marker in folder.glob("*.crc"):
        marker.unlink()
    return {"engine": "spark", kind: what, **({"text": "true"} if text else {})}


def _frame(spark: Any, kind: str, what: str) -> tuple[Any, bool]:
    """The DataFrame to snapshot, and whether its columns are text to type by inference (a CSV
    or JSON lake is read with every column as a string, as mlstrata reads text)."""
    if kind == "query":
        return spark.sql(what), False
    if kind == "table":
        return spark.table(what), False
    path = Path(what)
    if not path.exists():
        raise SourceError(f"{what} does not exist; check the lake path")
    suffixes = {p.suffix.lower() for p in _files(path)}
    keys = partition_keys(what)
    if suffixes & {".csv", ".tsv"}:
        sep = "\t" if ".tsv" in suffixes else ","
        reader = spark.read.options(header=True, inferSchema=False, sep=sep)
        return _in_file_order(reader.csv(what), keys), True
    if suffixes & {".json", ".jsonl", ".ndjson"}:
        frame = spark.read.json(what, primitivesAsString=True)
        return _in_file_order(frame.select(*_first_keys_first(path, frame.columns)), keys), True
    return _in_file_order(spark.read.parquet(what), keys), False


def partition_keys(what: str) -> list[str]:
    """The Hive partition keys (``key=value`` folders) of a lake path's first file."""
    root = Path(what)
    files = _files(root)
    if not files or root.is_file():
        return []
    return [key for key, _ in partitions(files[0].relative_to(root).as_posix())]


def _first_keys_first(path: Path, columns: list[str]) -> list[str]:
    """``columns`` (Spark sorts a JSON source's by name) with the first record's keys first, in
    the record's order, as the local path orders them."""
    first = next((p for p in _files(path) if p.suffix.lower() in (".json", ".jsonl", ".ndjson")),
                 None)
    if first is None:
        return columns
    with first.open(encoding="utf-8", errors="replace") as lines:
        record = next((line for line in lines if line.strip()), "{}")
    try:
        keys = list(json.loads(record))
    except (ValueError, TypeError):  # a JSON array or a broken line: Spark's order stays
        keys = []
    return [k for k in keys if k in columns] + [c for c in columns if c not in keys]


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*.*") if p.is_file())


def _in_file_order(frame: Any, keys: list[str]) -> Any:
    """``frame`` sorted into source order: files by path, rows as each file holds them (Spark
    plans the biggest files first); integer partition columns as BIGINT, as the local path
    types them."""
    from pyspark.sql import functions as F

    kinds = dict(frame.dtypes)
    for key in keys:
        if kinds.get(key) in ("int", "smallint", "tinyint"):
            frame = frame.withColumn(key, F.col(key).cast("bigint"))
    order = ["__mlstrata_file", "__mlstrata_block", "__mlstrata_row"]
    return (frame.select("*", F.col("_metadata.file_path").alias(order[0]),
                         F.col("_metadata.file_block_start").alias(order[1]),
                         F.monotonically_increasing_id().alias(order[2]))
            .orderBy(*order).drop(*order))


@contextmanager
def spark_session() -> Iterator[Any]:
    """The active Spark session, else a local one stopped afterwards."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    if existing is not None:
        yield existing
        return
    spark = (SparkSession.builder.master("local[*]").appName("mlstrata-ingest")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.host", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()
