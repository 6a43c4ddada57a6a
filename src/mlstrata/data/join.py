"""Enrichment by joins: bind a recipe's ``join`` steps to the workspace's dataset versions.

A :class:`~mlstrata.data.recipe.Join` step names another dataset version by ref; before fitting,
:func:`resolve_joins` finds it in the catalog (reading it is logged like any training read) and
binds the step to its id and Parquet file. Once fitted, the step carries that id, so the cleaned
version records lineage to both inputs (:func:`joined_inputs`) and every replay — batch scoring,
precompute, the acceptance test, a package's lookup tables — reads the very same rows. A replay
finds those rows by id in the workspace at hand (:func:`bind_joins`), never by a path frozen at
fitting time, so a workspace copied or moved to another folder replays as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RecipeError, RefNotFoundError
from ..workspace import Workspace
from .recipe import FittedRecipe, FittedStep, Join, Recipe, Step

__all__ = ["bind_joins", "join_recipe", "joined_inputs", "resolve_joins"]


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
    return step.resolved(artifact.id, artifact.ref, ws.path_for_read(artifact), artifact.relpath)


def bind_joins(ws: Workspace, fitted: FittedRecipe) -> FittedRecipe:
    """``fitted`` with each join step bound to its joined version's file in ``ws`` (by id).

    Every replay of a stored recipe goes through here (``clean`` with a fitted recipe, and
    :func:`~mlstrata.data.clean.fitted_recipes_since_ingest`, which the acceptance test, batch
    scoring, precompute, retraining and packaging use).
    """
    return FittedRecipe(tuple(_bound_fitted(ws, s, number, fitted.source)
                              for number, s in enumerate(fitted.steps, start=1)), fitted.source)


def _bound_fitted(ws: Workspace, fitted: FittedStep, number: int, source: str) -> FittedStep:
    if not isinstance(fitted.step, Join):
        return fitted
    state = fitted.state.model_dump()
    try:
        artifact = ws.get(str(state["dataset"]))
    except RefNotFoundError as exc:
        raise RecipeError(f"{source}: step {number} (join): the joined version {state['ref']} "
                          f"(id {str(state['dataset'])[:12]}) is not in the workspace "
                          f"{ws.root}; replay the recipe in the project that holds it, or "
                          "ingest the same data here") from exc
    step = fitted.step.resolved(artifact.id, artifact.ref, ws.path_for_read(artifact),
                                artifact.relpath)
    return FittedStep(step, fitted.state)


def joined_inputs(fitted: FittedRecipe) -> dict[str, str]:
    """Lineage roles of the versions a fitted recipe joins: ``joined`` (``joined_2``, ...)."""
    ids = [str(s.state.model_dump()["dataset"]) for s in fitted.steps if isinstance(s.step, Join)]
    return {("joined" if n == 1 else f"joined_{n}"): i for n, i in enumerate(ids, start=1)}
