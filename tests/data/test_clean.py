"""Cleaning a dataset version: train-only fitting, stored recipe, new version and its lineage."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from mlstrata.data.clean import clean_dataset
from mlstrata.data.split import split_dataset
from mlstrata.errors import RecipeError
from mlstrata.workspace import Artifact, Workspace
from tests._factories import make_dataset

# 20 rows; v is missing on every 4th row; row 19 (the last) carries an extreme value.
DATA = """SELECT range AS x,
    CASE WHEN range % 4 = 0 THEN NULL WHEN range = 19 THEN 1e6 ELSE range * 1.0 END AS v,
    range % 2 AS y
FROM range(20)"""
RECIPE = """steps:
  - impute: {columns: [v], strategy: mean}
  - rename: {from: y, to: label}
  - filter: {sql: "x < 18 OR x = 19"}
"""


def _rows(ws: Workspace, artifact: Artifact) -> list[tuple[object, ...]]:
    path = ws.store / artifact.relpath
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "tidy.yaml"
    path.write_text(RECIPE)
    return path


def test_clean_writes_a_new_version_with_lineage(workspace: Workspace, recipe_file: Path) -> None:
    source = make_dataset(workspace, DATA, target="y")
    output, recipe, report = clean_dataset(workspace, "toy", recipe_file)
    assert (output.name, output.version, output.kind) == ("toy", 2, "dataset")
    assert (recipe.kind, recipe.name) == ("recipe", "tidy")
    assert {role: a.id for role, a in workspace.parents(output.id)} == {
        "input": source.id, "recipe": recipe.id}
    assert output.meta["target"] == "label" and output.meta["rows"] == 19
    assert [c["name"] for c in output.meta["columns"]] == ["x", "v", "label"]
    assert [(s.rows_in, s.rows_out) for s in report.steps] == [(20, 20), (20, 20), (20, 19)]
    assert report.to_dict()["output"] == "toy@2" and "Steps" in report.to_html()


def test_statistics_are_fitted_on_the_split_train_rows_only(
    workspace: Workspace, recipe_file: Path
) -> None:
    make_dataset(workspace, DATA, target="y")
    split_dataset(workspace, "toy", strategy="time", fraction=0.1, target="y", time="x")
    output, recipe, report = clean_dataset(workspace, "toy", recipe_file)
    # train = rows 0..17: the observed v are 1,2,3,5,6,7,9,10,11,13,14,15,17 (mean 9.46...)
    train_mean = sum([1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17]) / 13
    assert report.fitted_rows == 18 and report.refitted
    assert _rows(workspace, output)[0] == (0, pytest.approx(train_mean), 0)
    assert recipe.meta["fitted_rows"] == 18


def test_stored_recipe_cleans_a_new_batch_identically_without_refitting(
    workspace: Workspace, recipe_file: Path
) -> None:
    make_dataset(workspace, DATA, target="y")
    first, recipe, _ = clean_dataset(workspace, "toy", recipe_file)
    make_dataset(workspace, "SELECT * FROM (VALUES (5, NULL, 1), (19, 2.0, 0)) t(x, v, y)",
                 name="batch", target="y")
    cleaned, same_recipe, report = clean_dataset(workspace, "batch", recipe.ref)
    assert same_recipe.id == recipe.id and not report.refitted and report.fitted_rows is None
    fill = _rows(workspace, first)[0][1]
    assert _rows(workspace, cleaned) == [(5, fill, 1), (19, 2.0, 0)]
    again, _, _ = clean_dataset(workspace, "batch@1", workspace.store / recipe.relpath)
    assert again.id == cleaned.id


def test_a_recipe_that_drops_the_target_writes_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    make_dataset(workspace, DATA, target="y")
    path = tmp_path / "bad.yaml"
    path.write_text("steps:\n  - drop: {columns: [y]}\n")
    before = workspace.artifacts()
    with pytest.raises(RecipeError, match="removes the target column 'y'"):
        clean_dataset(workspace, "toy", path)
    assert workspace.artifacts() == before


def test_unknown_recipe_ref_is_a_one_line_error(workspace: Workspace) -> None:
    make_dataset(workspace, DATA)
    with pytest.raises(RecipeError, match="recipe 'nope' is neither a file nor a stored recipe"):
        clean_dataset(workspace, "toy", "nope")


def test_fitted_recipes_since_ingest_walks_back_to_the_ingested_version(
        workspace: Workspace, tmp_path: Path) -> None:
    from mlstrata.data.clean import fitted_recipes_since_ingest

    raw = make_dataset(workspace, "SELECT range AS id, range % 7 AS x FROM range(50)", "walk")
    first = tmp_path / "first.yaml"
    first.write_text("steps:\n  - filter: {sql: \"x > 0\"}\n")
    second = tmp_path / "second.yaml"
    second.write_text("steps:\n  - derive: {name: y, sql: \"x * 2\"}\n")
    clean_dataset(workspace, "walk", first)
    cleaned = clean_dataset(workspace, "walk", second)[0]
    ingested, recipes = fitted_recipes_since_ingest(workspace, cleaned)
    assert ingested.id == raw.id
    assert [fitted.steps[0].step.describe().split()[0] for _, fitted in recipes] == [
        "filter", "derive"]
    assert fitted_recipes_since_ingest(workspace, raw) == (raw, [])
