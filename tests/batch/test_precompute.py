"""Precompute into real SQLite and PostgreSQL: load, atomic replacement, crashes, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from mlstrata.batch.precompute import precompute, store_predictions
from mlstrata.batch.scoring import InvalidRowsError, ScoredBatch
from mlstrata.errors import DataError
from mlstrata.runtime.model import load
from mlstrata.serve.precomputed import (
    PrecomputedError,
    connect,
    lookup,
    open_precomputed,
    parse_db_url,
    table_names,
)
from mlstrata.workspace import Workspace


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh schema of the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'predictions.db'}"
        return
    base = request.getfixturevalue("postgres").url
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    yield f"{base}?options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"DROP SCHEMA {schema} CASCADE")


def _batch(keys: list[Any], prediction: list[int], p1: list[float],
           rejected: int = 0) -> ScoredBatch:
    scored = pa.table({"id": keys, "prediction": pa.array(prediction, pa.int64()),
                       "probability_0": [1 - p for p in p1], "probability_1": p1})
    rejects = pa.table({"id": ["bad"] * rejected,
                        "reject_reason": ["field 'age': expected a number"] * rejected})
    return ScoredBatch(scored, rejects, scored.num_rows + rejected)


def _store(db_url: str, batches: Any, **kwargs: Any) -> Any:
    return store_predictions(batches, key="id", db_url=db_url, model="credit.model",
                             model_version=kwargs.pop("model_version", 1), **kwargs)


def _first_run(db_url: str) -> None:
    _store(db_url, [_batch(["a", "b"], [0, 1], [0.2, 0.9]), _batch(["c"], [1], [0.7])])


def _tables(db_url: str) -> list[str]:
    db = parse_db_url(db_url)
    con = connect(db, read_only=False)
    try:
        return sorted(table_names(con, db))
    finally:
        con.close()


def _count(db_url: str, table: str = "predictions") -> int:
    db = parse_db_url(db_url)
    con = connect(db, read_only=False)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


def test_load_then_lookup_gives_prediction_probabilities_model_and_age(db_url: str) -> None:
    report = _store(db_url, [_batch(["a", "b"], [0, 1], [0.2, 0.9]), _batch(["c"], [1], [0.7],
                                                                              rejected=2)],
                    source="loans.csv")
    assert (report.rows, report.rejects, report.replaced_previous) == (3, 2, False)
    assert report.reject_examples == ["field 'age': expected a number"]
    assert report.rows_per_second > 0
    store = open_precomputed(db_url)
    try:
        found = store.lookup("b")
        assert found is not None
        assert found["prediction"] == 1
        assert found["probabilities"] == pytest.approx({"0": 0.1, "1": 0.9})
        assert (found["model"], found["model_version"], found["run_id"]) == (
            "credit.model", 1, report.run_id)
        assert found["computed_at"] == report.computed_at
        assert 0 <= found["age_seconds"] < 60
        assert store.lookup("zzz") is None
        run = store.describe()
        assert run is not None
        assert (run["row_count"], run["reject_count"], run["key_column"], run["source"]) == (
            3, 2, "id", "loans.csv")
    finally:
        store.close()
    assert _tables(db_url) == ["mlstrata_precompute_runs", "predictions"]
    json.dumps(report.to_dict())
    assert "precompute" in report.to_html().lower()


def test_second_run_replaces_the_table_and_readers_see_old_then_new(db_url: str) -> None:
    _first_run(db_url)
    reader = open_precomputed(db_url)
    seen_during: list[tuple[Any, int]] = []

    def second_run() -> Iterator[ScoredBatch]:
        yield _batch(["a", "x"], [1, 0], [0.6, 0.1])
        found = reader.lookup("a")
        seen_during.append((found and found["prediction"], _count(db_url)))
        yield _batch(["y"], [0], [0.3])

    try:
        report = _store(db_url, second_run(), model_version=2)
        assert seen_during == [(0, 3)]
        after = reader.lookup("a")
        assert after is not None
        assert (after["prediction"], after["model_version"]) == (1, 2)
        assert reader.lookup("b") is None
    finally:
        reader.close()
    assert report.replaced_previous
    assert _count(db_url) == 3
    assert _tables(db_url) == ["mlstrata_precompute_runs", "predictions"]


def test_a_crash_mid_run_keeps_the_previous_table_complete(db_url: str) -> None:
    _first_run(db_url)

    def crashing() -> Iterator[ScoredBatch]:
        yield _batch(["a", "x"], [1, 0], [0.6, 0.1])
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        _store(db_url, crashing(), model_version=2)
    assert _count(db_url) == 3
    found = lookup(db_url, "a")
    assert found is not None
    assert (found["prediction"], found["model_version"]) == (0, 1)
    assert _tables(db_url) == ["mlstrata_precompute_runs", "predictions"]


def test_leftover_staging_tables_are_dropped_by_the_next_run(db_url: str) -> None:
    _first_run(db_url)
    db = parse_db_url(db_url)
    con = connect(db, read_only=False)
    con.execute("CREATE TABLE predictions__staging_dead0 (key TEXT)")
    con.close()
    report = _store(db_url, [_batch(["a"], [1], [0.8])])
    assert report.cleaned_staging == ["predictions__staging_dead0"]
    assert _tables(db_url) == ["mlstrata_precompute_runs", "predictions"]


def test_duplicate_keys_fail_naming_the_key_and_keep_the_old_table(db_url: str) -> None:
    _first_run(db_url)
    batches = [_batch(["k1", "k2"], [0, 1], [0.1, 0.9]), _batch(["k2"], [1], [0.8])]
    with pytest.raises(DataError, match=r"key 'k2' appears 2 times in column 'id' of in\.csv; "
                                        "precompute stores one prediction per key"):
        _store(db_url, batches, source="in.csv")
    assert _count(db_url) == 3
    assert _tables(db_url) == ["mlstrata_precompute_runs", "predictions"]


def test_integer_keys_are_stored_as_text_and_missing_keys_are_rejected(db_url: str) -> None:
    report = _store(db_url, [_batch([17, None, 3], [1, 0, 0], [0.9, 0.2, 0.1])])
    assert (report.rows, report.rejects) == (2, 1)
    assert report.reject_examples == ["key column 'id' is missing"]
    found = lookup(db_url, "17")
    assert found is not None and found["key"] == "17"


def test_a_table_precompute_did_not_make_is_never_replaced(db_url: str) -> None:
    db = parse_db_url(db_url)
    con = connect(db, read_only=False)
    con.execute("CREATE TABLE customers (id TEXT)")
    con.close()
    with pytest.raises(PrecomputedError, match="table 'customers' in .* was not made by "
                                               "mlstrata precompute; choose another --table"):
        _store(db_url, [_batch(["a"], [1], [0.8])], table="customers")
    assert "customers" in _tables(db_url)


def test_all_rows_rejected_leaves_the_table_as_it_was(db_url: str) -> None:
    _first_run(db_url)
    empty = _batch([], [], [], rejected=2)
    with pytest.raises(DataError, match="no prediction to store: every input row was rejected "
                                        r"\(2\); table 'predictions' was left as it was"):
        _store(db_url, [empty])
    assert _count(db_url) == 3


@pytest.mark.parametrize(("change", "message"), [
    ({"table": "drop table;"}, "invalid table name 'drop table;'"),
    ({"db_url": "mysql://h/db"}, "unsupported database URL 'mysql://h/db'"),
    ({"db_url": "sqlite:///no/such/folder/p.db"}, "folder no/such/folder does not exist"),
])
def test_bad_table_or_url_fails_in_one_line(tmp_path: Path, change: dict[str, str],
                                            message: str) -> None:
    arguments = {"db_url": str(tmp_path / "p.db"), **change}
    with pytest.raises(PrecomputedError, match=message) as error:
        _store(arguments.pop("db_url"), [_batch(["a"], [1], [0.5])], **arguments)
    assert "\n" not in str(error.value)


def test_float_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="key column 'id' holds double values; a key must be "
                                        "text, an integer or a date"):
        _store(str(tmp_path / "p.db"), [_batch([1.5], [1], [0.5])])
    assert _tables(str(tmp_path / "p.db")) == ["mlstrata_precompute_runs"]


def test_unreachable_postgres_fails_naming_the_server() -> None:
    with pytest.raises(PrecomputedError, match=r"cannot connect to postgresql://u:\*\*\*@"
                                               r"127\.0\.0\.1:1/db"):
        _store("postgresql://u:secret@127.0.0.1:1/db", [])


# -- the real model ------------------------------------------------------------------------------


def test_precompute_scores_the_credit_file_like_the_model(credit_package: Path,
                                                          db_url: str) -> None:
    source = credit_package.parent.parent / "data" / "credit.csv"
    report = precompute(credit_package, str(source), key="application_id", db_url=db_url,
                        batch_rows=400)
    assert report.rows + report.rejects == 1500
    assert report.rows > 1000
    assert (report.model, report.model_version) == ("credit.model", 1)
    model = load(credit_package)
    record = _first_valid_record(source, model)
    lists = {name: [value] for name, value in record[1].items()}
    expected = model.predict_columns(lists, text_source=True).to_records()[0]
    found = lookup(db_url, record[0])
    assert found is not None
    assert found["prediction"] == expected["prediction"]
    assert found["probabilities"]["1"] == pytest.approx(expected["probabilities"]["1"],
                                                        abs=1e-9)


def test_raw_rows_are_cleaned_like_the_training_data_first(credit_package: Path,
                                                           tmp_path: Path) -> None:
    source = credit_package.parent.parent / "data" / "credit.csv"
    ws = Workspace.find(credit_package.parent.parent)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    plain = precompute(credit_package, str(source), key="application_id", db_url=db_url)
    cleaned = precompute(credit_package, str(source), key="application_id", db_url=db_url,
                         recipe="replay", workspace=ws, batch_rows=400)
    assert cleaned.rows + cleaned.rejects == 1500
    assert cleaned.rows > plain.rows  # imputed rows are scored instead of rejected
    assert any(reason.startswith("recipe filter: regexp_full_match(postal_code")
               for reason in cleaned.reject_examples)


def test_precompute_names_a_missing_key_column(credit_package: Path, tmp_path: Path) -> None:
    source = credit_package.parent.parent / "data" / "credit.csv"
    with pytest.raises(DataError, match="key column 'customer' not found in .*credit.csv; its "
                                        "columns are application_id"):
        precompute(credit_package, str(source), key="customer", db_url=str(tmp_path / "p.db"))
    assert not (tmp_path / "p.db").exists()  # refused before the database was touched


def test_a_row_the_model_answers_nan_for_is_a_reject_with_the_reason(
        uncontracted_packages: tuple[Path, Path], tmp_path: Path) -> None:
    from ..runtime.test_outputs import RECORD

    source = tmp_path / "in.csv"
    rows = [{"id": "a", **RECORD}, {"id": "b", **RECORD, "debt_to_income": 1e300},
            {"id": "c", **RECORD}]
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    report = precompute(uncontracted_packages[1], str(source), key="id", db_url=db_url)
    assert (report.rows, report.rejects) == (2, 1)
    assert report.reject_examples[0].startswith(
        "field 'debt_to_income': 1e+300 is above the training range (")
    assert lookup(db_url, "b") is None
    found = lookup(db_url, "a")
    assert found is not None and None not in found["probabilities"].values()
    with pytest.raises(InvalidRowsError, match="row 2, field 'debt_to_income'"):
        precompute(uncontracted_packages[1], str(source), key="id", db_url=db_url,
                   on_invalid="fail")


def _first_valid_record(source: Path, model: Any) -> tuple[str, dict[str, Any]]:
    import csv

    with source.open() as handle:
        for row in csv.DictReader(handle):
            record = {name: row[name] for name in model.signature.input_names}
            if all(record.values()):
                return row["application_id"], record
    raise AssertionError("no complete row")


# -- a real crash (SIGKILL) ----------------------------------------------------------------------

_SLOW_RUN = """
import sys, time
import pyarrow as pa
from mlstrata.batch.precompute import store_predictions
from mlstrata.batch.scoring import ScoredBatch

def batches():
    for i in range(1000):
        table = pa.table({"id": [f"n{i}"], "prediction": [1], "probability_1": [0.5]})
        yield ScoredBatch(table, pa.table({}), 1)
        time.sleep(0.05)

store_predictions(batches(), key="id", db_url=sys.argv[1], model="m", model_version=2)
"""


def test_a_killed_run_leaves_the_old_table_and_its_staging_is_cleaned(tmp_path: Path) -> None:
    db_url = str(tmp_path / "p.db")
    _first_run(db_url)
    child = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, db_url])
    try:
        deadline = time.monotonic() + 30
        while not any("__staging_" in name for name in _tables(db_url)):
            assert time.monotonic() < deadline, "the child never started loading"
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert _count(db_url) == 3
    found = lookup(db_url, "a")
    assert found is not None and found["model_version"] == 1
    report = _store(db_url, [_batch(["z"], [1], [0.9])])
    assert len(report.cleaned_staging) == 1
    assert _tables(db_url) == ["mlstrata_precompute_runs", "predictions"]


def test_rows_with_warnings_are_stored_with_them_and_counted(
        uncontracted_packages: tuple[Path, Path], tmp_path: Path) -> None:
    """The training ranges of a package without contract warn: a row past them is stored with
    its ``warnings`` text, which the lookup returns; the report counts such rows."""
    from ..runtime.test_outputs import RECORD

    bounded = uncontracted_packages[0]
    signature = json.loads((bounded / "signature.json").read_text())
    age_max = next(i for i in signature["inputs"] if i["name"] == "age")["max"]
    source = tmp_path / "in.csv"
    rows = [{"id": "a", **RECORD}, {"id": "b", **RECORD, "age": age_max + 1}]
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    report = precompute(bounded, str(source), key="id", db_url=db_url)
    assert (report.rows, report.rejects, report.warned) == (2, 0, 1)
    assert report.to_dict()["warned"] == 1
    warned = lookup(db_url, "b")
    assert warned is not None
    assert warned["warnings"] == (f"field 'age' (max): {age_max + 1} is above the maximum "
                                  f"{age_max}")
    clean = lookup(db_url, "a")
    assert clean is not None and "warnings" not in clean

    strict = precompute(bounded, str(source), key="id", db_url=db_url, table="strict",
                        strict=True)  # mlstrata precompute --strict
    assert (strict.rows, strict.rejects, strict.warned) == (1, 1, 0)
    assert lookup(db_url, "b", "strict") is None and lookup(db_url, "a", "strict") is not None
