"""The ``join`` recipe step: enrichment from another dataset version, its key check, its unmatched
report, its lineage to both inputs and its replay without refitting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from mlstrata.data.clean import clean_dataset, fitted_recipes_since_ingest
from mlstrata.data.join import bind_joins, join_recipe
from mlstrata.data.recipe import FittedRecipe, apply_fitted, parse_recipe
from mlstrata.errors import RecipeError
from mlstrata.workspace import Artifact, Workspace
from tests._factories import make_dataset

LOANS = """SELECT range AS id, CAST(1000 + range % 5 AS VARCHAR) AS zip, range * 10.0 AS amount,
    range % 2 AS y FROM range(10)"""  # zips 1000..1004; 1004 has no region
REGIONS = """SELECT zip, region, income::DOUBLE AS income FROM (VALUES ('1000', 'north', 51.5),
    ('1001', 'south', 38.0), ('1002', 'east', NULL), ('1003', 'west', 44.2),
    ('9999', 'nowhere', 1.0)) AS t(zip, region, income)"""


def _rows(ws: Workspace, artifact: Artifact) -> list[tuple[object, ...]]:
    path = ws.store / artifact.relpath
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


@pytest.fixture
def data(workspace: Workspace) -> tuple[Artifact, Artifact]:
    return (make_dataset(workspace, LOANS, name="loans", target="y"),
            make_dataset(workspace, REGIONS, name="regions"))


def test_left_join_adds_columns_reports_unmatched_and_records_lineage(
        workspace: Workspace, data: tuple[Artifact, Artifact]) -> None:
    loans, regions = data
    output, recipe, report = clean_dataset(workspace, "loans", join_recipe("regions", ["zip"]))
    rows = _rows(workspace, output)
    assert [c["name"] for c in output.meta["columns"]] == ["id", "zip", "amount", "y", "region",
                                                            "income"]
    assert rows[0] == (0, "1000", 0.0, 0, "north", 51.5)
    assert rows[4] == (4, "1004", 40.0, 0, None, None)  # no region for 1004: kept, missing
    assert [r[0] for r in rows] == list(range(10))  # input order
    assert report.steps[0].unmatched == 2 and report.steps[0].rows_out == 10
    assert {role: a.id for role, a in workspace.parents(output.id)} == {
        "input": loans.id, "recipe": recipe.id, "joined": regions.id}


def test_inner_join_keeps_matched_rows(workspace: Workspace,
                                       data: tuple[Artifact, Artifact]) -> None:
    output, _, report = clean_dataset(workspace, "loans", join_recipe("regions", "zip", "inner"))
    assert output.meta["rows"] == 8 and (report.steps[0].rows_in, report.steps[0].rows_out) == (
        10, 8)


BATCH = ("SELECT * FROM (VALUES (7, '1003', 5.0::DOUBLE, 1), (8, '4242', 1.0::DOUBLE, 0)) "
         "t(id, zip, amount, y)")
BATCH_JOINED = [(7, "1003", 5.0, 1, "west", 44.2), (8, "4242", 1.0, 0, None, None)]


def _stored(ws: Workspace, recipe: Artifact) -> FittedRecipe:
    fitted = parse_recipe(yaml.safe_load((ws.store / recipe.relpath).read_text()))
    assert isinstance(fitted, FittedRecipe)
    return fitted


def test_fitted_join_replays_on_new_rows(workspace: Workspace,
                                         data: tuple[Artifact, Artifact]) -> None:
    _, recipe, _ = clean_dataset(workspace, "loans", join_recipe("regions", ["zip"]))
    fitted, con = _stored(workspace, recipe), duckdb.connect()
    with pytest.raises(RecipeError, match="the join with regions@1 is replayed outside a "
                                          "workspace"):
        apply_fitted(con, fitted, BATCH)
    assert con.sql(apply_fitted(con, bind_joins(workspace, fitted), BATCH)).fetchall() == \
        BATCH_JOINED


def test_a_moved_workspace_replays_its_joins(workspace: Workspace,
                                             data: tuple[Artifact, Artifact],
                                             tmp_path: Path) -> None:
    """The fitted state keeps the joined version's id and store-relative path, no absolute
    path: a copy of the project in another folder (the original gone) replays every join."""
    output, recipe, _ = clean_dataset(workspace, "loans", join_recipe("regions", ["zip"]))
    state = _stored(workspace, recipe).steps[0].state.model_dump()
    assert state["path"] == data[1].relpath and not Path(state["path"]).is_absolute()
    assert str(workspace.root).encode() not in (workspace.store / recipe.relpath).read_bytes()
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(workspace.root, moved)
    shutil.rmtree(workspace.root)
    ws = Workspace(moved)
    # the lineage walk every replay uses (acceptance test, batch scoring, retrain, packaging)
    (_, fitted), = fitted_recipes_since_ingest(ws, ws.get(output.id))[1]
    con = duckdb.connect()
    assert con.sql(apply_fitted(con, fitted, BATCH)).fetchall() == BATCH_JOINED
    # clean with the stored (fitted) recipe, by ref: not refitted, same rows as before the move
    again, same_recipe, report = clean_dataset(ws, "loans@1", recipe.ref)
    assert not report.refitted and same_recipe.id == recipe.id
    assert again.id == output.id and report.steps[0].unmatched == 2


def test_a_join_whose_version_is_missing_names_it(workspace: Workspace,
                                                  data: tuple[Artifact, Artifact],
                                                  tmp_path: Path) -> None:
    _, recipe, _ = clean_dataset(workspace, "loans", join_recipe("regions", ["zip"]))
    stray = tmp_path / "stray.yaml"
    stray.write_text((workspace.store / recipe.relpath).read_text())
    other = Workspace.init(tmp_path / "other")
    make_dataset(other, LOANS, name="loans", target="y")
    with pytest.raises(RecipeError, match=r"stray.yaml: step 1 \(join\): the joined version "
                                          r"regions@1 \(id [0-9a-f]{12}\) is not in the "
                                          r"workspace"):
        clean_dataset(other, "loans", stray)


def test_a_key_that_repeats_on_the_joined_side_is_refused(workspace: Workspace) -> None:
    make_dataset(workspace, LOANS, name="loans", target="y")
    make_dataset(workspace, "SELECT * FROM (VALUES ('1000', 'a'), ('1001', 'b'), ('1000', 'c'))"
                 " t(zip, region)", name="dupes")
    before = len(workspace.artifacts())
    with pytest.raises(RecipeError, match=r"key 'zip' is not unique in dupes@1: '1000' appears "
                                          r"2 times"):
        clean_dataset(workspace, "loans", join_recipe("dupes", ["zip"]))
    assert len(workspace.artifacts()) == before


@pytest.mark.parametrize(("recipe", "expected"), [
    ("- join: {dataset: nope, on: zip}", "no dataset 'nope' to join"),
    ("- join: {dataset: regions, on: code}", "column 'code' does not exist"),
    ("- join: {dataset: regions, on: id}", "key column 'id' is not in regions@1"),
    ("- join: {dataset: regions, on: zip, columns: [amount]}", "column 'amount' does not exist"),
    ("- rename: {from: amount, to: income}\n  - join: {dataset: regions, on: zip}",
     "column 'income' is in both the data and regions@1"),
    ("- join: {dataset: regions, on: zip, how: outer}", "how"),
])
def test_bad_join_steps(recipe: str, expected: str, workspace: Workspace,
                        data: tuple[Artifact, Artifact], tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"steps:\n  {recipe}\n")
    with pytest.raises(RecipeError, match=expected):
        clean_dataset(workspace, "loans", path)


def test_key_types_must_agree(workspace: Workspace) -> None:
    make_dataset(workspace, LOANS, name="loans", target="y")
    make_dataset(workspace, "SELECT 1000 AS zip, 'n' AS region", name="intzip")
    with pytest.raises(RecipeError, match="key 'zip' is text here but integer in intzip@1"):
        clean_dataset(workspace, "loans", join_recipe("intzip", ["zip"]))


def _csv(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_ingest_with_join_on_the_command_line(workspace: Workspace, cli: Any,
                                              tmp_path: Path) -> None:
    regions = _csv(tmp_path, "regions.csv", "zip,region\n08001,north\n08002,south\n")
    loans = _csv(tmp_path, "loans.csv", "id,zip,amount,y\n" + "".join(
        f"{i},0800{1 + i % 3},{i * 10},{i % 2}\n" for i in range(30)))
    assert cli("ingest", regions, "--name", "regions", "--test-fraction", "0",
               cwd=workspace.root).code == 0
    result = cli("ingest", loans, "--name", "loans", "--target", "y", "--join", "regions",
                 "--on", "zip", "--json", cwd=workspace.root)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["enriched"]["ref"] == "loans@2" and report["dataset"]["ref"] == "loans@1"
    enriched = _rows(workspace, workspace.get(report["enriched"]["id"]))
    no_region = [row for row in enriched if row[4] is None]
    assert report["unmatched_rows"] == len(no_region) > 0
    assert {row[1] for row in no_region} == {"08003"}
    parents = {role: a.ref for role, a in workspace.parents(report["enriched"]["id"])}
    assert parents == {"input": "loans@1", "recipe": "join@1", "joined": "regions@1"}


def test_ingest_with_a_refused_join_writes_nothing(workspace: Workspace, cli: Any,
                                                   tmp_path: Path) -> None:
    dupes = _csv(tmp_path, "dupes.csv", "zip,region\n08001,north\n08001,south\n")
    loans = _csv(tmp_path, "loans.csv", "id,zip,y\n1,08001,0\n2,08002,1\n3,08001,0\n")
    assert cli("ingest", dupes, "--name", "dupes", "--test-fraction", "0",
               cwd=workspace.root).code == 0
    before = len(workspace.artifacts())
    result = cli("ingest", loans, "--name", "loans", "--join", "dupes", "--on", "zip",
                 "--test-fraction", "0", cwd=workspace.root)
    assert result.code != 0 and "key 'zip' is not unique in dupes@1: '08001' appears 2 times" \
        in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert len(workspace.artifacts()) == before
