"""Ingest with ``--engine spark`` past the read (local mode): typing, PII, the sealed test set and
the version's Parquet made by Spark match what the local (DuckDB) path makes of the same data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mlstrata.data.datasets import open_dataset, workspace_connection
from mlstrata.data.engine import parquet_scan
from mlstrata.data.ingest import IngestOptions, IngestResult, ingest
from mlstrata.data.sources import SourceSpec
from mlstrata.errors import DataError, SourceError
from mlstrata.workspace import ACCEPTANCE_PURPOSE, Workspace

pytestmark = pytest.mark.slow

_GRADES = "AAAAABBBCD"  # C and D are rare: pooled into bins by the stratified rule


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module (the ingest uses the active session)."""
    from mlstrata.batch.spark import spark_session

    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def _lake(folder: Path) -> Path:
    """Three CSV files of 120 loans: codes with leading zeros, null tokens, dates, e-mails,
    names, phones in free text."""
    folder.mkdir()
    for part in range(3):
        lines = ["id,code,amount,opened,email,full_name,note,grade"]
        for i in range(part * 40, part * 40 + 40):
            amount = "NA" if i % 17 == 0 else f"{i * 1.25}"
            note = f"call +34 612 345 {i:03d} after 5" if i % 9 == 0 else "no answer"
            lines.append(f"{i},{i % 50:03d},{amount},2024-01-{i % 28 + 1:02d},"
                         f"user{i}@example.com,Ana Maria {i},{note},{_GRADES[i % 10]}")
        (folder / f"part-{part}.csv").write_text("\n".join(lines) + "\n")
    return folder


def _rows(ws: Workspace, result: IngestResult) -> tuple[list[Any], list[Any]]:
    """The stored train and sealed rows, in file order."""
    assert result.testset is not None
    with duckdb.connect() as con:
        train = con.sql(f"SELECT * FROM {parquet_scan(ws.path_for_read(result.dataset))}")
        test = con.sql("SELECT * FROM "
                       f"{parquet_scan(ws.path_for_read(result.testset, ACCEPTANCE_PURPOSE))}")
        return train.fetchall(), test.fetchall()


@pytest.mark.parametrize(("target", "time"), [("grade", None), (None, None), (None, "opened")],
                         ids=["stratified", "random", "time"])
def test_spark_ingest_matches_the_local_path(spark: Any, workspace: Workspace, tmp_path: Path,
                                             target: str | None, time: str | None) -> None:
    lake = _lake(tmp_path / "lake")
    pii = {"full_name": "hash"}
    local = ingest(workspace, SourceSpec(str(lake)),
                   IngestOptions(name="local", target=target, time=time, key="id", pii=pii))
    steps: list[str] = []
    made = ingest(workspace, SourceSpec(f"spark:{lake}"),
                  IngestOptions(name="spark", target=target, time=time, key="id", pii=pii),
                  steps.append)
    assert made.dataset.meta["columns"] == local.dataset.meta["columns"]
    assert [c["type"] for c in made.dataset.meta["columns"]] == [
        "integer", "text", "float", "date", "text", "text", "text", "text"]
    assert made.dataset.meta["pii"] == local.dataset.meta["pii"]
    assert {f["column"] for f in made.dataset.meta["pii"]} >= {"email", "full_name", "note"}
    assert made.testset is not None and local.testset is not None
    assert (made.dataset.meta["rows"], made.testset.meta["rows"]) == (96, 24)
    assert made.testset.meta["rows"] == local.testset.meta["rows"]
    spark_train, spark_test = _rows(workspace, made)
    local_train, local_test = _rows(workspace, local)
    assert spark_test == local_test  # the same rows sealed, in the same order
    assert spark_train == local_train  # same masked and hashed values, same types
    first = spark_train[0]
    assert first[4].startswith("u***@e***.") and len(first[5]) == 64  # masked, hashed
    assert made.raw.meta["engine"] == "spark" and made.dataset.meta["source_details"]["files"]
    assert "sealing the test set" in steps


def test_a_spark_made_version_is_read_downstream_unchanged(spark: Any, workspace: Workspace,
                                                           cli: Any) -> None:
    """``mlstrata ingest --spark-sql``, then profile, contract, validate, split and train."""
    rows = [(i, (i * 37 % 100) / 100, "yes" if i * 37 % 100 > 40 else "no", "x" if i % 2 else "y")
            for i in range(200)]
    schema = "id long, score double, paid string, tag string"
    spark.createDataFrame(rows, schema).createOrReplaceTempView("scores")
    (workspace.root / "mlstrata.yaml").write_text(
        "model:\n  candidates: [logistic, tree]\n  cv: {folds: 3}\n  tune: {top_k: 0}\n"
        "  ensembles: []\n")
    root = workspace.root
    made = cli("ingest", "--spark-sql", "SELECT score, paid, tag FROM scores", "--name",
               "scores", "--target", "paid", "-w", root)
    assert made.code == 0, made.err
    assert Workspace(root).resolve("scores").meta["source_details"]["engine"] == "spark"
    for args in (("profile", "scores"), ("contract", "infer", "scores"), ("validate", "scores"),
                 ("split", "scores"), ("train", "scores")):
        result = cli(*args, "-w", root)
        assert result.code == 0, (args, result.err)
    version = open_dataset(Workspace(root), "scores")
    con = workspace_connection(workspace)
    try:
        assert version.relation(con).count("*").fetchall() == [(160,)]
    finally:
        con.close()
    assert Workspace(root).artifacts("model")


def test_a_spark_job_failing_mid_write_leaves_nothing(spark: Any, workspace: Workspace) -> None:
    spark.range(0, 400, numPartitions=4).createOrReplaceTempView("numbers")
    query = "spark:SELECT id, CASE WHEN id = 350 THEN raise_error('boom') ELSE id END AS x " \
            "FROM numbers"
    with pytest.raises((SourceError, DataError)) as caught:
        ingest(workspace, SourceSpec(query), IngestOptions(name="broken"))
    assert "boom" in str(caught.value) and "\n" not in str(caught.value)
    assert workspace.artifacts() == []
    assert not [p for p in (workspace.store / "objects").rglob("*") if p.is_file()]
    assert not list((workspace.store / "tmp").glob("stage-*"))


def test_join_is_refused_on_spark(spark: Any, workspace: Workspace) -> None:
    spark.range(0, 10).createOrReplaceTempView("ten")
    with pytest.raises(DataError, match="--join cannot run with --engine spark"):
        ingest(workspace, SourceSpec("spark:ten"), IngestOptions(name="ten"),
               before_store=lambda con, sql: None)
    assert workspace.artifacts() == []


def test_a_partitioned_parquet_lake_matches_the_local_path(spark: Any, workspace: Workspace,
                                                            tmp_path: Path) -> None:
    """Typed columns (decimal, timestamp), a Hive partition typed BIGINT, a continuous target
    (every row in pooled bins)."""
    lake = tmp_path / "lake"
    with duckdb.connect() as con:
        for day in (1, 2, 10):
            (lake / f"day={day}").mkdir(parents=True)
            con.execute(
                f"COPY (SELECT range AS id, range / 7 AS x, CAST(range AS DECIMAL(10, 2)) AS d,"
                f" TIMESTAMP '2024-01-01' + INTERVAL (range) HOUR AS ts FROM range({day * 30}, "
                f"{day * 30 + 30})) TO '{lake}/day={day}/f.parquet' (FORMAT parquet)")
    local = ingest(workspace, SourceSpec(str(lake)), IngestOptions(name="local", target="x"))
    made = ingest(workspace, SourceSpec(f"spark:{lake}"), IngestOptions(name="spark", target="x"))
    assert made.dataset.meta["columns"] == local.dataset.meta["columns"]
    assert made.dataset.meta["source_details"]["partitions"] == ["day"]
    assert [c["engine_type"] for c in made.dataset.meta["columns"]] == [
        "BIGINT", "DOUBLE", "DECIMAL(10,2)", "TIMESTAMP", "BIGINT"]
    assert _rows(workspace, made) == _rows(workspace, local)


def test_a_json_lines_lake_matches_the_local_path(spark: Any, workspace: Workspace,
                                                 tmp_path: Path) -> None:
    """Spark sorts a JSON source's columns by name; the version keeps the records' order."""
    lake = tmp_path / "lake"
    lake.mkdir()
    for part in range(2):
        (lake / f"p{part}.jsonl").write_text("".join(
            json.dumps({"id": i, "ok": i % 2 == 0, "x": i / 4 if i % 5 else None,
                        "ip": f"10.0.0.{i}", "card": "4111 1111 1111 1111" if i % 3 else "NA"})
            + "\n" for i in range(part * 30, part * 30 + 30)))
    local = ingest(workspace, SourceSpec(str(lake)), IngestOptions(name="local", target="ok"))
    made = ingest(workspace, SourceSpec(f"spark:{lake}"), IngestOptions(name="spark", target="ok"))
    assert [c["name"] for c in made.dataset.meta["columns"]] == ["id", "ok", "x", "ip", "card"]
    assert made.dataset.meta["columns"] == local.dataset.meta["columns"]
    assert made.dataset.meta["pii"] == local.dataset.meta["pii"]
    assert _rows(workspace, made) == _rows(workspace, local)


def test_no_sealed_rows_with_test_fraction_0_and_a_reingest_reuses(spark: Any,
                                                                  workspace: Workspace) -> None:
    spark.range(0, 10).createOrReplaceTempView("ten_rows")
    made = ingest(workspace, SourceSpec("spark:ten_rows"),
                  IngestOptions(name="ten", key="id", test_fraction=0.0))
    assert made.testset is None and made.dataset.meta["rows"] == 10
    again = ingest(workspace, SourceSpec("spark:ten_rows"),
                   IngestOptions(name="ten", key="id", test_fraction=0.0))
    assert again.reused_existing and again.dataset.id == made.dataset.id
    with duckdb.connect() as con:
        stored = con.sql(f"SELECT * FROM {parquet_scan(workspace.path_for_read(made.dataset))}")
        assert stored.fetchall() == [(i,) for i in range(10)]


def test_schema_overrides_type_as_on_the_local_path(spark: Any, workspace: Workspace,
                                                    tmp_path: Path) -> None:
    lake = _lake(tmp_path / "lake")
    schema: dict[str, Any] = {"id": "text", "code": "integer"}
    local = ingest(workspace, SourceSpec(str(lake), schema=schema), IngestOptions(name="local"))
    made = ingest(workspace, SourceSpec(f"spark:{lake}", schema=schema),
                  IngestOptions(name="spark"))
    assert made.dataset.meta["columns"] == local.dataset.meta["columns"]
    assert _rows(workspace, made) == _rows(workspace, local)
    with pytest.raises(SourceError) as caught:
        ingest(workspace, SourceSpec(f"spark:{lake}", schema={"email": "integer"}),
               IngestOptions(name="bad"))
    message = str(caught.value)
    assert "column 'email' cannot be read as integer: 'user0@example.com' at row 1" in message
    assert "\n" not in message and len(workspace.artifacts("dataset")) == 2
