"""The synthetic credit table: same bytes per seed, types, deliberate flaws, PII, a fair target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from mlstrata.data.pii import scan_pii
from mlstrata.data.synth import CREDIT_COLUMNS, credit_batches, write_credit
from mlstrata.data.types import columns_of
from mlstrata.errors import DataError

ROWS = 5000
VALID_POSTAL = r"^(0[1-9]|[1-4][0-9]|5[0-2])[0-9]{3}$"


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_credit(tmp_path_factory.mktemp("synth") / "credit.csv", ROWS, seed=11)


@pytest.fixture(scope="module")
def con(csv_file: Path) -> duckdb.DuckDBPyConnection:
    """The CSV read back the way a reader with no hints sees it."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE credit AS SELECT * FROM read_csv('{csv_file}')")
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, suffix: str) -> None:
    first = write_credit(tmp_path / f"a{suffix}", 300, seed=1).read_bytes()
    again = write_credit(tmp_path / f"b{suffix}", 300, seed=1).read_bytes()
    other = write_credit(tmp_path / f"c{suffix}", 300, seed=2).read_bytes()
    assert first == again
    assert first != other


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_holds_the_rows_and_columns(tmp_path: Path, suffix: str) -> None:
    path = write_credit(tmp_path / f"credit{suffix}", 321, seed=3)
    relation = duckdb.sql(f"SELECT * FROM '{path}'")
    assert tuple(relation.columns) == CREDIT_COLUMNS
    assert relation.aggregate("count(*)").fetchall() == [(321,)]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_batches_are_numbered_continuously() -> None:
    batches = list(credit_batches(250, seed=5, batch_size=100))
    assert [b.num_rows for b in batches] == [100, 100, 50]
    ids = pa.Table.from_batches(batches).column("application_id").to_pylist()
    assert ids[0] == "A0000001" and ids[-1] == "A0000250" and len(set(ids)) == 250


def test_progress_reports_rows_written(tmp_path: Path) -> None:
    seen: list[int] = []
    write_credit(tmp_path / "credit.parquet", 120, seed=0, progress=seen.append)
    assert seen == [120]


def test_csv_types_are_what_ingest_should_infer(con: duckdb.DuckDBPyConnection) -> None:
    types = {c.name: c.type for c in columns_of(con.table("credit"))}
    assert types == {
        "application_id": "text", "application_date": "date", "age": "integer",
        "income": "float", "employment_years": "integer", "loan_amount": "integer",
        "term_months": "integer", "interest_rate": "float", "debt_to_income": "float",
        "num_credit_lines": "integer", "previous_defaults": "integer", "home_ownership": "text",
        "purpose": "text", "region": "text", "postal_code": "text", "email": "text",
        "phone": "text", "default": "integer",
    }


def test_target_rate(con: duckdb.DuckDBPyConnection) -> None:
    rate = _one(con, 'SELECT avg("default") FROM credit')
    assert 0.14 <= rate <= 0.21
    assert _one(con, 'SELECT count(DISTINCT "default") FROM credit') == 2


def test_missing_values_and_outliers(con: duckdb.DuckDBPyConnection) -> None:
    income_missing = _one(con, "SELECT avg((income IS NULL)::INT) FROM credit")
    assert 0.035 <= income_missing <= 0.065
    assert _one(con, "SELECT count(*) FROM credit WHERE age IS NULL") > 0
    assert _one(con, "SELECT count(*) FROM credit WHERE age > 120") > 0
    assert _one(con, "SELECT min(age) FROM credit") == 18
    skew, extreme = con.execute(
        "SELECT avg(income) / median(income), max(income) / median(income) FROM credit"
    ).fetchall()[0]
    assert skew > 1.05 and extreme > 20  # log-normal skew plus typing-error outliers
    assert _one(con, "SELECT count(*) FROM credit WHERE employment_years IS NULL") > 0


def test_categories_dates_and_terms(con: duckdb.DuckDBPyConnection) -> None:
    homes = {r[0] for r in con.execute("SELECT DISTINCT home_ownership FROM credit").fetchall()}
    assert homes == {"rent", "own", "mortgage", "other"}
    shares = dict(con.execute(
        "SELECT purpose, count(*) / sum(count(*)) OVER () FROM credit GROUP BY purpose"
    ).fetchall())
    assert len(shares) >= 8 and min(shares.values()) < 0.02  # some purposes are rare
    terms = {r[0] for r in con.execute("SELECT DISTINCT term_months FROM credit").fetchall()}
    assert terms == {12, 24, 36, 48, 60}
    first, last = con.execute("SELECT min(application_date), max(application_date) FROM credit"
                              ).fetchall()[0]
    assert str(first) >= "2021-01-01" and str(last) <= "2023-12-31"
    assert (last - first).days > 1000


def test_postal_codes_keep_leading_zeros_and_some_are_invalid(
    con: duckdb.DuckDBPyConnection,
) -> None:
    leading_zero = _one(con, "SELECT avg((postal_code LIKE '0%')::INT) FROM credit")
    assert leading_zero > 0.1
    invalid = [r[0] for r in con.execute(
        f"SELECT postal_code FROM credit WHERE NOT regexp_full_match(postal_code, '{VALID_POSTAL}')"
    ).fetchall()]
    assert 0.003 * ROWS <= len(invalid) <= 0.02 * ROWS
    assert any(len(code) == 4 and code.isdigit() for code in invalid)
    assert any(code.isalpha() for code in invalid)
    mismatched = _one(con, f"""SELECT count(*) FROM credit
        WHERE regexp_full_match(postal_code, '{VALID_POSTAL}')
          AND ((postal_code LIKE '28%') <> (region = 'madrid'))""")
    assert mismatched == 0  # region and postal code agree


def test_email_and_phone_are_found_by_the_pii_scan(con: duckdb.DuckDBPyConnection) -> None:
    findings = {f.column: f for f in scan_pii(con, "credit", columns_of(con.table("credit")))}
    assert set(findings) == {"email", "phone"}
    for name, kind in (("email", "email"), ("phone", "phone")):
        assert findings[name].kinds == (kind,) and findings[name].by_name
        assert findings[name].matches >= 0.85 * findings[name].checked


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    ranks = np.empty(score.size)
    ranks[np.argsort(score, kind="stable")] = np.arange(1, score.size + 1)
    positives = y.sum()
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * (y.size - positives)))


def _design(table: pa.Table) -> np.ndarray:
    """Median-imputed, standardised numbers plus one-hot categories: a plain analyst baseline."""
    columns = [np.ones(table.num_rows)]
    for name in ("age", "income", "employment_years", "loan_amount", "term_months",
                 "interest_rate", "debt_to_income", "num_credit_lines", "previous_defaults"):
        values = table.column(name).to_numpy(zero_copy_only=False).astype(float)
        values = np.where(np.isnan(values), np.nanmedian(values), values)
        values = np.log1p(values) if name in ("income", "loan_amount") else values
        columns.append((values - values.mean()) / values.std())
    for name in ("home_ownership", "purpose", "region"):
        values = np.asarray(table.column(name).to_pylist())
        columns.extend((values == level).astype(float) for level in np.unique(values)[1:])
    return np.column_stack(columns)


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    weights = np.zeros(x.shape[1])
    for _ in range(15):
        p = 1 / (1 + np.exp(-x @ weights))
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-3 * np.eye(x.shape[1])
        weights += np.linalg.solve(hessian, x.T @ (y - p))
    return weights


def test_target_is_learnable_but_not_trivial() -> None:
    table = pa.Table.from_batches(list(credit_batches(20_000, seed=4)))
    x, y = _design(table), table.column("default").to_numpy().astype(float)
    weights = _fit_logistic(x[:10_000], y[:10_000])
    assert 0.72 <= _auc(x[10_000:] @ weights, y[10_000:]) <= 0.88
    for name in ("interest_rate", "debt_to_income", "previous_defaults", "loan_amount"):
        single = _auc(np.nan_to_num(table.column(name).to_numpy(zero_copy_only=False)), y)
        assert 0.4 <= single <= 0.85, name  # no column gives the target away


def test_unknown_extension_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"credit\.txt: unknown extension '\.txt'; use one of "
                                        r"\.csv, \.parquet, \.jsonl"):
        write_credit(tmp_path / "credit.txt", 10, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_zero_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="rows must be at least 1, got 0"):
        write_credit(tmp_path / "credit.csv", 0, seed=0)
    assert list(tmp_path.iterdir()) == []
