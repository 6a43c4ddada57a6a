"""Clean raw input batches the way the model's training data was cleaned.

A model is trained on a dataset version that fitted cleaning recipes produced from the ingested
data (imputed, clipped, filtered, derived columns such as ``loan_to_income``). Raw records — a
new month of applications, ``mlstrata synth`` output — have not been through those steps.
:class:`Cleaning` replays the recipes' row-level steps on each Arrow batch with DuckDB, with the
statistics frozen at training time (nothing is refitted): text columns are first typed as the
ingested dataset typed them, ``dedupe`` steps are skipped (one record's prediction must not depend
on the others), and rows a ``filter`` or an ``outliers`` drop removes come back as rejects with the
step as the reason (``recipe filter: <sql>``).

:func:`cleaning_for` finds the recipes through the workspace the model was trained in (the
package's manifest names its dataset). It is only possible with that workspace at hand. Columns
a ``join`` step added are not a reason to replay: the package's own join tables fill them at
scoring time (:mod:`.joining`), with or without the workspace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa

from ..data.clean import fitted_recipes_since_ingest
from ..data.engine import quote_identifier
from ..data.recipe import (
    Dedupe,
    Derive,
    Filter,
    FittedRecipe,
    FittedStep,
    Join,
    Rename,
    without_positions,
)
from ..errors import DataError, RecipeError
from ..runtime.model import LoadedModel
from ..workspace import Artifact, Workspace
from .joining import joined_columns

__all__ = ["Cleaning", "CleanedBatches", "RecipeMode", "clean_batches", "cleaning_for",
           "recipe_outputs"]

RecipeMode = Literal["auto", "replay", "skip"]
_ROW = "__mlstrata_batch_row"
_BATCH = "_mlstrata_batch"


@dataclass(frozen=True)
class Cleaning:
    """The fitted recipes to replay, oldest first, and the ingested column types."""

    recipes: tuple[FittedRecipe, ...]
    engine_types: dict[str, str]

    @property
    def steps(self) -> list[str]:
        """Every replayed step as one line, for reports."""
        return [s.step.describe() for r in self.recipes for s in r.steps]

    def clean(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Table]:
        """The cleaned rows of ``batch`` (input order) and the rows the recipes removed, as given
        plus ``reject_reason``."""
        numbered = batch.append_column(_ROW, pa.array(range(batch.num_rows), pa.int64()))
        con = duckdb.connect()
        try:
            con.register(_BATCH, pa.Table.from_batches([numbered]))
            stages = [self._typed_sql(batch.schema)]
            reasons: list[str] = []
            for recipe in self.recipes:
                recipe_stages = recipe.stages(con, stages[-1])
                stages += [without_positions(sql) for sql in recipe_stages]
                reasons += [_reason(step) for step in recipe.steps]
            cleaned = con.sql(stages[-1]).to_arrow_table()
            dropped = self._dropped(con, stages, reasons)
        except RecipeError as exc:
            raise RecipeError(f"cleaning the input like the training data failed: {exc}") from exc
        finally:
            con.close()
        kept = cleaned.drop_columns([_ROW]).combine_chunks()
        rows = kept.to_batches()[0] if kept.num_rows else _empty(kept.schema)
        rejected = batch.take(pa.array(list(dropped), pa.int64()))
        rejects = pa.Table.from_batches([rejected]).append_column(
            "reject_reason", pa.array(list(dropped.values()), pa.string()))
        return rows, rejects

    def _typed_sql(self, schema: pa.Schema) -> str:
        """The batch with its text columns typed as the ingested dataset typed them."""
        casts = [f"TRY_CAST({quote_identifier(f.name)} AS {self.engine_types[f.name]}) AS "
                 f"{quote_identifier(f.name)}" for f in schema
                 if pa.types.is_string(f.type) and self.engine_types.get(f.name, "VARCHAR")
                 != "VARCHAR"]
        replace = f" REPLACE ({', '.join(casts)})" if casts else ""
        return f"SELECT *{replace} FROM {_BATCH}"

    @staticmethod
    def _dropped(con: duckdb.DuckDBPyConnection, stages: Sequence[str],
                 reasons: Sequence[str]) -> dict[int, str]:
        """Row → the first step that removed it (only steps that can remove rows are asked)."""
        dropped: dict[int, str] = {}
        for before, after, reason in zip(stages[:-1], stages[1:], reasons, strict=True):
            if not reason:
                continue
            gone = con.sql(f"SELECT {_ROW} FROM ({before}) EXCEPT SELECT {_ROW} FROM ({after})"
                           ).fetchall()
            for (row,) in gone:
                dropped.setdefault(int(row), reason)
        return dict(sorted(dropped.items()))


def cleaning_for(model: LoadedModel, ws: Workspace | None, columns: Sequence[str],
                 mode: RecipeMode = "auto") -> Cleaning | None:
    """The cleaning to apply to an input with ``columns``, or None.

    ``replay`` always replays the training data's recipes (a workspace is required); ``skip``
    never does; ``auto`` replays them when the input lacks a model input that a recipe creates
    (a derived or renamed column) and the package's join tables do not fill, and otherwise
    names the missing inputs.
    """
    if mode == "skip":
        return None
    joined = set(joined_columns(model.joins, columns))
    missing = [name for name in model.signature.input_names
               if name not in columns and name not in joined]
    if mode == "auto" and not missing:
        return None
    recipes = _recipes(model, ws, missing, required=mode == "replay")
    if recipes is None:
        return None
    created = {name for recipe in recipes for name in recipe_outputs(recipe)}
    not_made = [name for name in missing if name not in created]
    if not_made:
        raise DataError(f"the input has no column {', '.join(map(repr, not_made))} that the "
                        f"model needs (and no cleaning recipe derives it); its columns are: "
                        f"{', '.join(columns)}")
    ingested = _lineage(ws, model)[0] if ws is not None else None
    columns_meta = ingested.meta.get("columns", []) if ingested is not None else []
    return Cleaning(tuple(recipes), {str(c["name"]): str(c["engine_type"]) for c in columns_meta})


class CleanedBatches:
    """Input batches cleaned on the fly (when a recipe applies), one at a time.

    ``rows_in`` counts the raw rows read so far; rows a recipe drops are handed to
    ``on_rejected(rows, input_columns)`` as they appear, so nothing but one batch is held.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], columns: list[str],
                 cleaning: Cleaning | None,
                 on_rejected: Callable[[pa.Table, list[str]], None]) -> None:
        self.cleaning = cleaning
        self.columns = columns
        self.rows_in = 0
        self._batches = batches
        self._on_rejected = on_rejected

    @property
    def batches(self) -> Iterator[pa.RecordBatch]:
        """The cleaned batches."""
        for batch in self._batches:
            self.rows_in += batch.num_rows
            if self.cleaning is None:
                yield batch
                continue
            rows, dropped = self.cleaning.clean(batch)
            if dropped.num_rows:
                self._on_rejected(dropped, self.columns)
            yield rows


def clean_batches(model: LoadedModel, batches: Iterator[pa.RecordBatch], ws: Workspace | None,
                  mode: RecipeMode,
                  on_rejected: Callable[[pa.Table, list[str]], None]) -> CleanedBatches:
    """Clean ``batches`` as :func:`cleaning_for` decides from the first batch's columns."""
    first = next(batches, None)
    if first is None:
        return CleanedBatches(iter(()), [], None, on_rejected)
    cleaning = cleaning_for(model, ws, first.schema.names, mode)
    return CleanedBatches(_chain([first], batches), first.schema.names, cleaning, on_rejected)


def _chain(head: Iterable[pa.RecordBatch], rest: Iterator[pa.RecordBatch]
           ) -> Iterator[pa.RecordBatch]:
    yield from head
    yield from rest


def recipe_outputs(recipe: FittedRecipe) -> list[str]:
    """The columns a recipe creates (derived, renamed to, or joined from another version)."""
    outputs: list[str] = []
    for fitted in recipe.steps:
        if isinstance(fitted.step, Derive | Rename):
            outputs.append(fitted.step.name if isinstance(fitted.step, Derive) else fitted.step.to)
        elif isinstance(fitted.step, Join):
            outputs += fitted.state.model_dump()["columns"]
    return outputs


def _recipes(model: LoadedModel, ws: Workspace | None, missing: Sequence[str],
             required: bool) -> list[FittedRecipe] | None:
    """The training data's fitted recipes (dedupe steps left out), or None when there are
    none or there is no workspace to find them in."""
    if ws is None:
        if missing:
            raise DataError(f"the input has no column {', '.join(map(repr, missing))} that the "
                            "model needs; if the training data's cleaning recipe derives them, "
                            "run inside the project that trained the model (or pass --workspace)"
                            " so its recipe can be replayed, or add the columns to the input")
        if required:
            raise DataError("replaying the training data's recipe needs the workspace that "
                            "trained the model; run inside that project or pass --workspace")
        return None
    recipes = []
    for _, fitted in _lineage(ws, model)[1]:
        steps = tuple(s for s in fitted.steps if not isinstance(s.step, Dedupe))
        if steps:
            recipes.append(FittedRecipe(steps, fitted.source))
    return recipes or None


def _lineage(ws: Workspace, model: LoadedModel
             ) -> tuple[Artifact, list[tuple[Artifact, FittedRecipe]]]:
    """The ingested dataset version the model's training data came from, and the fitted recipes
    applied since, oldest first."""
    dataset_id = model.manifest.lineage.get("dataset")
    if not dataset_id:
        raise DataError(f"package {model.directory} records no training dataset; rebuild it with "
                        "'mlstrata package'")
    return fitted_recipes_since_ingest(ws, ws.get(dataset_id))


def _reason(fitted: FittedStep) -> str:
    """The reject reason for rows ``fitted`` removes; empty for steps that keep every row."""
    if not fitted.step.changes_rows():
        return ""
    if isinstance(fitted.step, Filter):
        return f"recipe filter: {fitted.step.sql}"
    return f"recipe step: {fitted.step.describe()}"


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)
