"""Clean a dataset version with a recipe: fit on training rows, store it, write a new version.

The dataset version is already the training side of the data (the sealed test set lives
elsewhere); when a train/validation split is recorded for it, statistics are fitted on its
``train`` rows only. A recipe given as a stored recipe or an already fitted file is applied as it
is, without refitting — that is how future batches are cleaned exactly like the training data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from .._yaml import read_yaml
from ..errors import RecipeError, RefNotFoundError
from ..reports import Report, html_page, table
from ..workspace import Artifact, Workspace
from .datasets import DatasetVersion, open_dataset, workspace_connection
from .engine import parquet_scan, quote_literal
from .join import bind_joins, joined_inputs, resolve_joins
from .recipe import (
    FittedRecipe,
    Join,
    Recipe,
    Rename,
    load_recipe,
    parse_recipe,
    with_positions,
    without_positions,
)
from .split import find_split, subset_sql
from .types import columns_of

__all__ = ["CleanReport", "StepRows", "clean_dataset", "fitted_recipes_since_ingest"]

RECIPE_KIND = "recipe"
_RENAMED_META = ("target", "time", "key")
# Meta that identifies an ingest; a cleaned version must not be mistaken for one.
_INGEST_ONLY_META = ("ingest_key",)


@dataclass(frozen=True)
class StepRows:
    """Rows going into and out of one step when the recipe was applied."""

    number: int
    step: str
    rows_in: int
    rows_out: int
    unmatched: int | None = None  # join steps: input rows that found no match

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready row of the report's step table."""
        return {"number": self.number, "step": self.step, "rows_in": self.rows_in,
                "rows_out": self.rows_out, "unmatched": self.unmatched}


@dataclass(frozen=True)
class CleanReport(Report):
    """What ``mlstrata clean`` did: input, recipe, new version and rows per step."""

    input: Artifact
    output: Artifact
    recipe: Artifact
    refitted: bool
    fitted_rows: int | None
    steps: tuple[StepRows, ...]

    def to_dict(self) -> dict[str, Any]:
        """Refs and ids of input, output and recipe; whether it was refitted; rows per step."""
        return {
            "input": self.input.ref, "input_id": self.input.id,
            "output": self.output.ref, "output_id": self.output.id,
            "recipe": self.recipe.ref, "recipe_id": self.recipe.id,
            "refitted": self.refitted, "fitted_rows": self.fitted_rows,
            "rows_in": int(self.input.meta.get("rows", 0)),
            "rows_out": int(self.output.meta.get("rows", 0)),
            "steps": [step.to_dict() for step in self.steps],
        }

    def render_terminal(self, console: Console) -> None:
        """A table of rows in/out per step, then the new version's ref."""
        grid = Table("#", "step", "rows in", "rows out", "unmatched",
                     title=f"clean {self.input.ref}")
        for step in self.steps:
            grid.add_row(str(step.number), step.step, str(step.rows_in), str(step.rows_out),
                         "" if step.unmatched is None else str(step.unmatched))
        console.print(grid)
        how = (f"fitted on {self.fitted_rows} training rows" if self.refitted
               else "applied as stored, not refitted")
        console.print(f"recipe {self.recipe.ref} ({how})")
        console.print(f"new version: [bold]{self.output.ref}[/] {self.output.id[:12]}")

    def to_html(self) -> str:
        """One page: facts and the step table."""
        facts = {"input": self.input.ref, "output": self.output.ref, "recipe": self.recipe.ref,
                 "refitted": self.refitted, "fitted rows": self.fitted_rows}
        rows = [step.to_dict() for step in self.steps]
        return html_page(f"Clean {self.input.ref}", [("Steps", [table(rows)])], facts=facts)


def clean_dataset(
    ws: Workspace,
    ref: str,
    recipe: Path | str | Recipe,
    *,
    on_stage: Callable[[str], None] | None = None,
) -> tuple[Artifact, Artifact, CleanReport]:
    """Clean dataset ``ref`` with ``recipe`` (a file, the ref of a stored recipe, or a
    :class:`Recipe` built in code such as ``ingest --join``'s).

    Returns the new dataset version, the stored (fitted) recipe and the report. Nothing is stored
    when the recipe does not fit the data.
    """
    stage = on_stage or (lambda _: None)
    dataset = open_dataset(ws, ref)
    loaded, recipe_name, stored = _load(ws, recipe)
    con = workspace_connection(ws)
    try:
        data_sql = f"SELECT * FROM {parquet_scan(dataset.path)}"
        stage("fitting recipe")
        fitted, fitted_rows = _fitted(ws, con, dataset, loaded, data_sql)
        stage("applying recipe")
        stages = fitted.stages(con, data_sql)
        steps = _step_rows(con, fitted, [with_positions(data_sql), *stages],
                           int(dataset.meta.get("rows", 0)))
        output_sql = without_positions(stages[-1])
        meta = _output_meta(con, dataset, fitted, output_sql)
        ws.ensure_space(2 * dataset.artifact.size, f"cleaning {dataset.artifact.ref}")
        stage("writing new version")
        with ws.staging() as staging:
            path = staging / "data.parquet"
            _copy(con, output_sql, path, dataset.artifact.ref)
            stage("storing")
            recipe_artifact = stored or _store_recipe(ws, fitted, recipe_name, dataset,
                                                      fitted_rows)
            output = ws.put_file(
                path, kind="dataset", name=dataset.artifact.name,
                meta={**meta, "recipe": recipe_artifact.id},
                inputs={"input": dataset.artifact.id, "recipe": recipe_artifact.id,
                        **joined_inputs(fitted)},
                access=dataset.artifact.access,
                description=f"{dataset.artifact.ref} cleaned by {recipe_artifact.ref}",
            )
    finally:
        con.close()
    report = CleanReport(dataset.artifact, output, recipe_artifact, isinstance(loaded, Recipe),
                         fitted_rows, steps)
    return output, recipe_artifact, report


def _load(ws: Workspace, recipe: Path | str | Recipe
          ) -> tuple[Recipe | FittedRecipe, str, Artifact | None]:
    """The recipe, the name to store it under, and its artifact when it is already stored."""
    if isinstance(recipe, Recipe):
        return recipe, recipe.source.lstrip("-"), None
    path = Path(recipe)
    if isinstance(recipe, Path) or path.is_file():
        return load_recipe(path), path.stem, None
    try:
        artifact = ws.resolve(recipe, (RECIPE_KIND,))
    except RefNotFoundError as exc:
        raise RecipeError(f"recipe '{recipe}' is neither a file nor a stored recipe; give the "
                          f"path of a recipe YAML or a ref from 'mlstrata ls recipe'") from exc
    data = read_yaml(ws.path_for_read(artifact), RecipeError)
    return parse_recipe(data, artifact.ref), artifact.name, artifact


def _fitted(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    dataset: DatasetVersion,
    recipe: Recipe | FittedRecipe,
    data_sql: str,
) -> tuple[FittedRecipe, int | None]:
    """Fit ``recipe`` on the training rows (the split's train subset if one exists)."""
    if isinstance(recipe, FittedRecipe):
        return bind_joins(ws, recipe), None
    split = find_split(ws, dataset.artifact)
    train_sql = (data_sql if split is None
                 else subset_sql(dataset.path, ws.path_for_read(split), "train"))
    ((rows,),) = con.execute(f"SELECT count(*) FROM ({train_sql})").fetchall()
    return resolve_joins(ws, recipe).fit(con, train_sql), int(rows)


def _step_rows(
    con: duckdb.DuckDBPyConnection, fitted: FittedRecipe, stages: list[str], rows: int
) -> tuple[StepRows, ...]:
    """Rows in and out of each step (``stages``: the input, then the SQL after each step);
    counted only after steps that can remove rows; join steps count their unmatched rows."""
    counts = []
    for number, (step, before, sql) in enumerate(
            zip(fitted.steps, stages[:-1], stages[1:], strict=True), start=1):
        rows_out = (con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
                    if step.step.changes_rows() else rows)
        unmatched = (step.step.unmatched(con, before, step.state)
                     if isinstance(step.step, Join) else None)
        counts.append(StepRows(number, step.step.describe(), rows, int(rows_out), unmatched))
        rows = int(rows_out)
    return tuple(counts)


def _output_meta(
    con: duckdb.DuckDBPyConnection, dataset: DatasetVersion, fitted: FittedRecipe,
    output_sql: str,
) -> dict[str, Any]:
    """The input's catalog meta with the output's columns and renamed target/time/key."""
    columns = columns_of(con.sql(output_sql))
    names = {column.name for column in columns}
    meta: dict[str, Any] = {k: v for k, v in dataset.meta.items() if k not in _INGEST_ONLY_META}
    renames = _renames(fitted)
    for key in _RENAMED_META:
        old = meta.get(key)
        if isinstance(old, str):
            meta[key] = renames.get(old, old) if renames.get(old, old) in names else None
    if dataset.target and meta.get("target") is None:
        raise RecipeError(f"the recipe removes the target column '{dataset.target}'; "
                          f"keep it (remove it from 'drop', or rename it instead)")
    meta["columns"] = [column.to_dict() for column in columns]
    meta["rows"] = int(con.execute(f"SELECT count(*) FROM ({output_sql})").fetchall()[0][0])
    return meta


def _renames(fitted: FittedRecipe) -> Mapping[str, str]:
    """Original column name → final name, following the recipe's rename steps in order."""
    final: dict[str, str] = {}
    for fitted_step in fitted.steps:
        step = fitted_step.step
        if isinstance(step, Rename):
            for original, current in list(final.items()):
                if current == step.from_:
                    final[original] = step.to
            final.setdefault(step.from_, step.to)
    return final


def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, ref: str) -> None:
    """Run the cleaning query into a Parquet file; a failing value becomes a RecipeError."""
    try:
        con.execute(f"COPY ({sql}) TO {quote_literal(str(path))} (FORMAT parquet)")
    except duckdb.Error as exc:
        message = " ".join(str(exc).split("\nLINE ")[0].split())
        raise RecipeError(f"cleaning {ref} failed: {message}; fix the recipe step that "
                          f"computes it, or the data") from exc


def _store_recipe(
    ws: Workspace, fitted: FittedRecipe, name: str, dataset: DatasetVersion,
    fitted_rows: int | None,
) -> Artifact:
    """Store the fitted recipe as YAML; identical recipes and statistics give the same id."""
    meta = {"steps": [step.step.kind for step in fitted.steps], "fitted_rows": fitted_rows,
            "fitted_on": dataset.artifact.id if fitted_rows is not None else None}
    inputs = {"fitted_on": dataset.artifact.id} if fitted_rows is not None else {}
    return ws.put_bytes(
        fitted.to_yaml().encode("utf-8"), suffix=".yaml", kind=RECIPE_KIND, name=name,
        meta=meta, inputs=inputs, access=dataset.artifact.access,
        description=f"cleaning recipe ({len(fitted.steps)} steps)",
    )


def fitted_recipes_since_ingest(ws: Workspace, dataset: Artifact
                                ) -> tuple[Artifact, list[tuple[Artifact, FittedRecipe]]]:
    """The ingested version ``dataset`` was cleaned from, and the fitted recipes applied since,
    oldest first (``clean`` records each step as the parents ``input`` and ``recipe``).

    Whatever replays the training data's cleaning — the acceptance test on the sealed test set,
    batch scoring of raw rows, retraining, packaging — walks this one lineage; its join steps
    come back bound to the joined versions' files in ``ws``.
    """
    recipes: list[tuple[Artifact, FittedRecipe]] = []
    while True:
        parents = dict(ws.parents(dataset.id))
        if "input" not in parents or "recipe" not in parents:
            return dataset, recipes[::-1]
        artifact = parents["recipe"]
        fitted = parse_recipe(read_yaml(ws.path_for_read(artifact), RecipeError), artifact.ref)
        if not isinstance(fitted, FittedRecipe):
            raise RecipeError(f"recipe {artifact.ref} is not fitted; the catalog may be damaged")
        recipes.append((artifact, bind_joins(ws, fitted)))
        dataset = parents["input"]
