"""The Spark engine (local mode) gives the local engine's predictions row for row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlstrata.batch.predict import predict
from mlstrata.errors import DataError, SourceError
from mlstrata.predlog import open_log
from mlstrata.predlog.reading import read_lines

from ._inputs import KEY, raw_csv


@pytest.fixture
def raw_parquet(credit_package: Path, tmp_path: Path) -> Path:
    """The raw credit rows (valid and invalid) as Parquet, in three files of a folder."""
    options = pacsv.ConvertOptions(column_types={"postal_code": pa.string(),
                                                 "application_date": pa.date32()})
    table = pacsv.read_csv(raw_csv(credit_package), convert_options=options)
    folder = tmp_path / "applications"
    folder.mkdir()
    for part, start in enumerate(range(0, table.num_rows, 500)):
        pq.write_table(table.slice(start, 500), folder / f"part-{part}.parquet")
    return folder


@pytest.mark.slow
def test_spark_predictions_equal_local_row_for_row(credit_package: Path, raw_parquet: Path,
                                                   tmp_path: Path) -> None:
    local = predict(credit_package, raw_parquet, tmp_path / "local.parquet", keys=[KEY])
    spark = predict(credit_package, raw_parquet, tmp_path / "spark.parquet", keys=[KEY],
                    engine="spark", master="local[2]", batch_rows=200)
    assert (spark.engine, spark.rows_in) == ("spark", 1500)
    assert (spark.rows_scored, spark.rows_rejected) == (local.rows_scored, local.rows_rejected)
    ours = pq.read_table(tmp_path / "local.parquet").sort_by(KEY).drop_columns(["run_id"])
    theirs = pq.read_table(tmp_path / "spark.parquet").sort_by(KEY)
    assert set(theirs.column("run_id").to_pylist()) == {spark.run_id}
    assert theirs.drop_columns(["run_id"]).replace_schema_metadata(None).equals(ours)
    rejects = {name: pacsv.read_csv(tmp_path / name, convert_options=pacsv.ConvertOptions(
        column_types={KEY: pa.string()})).sort_by(KEY)
        for name in ("local.rejects.csv", "spark.rejects.csv")}
    assert rejects["spark.rejects.csv"].column("reject_reason").to_pylist() == \
        rejects["local.rejects.csv"].column("reject_reason").to_pylist()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "applications", "local.parquet", "local.rejects.csv", "spark.parquet",
        "spark.rejects.csv"]

    with pytest.raises(DataError, match=r"input rows are invalid: row application_id='A\d+'"):
        predict(credit_package, raw_parquet, tmp_path / "failed.parquet", keys=[KEY],
                engine="spark", master="local[1]", on_invalid="fail")
    assert not (tmp_path / "failed.parquet").exists()


@pytest.mark.slow
def test_spark_partitions_log_what_they_scored(credit_package: Path, raw_parquet: Path,
                                               tmp_path: Path) -> None:
    """Each partition logs its scored rows (at the driver's log directory, under
    ``<run id>-p<partition>``): one line per scored row, the predictions Spark wrote."""
    root = tmp_path / "log"
    with open_log(root) as log:
        report = predict(credit_package, raw_parquet, tmp_path / "spark.parquet", keys=[KEY],
                         engine="spark", master="local[2]", batch_rows=200, log=log)
    lines = list(read_lines(root))
    assert len(lines) == report.rows_scored > 0
    assert {line["request_id"].rpartition("-p")[0] for line in lines} == {report.run_id}
    assert len({line["request_id"] for line in lines}) > 1  # several partitions
    scored = pq.read_table(tmp_path / "spark.parquet").to_pylist()
    assert {line["key"]: line["prediction"] for line in lines} == {
        row[KEY]: row["prediction"] for row in scored}


@pytest.mark.parametrize(("source", "output", "message"), [
    ("in.csv", "out.parquet", "the Spark engine reads Parquet"),
    ("applications", "out.csv", "the Spark engine writes Parquet"),
    ("missing.parquet", "out.parquet", "missing.parquet does not exist"),
])
def test_spark_takes_parquet_only(credit_package: Path, raw_parquet: Path, tmp_path: Path,
                                  source: str, output: str, message: str) -> None:
    (tmp_path / "in.csv").write_text("a\n1\n")
    with pytest.raises(SourceError, match=message):
        predict(credit_package, tmp_path / source, tmp_path / output, engine="spark")
