"""predict(): files and tables out, rejects file, atomic writes, cleaning like training."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlstrata.batch.predict import PredictReport, predict
from mlstrata.batch.scoring import InvalidRowsError
from mlstrata.errors import DataError, SourceError
from mlstrata.runtime.model import load
from mlstrata.workspace import Workspace

from .._postgres import PostgresServer
from ._inputs import KEY, raw_csv, valid_records

FILTER_REASON = "recipe filter: regexp_full_match(postal_code, '[0-9]{5}')"


@pytest.fixture(scope="module")
def valid_csv(credit_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 valid raw rows as a CSV, with the key column."""
    keys, records = valid_records(credit_package, 200)
    path = tmp_path_factory.mktemp("inputs") / "valid.csv"
    table = pa.table({KEY: keys, **{n: [r[n] for r in records] for n in records[0]}})
    pacsv.write_csv(table, path)
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_parquet_output_matches_the_runtime(credit_package: Path, valid_csv: Path,
                                            tmp_path: Path) -> None:
    report = predict(credit_package, valid_csv, tmp_path / "scores.parquet", keys=[KEY],
                     batch_rows=64)
    scored = pq.read_table(tmp_path / "scores.parquet")
    keys, records = valid_records(credit_package, 200)
    expected = load(credit_package).predict_records(records)
    assert scored.column(KEY).to_pylist() == keys
    assert scored.column("prediction").to_pylist() == expected.predictions
    assert expected.probabilities is not None
    assert np.array_equal(scored.column("probability_1").to_numpy(), expected.probabilities[:, 1])
    assert set(scored.column("run_id").to_pylist()) == {report.run_id}
    assert (report.rows_in, report.rows_scored, report.rows_rejected) == (200, 200, 0)
    assert report.rows_warned == 0 and set(scored.column("warnings").to_pylist()) == {""}
    assert report.rejects is None
    assert _files(tmp_path) == ["scores.parquet"]


def test_rows_past_the_warn_rules_are_scored_and_counted(credit_package: Path, valid_csv: Path,
                                                         tmp_path: Path) -> None:
    """An unseen region (the inferred category set warns) is scored with a warning."""
    table = pacsv.read_csv(valid_csv, convert_options=pacsv.ConvertOptions(
        column_types={"region": pa.string()}))
    regions = table.column("region").to_pylist()
    regions[:3] = ["atlantis"] * 3
    source = tmp_path / "in.csv"
    pacsv.write_csv(table.set_column(table.schema.get_field_index("region"), "region",
                                     pa.array(regions)), source)
    report = predict(credit_package, source, tmp_path / "out.parquet", keys=[KEY])
    assert (report.rows_scored, report.rows_rejected, report.rows_warned) == (200, 0, 3)
    assert report.to_dict()["rows_warned"] == 3
    warnings = pq.read_table(tmp_path / "out.parquet").column("warnings").to_pylist()
    assert all(w.startswith("field 'region' (allowed): 'atlantis'") for w in warnings[:3])
    assert set(warnings[3:]) == {""}

    strict = predict(credit_package, source, tmp_path / "strict.parquet", keys=[KEY],
                     strict=True)  # mlstrata predict --strict
    assert (strict.rows_scored, strict.rows_rejected, strict.rows_warned) == (197, 3, 0)
    rejects = pacsv.read_csv(strict.rejects).to_pylist()
    assert [r["region"] for r in rejects] == ["atlantis"] * 3
    assert all(r["reject_reason"].startswith("field 'region': 'atlantis' is not an allowed")
               for r in rejects)


def test_rejects_file_holds_the_rows_as_given_and_why(credit_package: Path,
                                                      tmp_path: Path) -> None:
    progress: list[int] = []
    report = predict(credit_package, raw_csv(credit_package), tmp_path / "scores.csv",
                     keys=[KEY], batch_rows=500, progress=progress.append)
    assert progress == [500, 1000, 1500]
    assert _files(tmp_path) == ["scores.csv", "scores.rejects.csv"]
    options = pacsv.ConvertOptions(strings_can_be_null=True,
                                   column_types={"postal_code": pa.string()})
    rejects = pacsv.read_csv(tmp_path / "scores.rejects.csv", convert_options=options)
    scored = pacsv.read_csv(tmp_path / "scores.csv")
    assert report.rows_rejected == rejects.num_rows > 0
    assert report.rows_scored == scored.num_rows == 1500 - rejects.num_rows
    assert rejects.column_names[-1] == "reject_reason"
    assert "email" in rejects.column_names
    reasons = rejects.column("reject_reason").to_pylist()
    assert all(r.startswith("field '") for r in reasons)
    assert any("required (null or missing is not allowed)" in r for r in reasons)
    assert report.to_dict()["rejects"] == str(tmp_path / "scores.rejects.csv")
    assert report.rows_per_second > 0


def test_sqlite_output_table_is_replaced(credit_package: Path, valid_csv: Path,
                                         tmp_path: Path) -> None:
    db = tmp_path / "scores.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE daily (old INTEGER)")
    con.close()
    report = predict(credit_package, valid_csv, f"sqlite:///{db}?table=daily", keys=[KEY])
    with sqlite3.connect(db) as con:
        columns = [row[1] for row in con.execute("PRAGMA table_info(daily)")]
        count = con.execute("SELECT count(*) FROM daily").fetchone()
    con.close()
    assert columns[:3] == [KEY, "prediction", "probability_0"]
    assert count == (200,)
    assert report.output == f"{db} table daily"


@pytest.mark.postgres
def test_postgres_in_and_out(credit_package: Path, valid_csv: Path,
                             postgres: PostgresServer, tmp_path: Path) -> None:
    predict(credit_package, valid_csv, tmp_path / "local.parquet", keys=[KEY])
    source = pacsv.read_csv(valid_csv, convert_options=pacsv.ConvertOptions(
        column_types={KEY: pa.string(), "application_date": pa.date32()}))
    with psycopg.connect(postgres.url) as pg:
        pg.execute("DROP TABLE IF EXISTS applications")
        pg.execute("CREATE TABLE applications (" + ", ".join(
            f"{name} {_pg_type(source.schema.field(name).type)}"
            for name in source.column_names) + ")")
        with pg.cursor().copy(f"COPY applications ({', '.join(source.column_names)}) "
                              "FROM STDIN") as copy:
            for row in zip(*(c.to_pylist() for c in source.columns), strict=True):
                copy.write_row(row)
    report = predict(credit_package, postgres.url, postgres.url, keys=[KEY],
                     table="applications", output_table="scores", batch_rows=70,
                     rejects_path=tmp_path / "r.csv")
    assert report.rows_scored == 200
    with psycopg.connect(postgres.url) as pg:
        rows = pg.execute(f"SELECT {KEY}, probability_1 FROM scores ORDER BY {KEY}").fetchall()
    local = pq.read_table(tmp_path / "local.parquet").sort_by(KEY)
    assert [r[0] for r in rows] == local.column(KEY).to_pylist()
    assert [r[1] for r in rows] == local.column("probability_1").to_pylist()


def _pg_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE PRECISION"
    return "DATE" if pa.types.is_date(kind) else "TEXT"


def test_a_failure_mid_run_leaves_no_output(credit_package: Path, valid_csv: Path,
                                            tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text(valid_csv.read_text() + "A9,1,2,3\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.parquet").write_bytes(b"previous run")
    with pytest.raises(SourceError, match="broken.csv"):
        predict(credit_package, broken, out / "scores.parquet", keys=[KEY], batch_rows=50)
    with pytest.raises(SourceError, match="broken.csv"):
        predict(credit_package, broken, out / "keep.parquet", keys=[KEY], batch_rows=50)
    assert _files(out) == ["keep.parquet"]
    assert (out / "keep.parquet").read_bytes() == b"previous run"


def test_fail_on_invalid_names_the_row_and_writes_nothing(credit_package: Path,
                                                          tmp_path: Path) -> None:
    db = tmp_path / "scores.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE daily (old INTEGER)")
        con.execute("INSERT INTO daily VALUES (7)")
    con.close()
    with pytest.raises(InvalidRowsError, match=r"^invalid input: row \d+, field"):
        predict(credit_package, raw_csv(credit_package), f"sqlite:///{db}?table=daily",
                on_invalid="fail", batch_rows=5)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT * FROM daily").fetchall() == [(7,)]
    con.close()
    assert _files(tmp_path) == ["scores.db"]


def test_raw_rows_are_cleaned_like_the_training_data(credit_package: Path,
                                                     tmp_path: Path) -> None:
    ws = Workspace.find(credit_package.parent.parent)
    report = predict(credit_package, raw_csv(credit_package), tmp_path / "s.parquet",
                     keys=[KEY], recipe="replay", workspace=ws, batch_rows=400)
    plain = predict(credit_package, raw_csv(credit_package), tmp_path / "p.parquet", keys=[KEY])
    assert report.recipe_steps[0].startswith("filter")
    assert report.rows_scored > plain.rows_scored
    rejects = pacsv.read_csv(tmp_path / "s.rejects.csv", convert_options=pacsv.ConvertOptions(
        column_types={"postal_code": pa.string()}))
    by_reason = rejects.column("reject_reason").to_pylist()
    assert FILTER_REASON in by_reason
    for code, reason in zip(rejects.column("postal_code").to_pylist(), by_reason, strict=True):
        if reason == FILTER_REASON:
            assert code is None or len(code) != 5 or not code.isdigit()
    assert report.rows_in == report.rows_scored + report.rows_rejected == 1500


def test_cleaning_needs_the_workspace(credit_package: Path, valid_csv: Path,
                                      tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs the workspace that trained the model"):
        predict(credit_package, valid_csv, tmp_path / "s.parquet", recipe="replay")
    no_age = tmp_path / "no_age.csv"
    table = pacsv.read_csv(valid_csv)
    pacsv.write_csv(table.drop_columns(["age"]), no_age)
    with pytest.raises(DataError, match="no column 'age' that the model needs; if the training"):
        predict(credit_package, no_age, tmp_path / "s.parquet")
    ws = Workspace.find(credit_package.parent.parent)
    with pytest.raises(DataError, match=r"no column 'age' .* \(and no cleaning recipe derives"):
        predict(credit_package, no_age, tmp_path / "s.parquet", workspace=ws)
    assert _files(tmp_path) == ["no_age.csv"]


@pytest.mark.parametrize(("output", "message"), [
    ("scores.txt", "cannot tell the output format from '.txt'"),
    ("sqlite:///x.db", "a database output needs a table; add ?table=NAME"),
    ("valid.csv", "is the input; write the predictions to another file"),
])
def test_bad_outputs_are_refused_before_reading(credit_package: Path, valid_csv: Path,
                                                output: str, message: str) -> None:
    target = output if "://" in output else str(valid_csv.parent / output)
    with pytest.raises(SourceError, match=re.escape(message)):
        predict(credit_package, valid_csv, target)


def test_report_renders(credit_package: Path, valid_csv: Path, tmp_path: Path) -> None:
    report = predict(credit_package, valid_csv, tmp_path / "s.parquet")
    assert isinstance(report, PredictReport)
    html = report.to_html()
    assert "credit.model@1" in html and report.run_id in html
    assert report.to_dict()["rows_scored"] == 200


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "sqlite"])
def test_every_input_format_gives_the_same_predictions(credit_package: Path, valid_csv: Path,
                                                       tmp_path: Path, fmt: str) -> None:
    table = pacsv.read_csv(valid_csv, convert_options=pacsv.ConvertOptions(
        column_types={KEY: pa.string(), "application_date": pa.string()}))
    source = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        source.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))
    elif fmt == "parquet":
        pq.write_table(table, source)
    else:
        with sqlite3.connect(source) as con:
            con.execute(f"CREATE TABLE t ({', '.join(table.column_names)})")
            con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * table.num_columns)})",
                            zip(*(c.to_pylist() for c in table.columns), strict=True))
        con.close()
    predict(credit_package, valid_csv, tmp_path / "from_csv.parquet", keys=[KEY])
    report = predict(credit_package, source, tmp_path / "out.parquet", keys=[KEY], batch_rows=90)
    assert report.rows_scored == 200
    expected = pq.read_table(tmp_path / "from_csv.parquet").drop_columns(["run_id"])
    assert pq.read_table(tmp_path / "out.parquet").drop_columns(["run_id"]).equals(expected)


def test_a_header_only_input_scores_nothing_and_says_so(credit_package: Path,
                                                        tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text(raw_csv(credit_package).read_text().splitlines()[0] + "\n")
    with pytest.raises(SourceError, match="empty.csv has no data rows; nothing was scored"):
        predict(credit_package, source, tmp_path / "s.parquet")
    assert _files(tmp_path) == ["empty.csv"]
