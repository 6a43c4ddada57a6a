"""Enrichment by joins: bind a recipe's ``join`` steps to the workspace's dataset versions.

A :class:`~mlstrata.data.recipe.Join` step names another dataset version by ref; before fitting,
:func:`resolve_joins` finds it in the catalog (reading it is logged like any training read) and
binds the step to its id and Parquet file. Once fitted, the step carries that id, so the cleaned
version records lineage to both inputs (:func:`joined_inputs`) and every replay — batch scoring,
precompute, the acceptance test, a package's lookup tables — reads the very same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RecipeError, RefNotFoundError
from ..workspace import Workspace
from .recipe import FittedRecipe, Join, Recipe, Step

__all__ = ["join_recipe", "joined_inputs", "resolve_joins"]


def join_recipe(dataset: str, on: str | Sequence[str], how: str = "left") -> Recipe:
    """The one-step recipe of ``mlstrata ingest ... --join REF --on KEY [--how left|inner]``."""
    if how not in ("left", "inner"):
        raise RecipeError(f"--how {how!r}: a join is 'left' (keep every row) or 'inner' (keep "
                          "rows with a match)")
    keys = [on] if isinstance(on, str) else list(on)
    step = Join.model_validate({"dataset": dataset, "on": keys, "how": how})
    return Recipe((step,), source="--join")


def resolve_joins(ws: Workspace, recipe: Recipe) -> Recipe:
    """``recipe`` with each join step bound to the dataset version it names."""
    return Recipe(tuple(_bound(ws, step, number, recipe.source)
                        for number, step in enumerate(recipe.steps, start=1)), recipe.source)


def _bound(ws: Workspace, step: Step, number: int, source: str) -> Step:
    if not isinstance(step, Join):
        return step
    try:
        artifact = ws.resolve(step.dataset, ("dataset",))
    except RefNotFoundError as exc:
        raise RecipeError(f"{source}: step {number} (join): no dataset {step.dataset!r} to join;"
                          f" ingest it first or give a ref from 'mlstrata ls dataset'") from exc
    return step.resolved(artifact.id, artifact.ref, ws.path_for_read(artifact))


def joined_inputs(fitted: FittedRecipe) -> dict[str, str]:
    """Lineage roles of the versions a fitted recipe joins: ``joined`` (``joined_2``, ...)."""
    ids = [str(s.state.model_dump()["dataset"]) for s in fitted.steps if isinstance(s.step, Join)]
    return {("joined" if n == 1 else f"joined_{n}"): i for n, i in enumerate(ids, start=1)}
