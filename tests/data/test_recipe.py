"""Recipe steps: exact outputs, fitting on training rows only, frozen re-application, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from mlstrata.data.recipe import (
    FittedRecipe,
    Impute,
    Recipe,
    apply_fitted,
    load_recipe,
    parse_recipe,
)
from mlstrata.errors import RecipeError

TINY = """SELECT * FROM (VALUES
    (1, 'a', 10.0, '3', DATE '2024-01-01'),
    (2, NULL, NULL, '4', NULL),
    (2, NULL, NULL, '4', NULL),
    (3, 'b', 40.0, '5', DATE '2024-01-03'),
    (4, 'b', 1000.0, '6', DATE '2024-01-03')
) t(id, c, v, s, d)"""


def _run(steps: list[dict[str, Any]], sql: str = TINY) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    recipe = parse_recipe({"steps": steps}, "r.yaml")
    assert isinstance(recipe, Recipe)
    return con.execute(apply_fitted(con, recipe.fit(con, sql), sql)).fetchall()


def _column(rows: list[tuple[Any, ...]], index: int) -> list[Any]:
    return [row[index] for row in rows]


def test_cast() -> None:
    rows = _run([{"cast": {"column": "s", "to": "integer"}}])
    assert _column(rows, 3) == [3, 4, 4, 5, 6]


def test_rename_and_drop() -> None:
    con = duckdb.connect()
    recipe = parse_recipe({"steps": [{"rename": {"from": "id", "to": "key"}},
                                     {"drop": {"columns": ["s", "d"]}}]})
    assert isinstance(recipe, Recipe)
    assert con.sql(apply_fitted(con, recipe.fit(con, TINY), TINY)).columns == ["key", "c", "v"]


def test_derive_adds_and_replaces() -> None:
    rows = _run([{"derive": {"name": "double", "sql": "id * 2"}},
                 {"derive": {"name": "id", "sql": "id + 100"}}])
    assert _column(rows, 0) == [101, 102, 102, 103, 104]
    assert _column(rows, 5) == [2, 4, 4, 6, 8]


@pytest.mark.parametrize(
    ("strategy", "value", "expected"),
    [("mean", None, 350.0), ("median", None, 40.0), ("constant", -1, -1.0)],
)
def test_impute_numbers(strategy: str, value: Any, expected: float) -> None:
    params = {"columns": ["v"], "strategy": strategy, **({"value": value} if value else {})}
    assert _column(_run([{"impute": params}]), 2) == [10.0, expected, expected, 40.0, 1000.0]


def test_impute_mode_breaks_ties_by_value_and_keeps_the_type() -> None:
    rows = _run([{"impute": {"columns": ["c", "d"], "strategy": "mode"}}])
    assert _column(rows, 1) == ["a", "b", "b", "b", "b"]
    assert str(_column(rows, 4)[1]) == "2024-01-03"


def test_outliers_iqr_clip() -> None:
    # v = 10, 40, 1000: q1 = 25, q3 = 520, k = 0.5: fences 25 - 247.5 and 520 + 247.5
    rows = _run([{"outliers": {"columns": ["v"], "k": 0.5}}])
    assert _column(rows, 2) == [10.0, None, None, 40.0, 767.5]


def test_outliers_zscore_drop_keeps_missing_values() -> None:
    rows = _run([{"outliers": {"columns": ["id"], "method": "zscore", "threshold": 1.0,
                               "action": "drop"}}])
    assert _column(rows, 0) == [2, 2, 3]


def test_outliers_bounds_clip_keeps_integer_type() -> None:
    rows = _run([{"outliers": {"columns": ["id"], "method": "bounds", "lower": 2, "upper": 3}}])
    assert _column(rows, 0) == [2, 2, 2, 3, 3]
    assert all(isinstance(value, int) for value in _column(rows, 0))


def test_dedupe_keeps_first_rows_in_order() -> None:
    assert _column(_run([{"dedupe": None}]), 0) == [1, 2, 3, 4]
    assert _column(_run([{"dedupe": {"columns": ["c"]}}]), 0) == [1, 2, 3]


def test_filter() -> None:
    assert _column(_run([{"filter": {"sql": "v < 100 OR v IS NULL"}}]), 0) == [1, 2, 2, 3]


def test_statistics_come_from_the_training_rows_only() -> None:
    con = duckdb.connect()
    train = "SELECT * FROM (VALUES (1.0), (3.0), (NULL)) t(x)"
    everything = train.replace("(NULL)", "(NULL), (1000000.0)")
    fitted = Impute(columns=["x"], strategy="mean").fit(con, train)
    assert fitted.state.model_dump() == {"values": {"x": {"value": 2.0, "type": "DOUBLE"}}}
    rows = con.execute(fitted.apply_sql(everything)).fetchall()
    assert [r[0] for r in rows] == [1.0, 3.0, 2.0, 1000000.0]


def test_fitted_recipe_round_trips_and_reapplies_without_refitting(tmp_path: Path) -> None:
    con = duckdb.connect()
    recipe = parse_recipe({"steps": [{"impute": {"columns": ["v"], "strategy": "mean"}},
                                     {"outliers": {"columns": ["v"], "method": "zscore"}}]})
    assert isinstance(recipe, Recipe)
    fitted = recipe.fit(con, TINY)
    path = tmp_path / "fitted.yaml"
    path.write_text(fitted.to_yaml())
    loaded = load_recipe(path)
    assert isinstance(loaded, FittedRecipe) and loaded.to_yaml() == fitted.to_yaml()
    assert yaml.safe_load(path.read_text())["steps"][0]["fitted"]["values"]["v"]["value"] == 350.0
    batch = "SELECT * FROM (VALUES (NULL, 5.0), (9, 1.0)) t(id, v)"
    first = con.execute(apply_fitted(con, loaded, batch)).fetchall()
    assert first == con.execute(apply_fitted(con, fitted, batch)).fetchall()
    assert first == [(None, 5.0), (9, 1.0)]
    assert con.execute(apply_fitted(con, loaded, "SELECT NULL::DOUBLE AS v")).fetchall() == [
        (350.0,)]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"imput": {"columns": ["v"]}}],
         "r.yaml: step 1 (imput): unknown step kind (did you mean 'impute'?)"),
        ([{"drop": {"columns": ["id"]}}, {"impute": {"columns": ["vv"], "strategy": "mode"}}],
         "r.yaml: step 2 (impute): column 'vv' does not exist (did you mean 'v'?)"),
        ([{"cast": {"column": "c", "to": "integer"}}],
         "r.yaml: step 1 (cast): column 'c' has values that are not integer, e.g. 'a'"),
        ([{"derive": {"name": "w", "sql": "v +"}}],
         "r.yaml: step 1 (derive): sql 'v +' does not run: Parser Error"),
        ([{"filter": {"sql": "vv > 1"}}],
         "r.yaml: step 1 (filter): sql 'vv > 1' does not run: Binder Error"),
        ([{"impute": {"columns": ["c"], "strategy": "mean"}}],
         "r.yaml: step 1 (impute): column 'c' is text, but strategy 'mean' needs numbers"),
        ([{"impute": {"columns": ["v"], "strategy": "avg"}}],
         "r.yaml: step 1 (impute): key 'strategy'"),
        ([{"outliers": {"columns": ["v"], "method": "zscore", "k": 2}}],
         "'k' does not apply to method 'zscore'"),
        ([{"rename": {"from": "id", "to": "c"}}],
         "r.yaml: step 1 (rename): column 'c' already exists"),
        ([], "r.yaml: 'steps' is empty"),
    ],
)
def test_recipe_errors_name_the_step_and_the_fix(steps: list[Any], message: str) -> None:
    con = duckdb.connect()
    with pytest.raises(RecipeError) as info:
        recipe = parse_recipe({"steps": steps}, "r.yaml")
        assert isinstance(recipe, Recipe)
        recipe.fit(con, TINY)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_applying_a_fitted_recipe_checks_the_new_batch() -> None:
    con = duckdb.connect()
    recipe = parse_recipe({"steps": [{"cast": {"column": "s", "to": "integer"}}]}, "r.yaml")
    assert isinstance(recipe, Recipe)
    fitted = recipe.fit(con, TINY)
    with pytest.raises(RecipeError, match=r"step 1 \(cast\): column 's' has values that are not "
                                          r"integer, e.g. 'oops'"):
        apply_fitted(con, fitted, "SELECT 'oops' AS s")
    with pytest.raises(RecipeError, match=r"step 1 \(cast\): column 's' does not exist"):
        apply_fitted(con, fitted, "SELECT 1 AS t")


def test_partly_fitted_recipe_is_refused() -> None:
    data = {"steps": [{"filter": {"sql": "true"}, "fitted": {}}, {"filter": {"sql": "true"}}]}
    with pytest.raises(RecipeError, match=r"step 2 \(filter\) has no 'fitted' statistics"):
        parse_recipe(data, "r.yaml")
