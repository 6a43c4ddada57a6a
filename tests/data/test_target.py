"""Target detection and task type, on real DuckDB tables."""

from __future__ import annotations

import duckdb
import pytest

from mlstrata.data.target import (
    MAX_CLASSES,
    classify_task,
    detect_task,
    guess_target,
    resolve_target,
)
from mlstrata.data.types import ColumnInfo, columns_of
from mlstrata.errors import DataError


def _detect(sql: str, name: str):  # type: ignore[no-untyped-def]
    con = duckdb.connect()
    column = next(c for c in columns_of(con.sql(sql)) if c.name == name)
    return detect_task(con, sql, column)


def test_text_with_two_values_is_binary_with_class_balance() -> None:
    info = _detect("SELECT CASE WHEN range < 30 THEN 'yes' ELSE 'no' END AS y FROM range(100)", "y")
    assert info.task == "binary"
    assert [(c.value, c.count) for c in info.classes] == [("no", 70), ("yes", 30)]
    assert info.minority_share == pytest.approx(0.3)
    assert info.problems == ()


def test_small_integer_range_is_multiclass() -> None:
    info = _detect("SELECT range % 4 AS label FROM range(200)", "label")
    assert info.task == "multiclass"
    assert {c.value for c in info.classes} == {0, 1, 2, 3}
    assert sum(c.share for c in info.classes) == pytest.approx(1.0)


def test_continuous_float_is_regression_with_distribution() -> None:
    info = _detect("SELECT range / 7.0 AS price FROM range(500)", "price")
    assert info.task == "regression"
    assert info.classes == ()
    assert info.distribution["min"] == 0.0
    assert info.distribution["max"] == pytest.approx(499 / 7)
    assert info.distribution["mean"] == pytest.approx(249.5 / 7)


def test_booleans_and_whole_floats_with_two_values_are_binary() -> None:
    assert _detect("SELECT range % 3 = 0 AS churn FROM range(30)", "churn").task == "binary"
    assert _detect("SELECT (range % 2)::DOUBLE AS y FROM range(30)", "y").task == "binary"


def test_integers_beyond_max_classes_are_regression() -> None:
    sql = f"SELECT range % {MAX_CLASSES + 5} AS y FROM range(1000)"
    assert _detect(sql, "y").task == "regression"


def test_constant_and_missing_targets_report_problems() -> None:
    constant = _detect("SELECT 1 AS y FROM range(10)", "y")
    assert constant.task is None
    assert "single value" in constant.problems[0]
    with pytest.raises(DataError, match="target column 'y' has a single value"):
        constant.require_trainable()
    holes = _detect("SELECT CASE WHEN range < 3 THEN NULL ELSE range % 2 END AS y "
                    "FROM range(10)", "y")
    assert holes.missing == 3
    assert any("missing in 3 rows" in p for p in holes.problems)


def test_nan_in_a_float_target_counts_as_missing() -> None:
    info = _detect("SELECT CASE WHEN range = 0 THEN 'NaN'::DOUBLE ELSE range / 3.0 END AS y "
                   "FROM range(50)", "y")
    assert info.missing == 1 and info.count == 49


def test_guess_target_by_conventional_name() -> None:
    assert guess_target(["id", "Churn", "age"]) == "Churn"
    assert guess_target(["id", "age"]) is None


def test_resolve_target_prefers_the_declared_column() -> None:
    columns = [ColumnInfo("label", "text", "VARCHAR"), ColumnInfo("amount", "float", "DOUBLE")]
    assert resolve_target(columns, "amount") == (columns[1], "declared")
    assert resolve_target(columns, None) == (columns[0], "guessed")
    assert resolve_target(columns[1:], None) is None


def test_unknown_declared_target_names_close_columns() -> None:
    columns = [ColumnInfo("default_flag", "integer", "BIGINT")]
    with pytest.raises(DataError, match=r"target column 'default_flg' .*did you mean default_flag"):
        resolve_target(columns, "default_flg")


def test_dates_cannot_be_targets() -> None:
    assert classify_task("date", distinct=40, integral=False) is None
