"""Ingest through Spark (local mode): a Spark SQL query, a table, a lake path — Spark reads and
writes the snapshot, the ingest types, protects and seals it as for any source."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mlstrata.data.ingest import IngestOptions, ingest
from mlstrata.data.sources import SourceSpec, load_source
from mlstrata.workspace import Workspace

from .test_source_errors import _error as source_error

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local Spark session with a view ``loans`` (the ingest uses the active session)."""
    from mlstrata.batch.spark import spark_session

    session = spark_session("local[1]")
    session.sparkContext.setLogLevel("ERROR")
    rows = [(i, f"{i:05d}", float(i) * 1.5, i % 3 == 0) for i in range(1, 41)]
    session.createDataFrame(rows, "id long, zip string, amount double, paid boolean") \
        .createOrReplaceTempView("loans")
    try:
        yield session
    finally:
        session.stop()


def _load(location: str, tmp_path: Path) -> tuple[Any, duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    return load_source(SourceSpec(location), con, tmp_path / "stage"), con


def test_spark_sql_query(spark: Any, tmp_path: Path) -> None:
    loaded, con = _load("spark:SELECT id, zip, amount FROM loans WHERE id > 30", tmp_path)
    assert [(c.name, c.type) for c in loaded.columns] == [
        ("id", "integer"), ("zip", "text"), ("amount", "float")]
    assert con.execute(f"SELECT min(id), count(*) FROM {loaded.table}").fetchall() == [(31, 10)]
    assert loaded.details["engine"] == "spark"
    assert loaded.details["query"] == "SELECT id, zip, amount FROM loans WHERE id > 30"
    with tarfile.open(loaded.raw_path) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["engine"] == "spark" and manifest["query"].startswith("SELECT id")
    assert all(f["name"].startswith("part-0") for f in manifest["files"])


def test_spark_table_ingest_is_reproducible(spark: Any, workspace: Workspace) -> None:
    options = IngestOptions(name="loans", target="paid")
    first = ingest(workspace, SourceSpec("spark:loans"), options)
    assert first.dataset.meta["rows"] + first.testset.meta["rows"] == 40  # type: ignore[union-attr]
    assert first.dataset.meta["source"] == "spark:loans"
    again = ingest(workspace, SourceSpec("spark:loans"), options)
    assert again.reused_existing and again.dataset.id == first.dataset.id


def test_spark_reads_a_csv_lake_path(spark: Any, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for part in range(2):
        (lake / f"day={part + 1}").mkdir(parents=True)
        (lake / f"day={part + 1}" / "a.csv").write_text(f"n,code\n{part},007\n")
    loaded, _ = _load(f"spark:{lake}", tmp_path)
    assert {(c.name, c.type) for c in loaded.columns} == {
        ("n", "integer"), ("code", "text"), ("day", "integer")}


def test_spark_errors_are_one_line(spark: Any, tmp_path: Path) -> None:
    message = source_error(tmp_path, "spark:no_such_table")
    assert message.startswith("Spark could not read table 'no_such_table':")
    assert "needs a table, a lake path or a SELECT query" in source_error(tmp_path, "spark:")


def test_cli_engine_spark(spark: Any, workspace: Workspace, cli: Any) -> None:
    result = cli("ingest", "--engine", "spark", "SELECT id, paid FROM loans", "--name", "viacli",
                 "--test-fraction", "0", "--json", cwd=workspace.root)
    assert result.code == 0, result.err
    assert json.loads(result.out)["dataset"]["meta"]["rows"] == 40
    result = cli("ingest", "--spark-sql", "SELECT id FROM loans WHERE paid", "--name", "paid",
                 "--test-fraction", "0", "--json", cwd=workspace.root)
    assert result.code == 0, result.err
    assert json.loads(result.out)["dataset"]["meta"]["source"] == \
        "spark:SELECT id FROM loans WHERE paid"
    wrong = cli("ingest", "--engine", "flink", "x", "--name", "x", cwd=workspace.root)
    assert wrong.code == 2 and "--engine: 'flink' is not one of local, spark" in wrong.err
    both = cli("ingest", "x", "--spark-sql", "SELECT 1", "--name", "x", cwd=workspace.root)
    assert both.code == 2 and "either SOURCE (x) or --spark-sql, not both" in both.err
    none = cli("ingest", "--name", "x", cwd=workspace.root)
    assert none.code == 2 and "pass SOURCE" in none.err
