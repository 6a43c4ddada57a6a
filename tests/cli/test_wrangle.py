"""``mlstrata split`` and ``mlstrata clean`` end to end, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstrata.workspace import Workspace
from tests._factories import make_dataset

DATA = "SELECT range AS x, CASE WHEN range % 5 = 0 THEN NULL ELSE range END AS v, " \
       "range % 2 AS y FROM range(50)"


@pytest.fixture
def project(workspace: Workspace) -> Workspace:
    make_dataset(workspace, DATA, name="loans", target="y")
    return workspace


def test_split_json(cli, project: Workspace) -> None:  # type: ignore[no-untyped-def]
    result = cli("split", "loans", "--val", "0.2", "--seed", "7", "--json", cwd=project.root)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["split"] == "loans.split@1" and report["strategy"] == "stratified"
    assert report["counts"] == {"train": 40, "validation": 10}
    again = json.loads(cli("split", "loans", "--val", "0.2", "--seed", "7", "--json",
                           cwd=project.root).out)
    assert again["id"] == report["id"]
    assert (project.reports_dir / "split-loans.split-v1.html").is_file()


def test_split_terminal_output(cli, project: Workspace) -> None:  # type: ignore[no-untyped-def]
    result = cli("split", "loans", "--strategy", "random", cwd=project.root)
    assert result.code == 0 and "random split of loans@1" in result.out


def test_clean_json_then_reapply_stored_recipe(  # type: ignore[no-untyped-def]
    cli, project: Workspace, tmp_path: Path
) -> None:
    recipe = tmp_path / "fill.yaml"
    recipe.write_text("steps:\n  - impute: {columns: [v], strategy: median}\n"
                      "  - filter: {sql: 'x < 45'}\n")
    cli("split", "loans", "--json", cwd=project.root)
    result = cli("clean", "loans", "--recipe", recipe, "--json", cwd=project.root)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["output"] == "loans@2" and report["recipe"] == "fill@1"
    assert report["refitted"] and report["fitted_rows"] == 45  # 50 rows - round(0.1 x 50)
    assert [s["rows_out"] for s in report["steps"]] == [50, 45]
    again = json.loads(cli("clean", "loans@1", "--recipe", "fill", "--json",
                           cwd=project.root).out)
    assert again["output_id"] == report["output_id"] and not again["refitted"]


def test_clean_terminal_output(  # type: ignore[no-untyped-def]
    cli, project: Workspace, tmp_path: Path
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - dedupe:\n")
    result = cli("clean", "loans", "-r", recipe, cwd=project.root)
    assert result.code == 0 and "new version: loans@2" in result.out


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("steps:\n  - scrub: {columns: [v]}\n", "bad.yaml: step 1 (scrub): unknown step kind"),
        ("steps:\n  - drop: {columns: [vv]}\n",
         "bad.yaml: step 1 (drop): column 'vv' does not exist (did you mean 'v'?)"),
        ("steps:\n  - filter: {sql: 'x >'}\n", "bad.yaml: step 1 (filter): sql 'x >' does not run"),
        ("steps:\n  - derive: {name: z, sql: 'nope + 1'}\n",
         "bad.yaml: step 1 (derive): sql 'nope + 1' does not run"),
        ("steps:\n  - derive: {name: t, sql: \"'n' || x\"}\n  - cast: {column: t, to: integer}\n",
         "bad.yaml: step 2 (cast): column 't' has values that are not integer, e.g. 'n0'"),
        ("steps: [\n", "bad.yaml: YAML syntax error at line 2"),
    ],
)
def test_clean_errors_are_one_line_and_write_nothing(  # type: ignore[no-untyped-def]
    cli, project: Workspace, tmp_path: Path, recipe: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(recipe)
    before = project.artifacts()
    result = cli("clean", "loans", "--recipe", path, cwd=project.root)
    assert result.code != 0
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert project.artifacts() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--val", "1.5"], "fraction 1.5 is outside (0, 1)"),
        (["--strategy", "group"], "needs a group column; name it with --group"),
        (["--strategy", "stratified", "--target", "yy"], "target column 'yy' does not exist"),
        (["--strategy", "shuffle"], "split strategy 'shuffle' is unknown"),
    ],
)
def test_split_errors_are_one_line_and_write_nothing(  # type: ignore[no-untyped-def]
    cli, project: Workspace, args: list[str], message: str
) -> None:
    before = project.artifacts()
    result = cli("split", "loans", *args, cwd=project.root)
    assert result.code != 0
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert project.artifacts() == before
