"""What the budgeted search (:mod:`mlstrata.model.search`) explores: families, their dimensions.

A :class:`Family` is one model candidate (:data:`mlstrata.model.candidates.CANDIDATES`) with a
box of hyper-parameters the search moves in. Every dimension maps to the unit interval (on a log
scale where the range spans orders of magnitude), so a local search can step in any direction
with one step size, as FLAML's FLOW2 does. Each dimension has a **low-cost starting point**
(``init``): four trees of four leaves for the boosting and forest families, so the first trial of
every family costs next to nothing and the cost grows only when the score pays for it.

Families are listed cheapest first; k-NN only on small data (it scales with rows squared).

>>> family = FAMILIES["lightgbm"]
>>> family.initial()["n_estimators"], family.initial()["num_leaves"]
(4, 4)
>>> [f.candidate for f in families_for("regression", rows=500)][:2]
['ridge', 'knn']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .candidates import CANDIDATES

__all__ = ["FAMILIES", "KNN_MAX_ROWS", "Dim", "Family", "families_for", "tree_nodes"]

KNN_MAX_ROWS = 5_000
"""k-NN joins the search only up to this many training rows (its prediction cost grows with
rows times rows)."""


@dataclass(frozen=True)
class Dim:
    """One hyper-parameter: a numeric range (``log`` scale, ``integer`` rounding) or ``choices``.

    >>> d = Dim("C", 1e-3, 1e2, init=1.0, log=True)
    >>> round(d.value(d.unit(1.0)), 6)
    1.0
    """

    name: str
    low: float = 0.0
    high: float = 1.0
    init: Any = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def unit(self, value: Any) -> float:
        """Where ``value`` sits in the unit interval."""
        if self.choices:
            return (self.choices.index(value) + 0.5) / len(self.choices)
        low, high, v = self.low, self.high, float(value)
        if self.log:
            low, high, v = math.log(low), math.log(high), math.log(v)
        return (v - low) / (high - low)

    def value(self, unit: float) -> Any:
        """The hyper-parameter value at ``unit`` (clipped into [0, 1])."""
        u = min(max(unit, 0.0), 1.0)
        if self.choices:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        low, high = self.low, self.high
        if self.log:
            v = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            v = low + u * (high - low)
        return int(round(v)) if self.integer else float(f"{v:.6g}")


@dataclass(frozen=True)
class Family:
    """A candidate and the box the search moves in; ``fixed`` parameters are always set.

    ``preset``: a configuration known to do well on most tables (the libraries' own defaults:
    100 trees, 31 leaves or depth 6, learning rate 0.1), tried right after the low-cost start —
    where AutoGluon's hand-picked defaults beat a cost-frugal search that is still growing from
    four trees when a short budget ends."""

    candidate: str
    dims: tuple[Dim, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    tree_based: bool = True
    preset: Mapping[str, Any] = field(default_factory=dict)
    small_preset: Mapping[str, Any] = field(default_factory=dict)

    def presets(self, rows: int) -> list[dict[str, Any]]:
        """The presets as full configurations (starting values for what they leave out): the
        library defaults, then — on at most ``SMALL_ROWS`` training rows — ``small_preset``:
        few leaves, a slow learning rate, more trees (FLAML's winners on small tables were
        few-leaf models; the defaults' 31 leaves overfit a few hundred rows).

        >>> [p["num_leaves"] for p in FAMILIES["lightgbm"].presets(500)]
        [31, 8]
        """
        chosen = [self.preset, *([self.small_preset] if rows <= SMALL_ROWS else [])]
        return [{**self.initial(), **p} for p in chosen if p]

    def initial(self) -> dict[str, Any]:
        """The low-cost starting configuration."""
        return {**self.fixed, **{d.name: d.init for d in self.dims}}

    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray[Any, Any]:
        """The configuration as a point of the unit cube."""
        return np.array([d.unit(params[d.name]) for d in self.dims], dtype=float)

    def from_unit(self, point: Sequence[float] | np.ndarray[Any, Any]) -> dict[str, Any]:
        """The configuration at a point of the unit cube."""
        return {**self.fixed, **{d.name: d.value(u) for d, u in zip(self.dims, point,
                                                                     strict=True)}}

    def supports(self, task: str) -> bool:
        return task in CANDIDATES[self.candidate].tasks


def _trees(n_max: int) -> Dim:
    return Dim("n_estimators", 4, n_max, init=4, log=True, integer=True)


SMALL_ROWS = 2_000
"""At most this many training rows (per fold) and the boosted families also try their
``small_preset``."""
_BOOST_RATE = Dim("learning_rate", 1 / 1024, 1.0, init=0.1, log=True)
_LAMBDA = Dim("reg_lambda", 1 / 1024, 1024.0, init=1.0, log=True)
_ALPHA = Dim("reg_alpha", 1 / 1024, 1024.0, init=1 / 1024, log=True)
_FOREST = (_trees(512), Dim("max_features", 0.1, 1.0, init=1.0),
           Dim("max_leaf_nodes", 4, 4096, init=4, log=True, integer=True),
           Dim("min_samples_leaf", 1, 32, init=1, log=True, integer=True))
_FOREST_PRESET = MappingProxyType({"n_estimators": 100, "max_features": 0.5,
                                   "max_leaf_nodes": 2048, "min_samples_leaf": 2})

_CATALOGUE = (
    Family("logistic", (Dim("C", 1e-3, 1e3, init=1.0, log=True),), tree_based=False),
    Family("ridge", (Dim("alpha", 1e-3, 1e3, init=1.0, log=True),), tree_based=False),
    Family("knn", (Dim("n_neighbors", 2, 100, init=15, log=True, integer=True),
                   Dim("weights", choices=("uniform", "distance"), init="uniform")),
           tree_based=False),
    Family("lightgbm", (_trees(4096), Dim("num_leaves", 4, 1024, init=4, log=True, integer=True),
                        Dim("min_child_samples", 2, 128, init=20, log=True, integer=True),
                        _BOOST_RATE, Dim("colsample_bytree", 0.3, 1.0, init=1.0), _ALPHA,
                        _LAMBDA),
           preset=MappingProxyType({"n_estimators": 100, "num_leaves": 31,
                                    "colsample_bytree": 0.8}),
           small_preset=MappingProxyType({"n_estimators": 200, "num_leaves": 8,
                                          "min_child_samples": 10, "learning_rate": 0.03,
                                          "colsample_bytree": 0.8})),
    Family("xgboost", (_trees(4096), Dim("max_depth", 1, 12, init=3, integer=True),
                       Dim("min_child_weight", 0.01, 128.0, init=1.0, log=True), _BOOST_RATE,
                       Dim("subsample", 0.5, 1.0, init=1.0),
                       Dim("colsample_bytree", 0.3, 1.0, init=1.0), _ALPHA, _LAMBDA),
           preset=MappingProxyType({"n_estimators": 100, "max_depth": 6,
                                    "subsample": 0.8, "colsample_bytree": 0.8}),
           small_preset=MappingProxyType({"n_estimators": 200, "max_depth": 3,
                                          "learning_rate": 0.03, "subsample": 0.8,
                                          "colsample_bytree": 0.8})),
    Family("hist_gb", (Dim("max_iter", 4, 2048, init=4, log=True, integer=True),
                       Dim("max_leaf_nodes", 4, 512, init=4, log=True, integer=True),
                       Dim("min_samples_leaf", 2, 128, init=20, log=True, integer=True),
                       _BOOST_RATE,
                       Dim("l2_regularization", 1e-6, 100.0, init=1e-6, log=True)),
           fixed=MappingProxyType({"early_stopping": False}),
           preset=MappingProxyType({"max_iter": 100, "max_leaf_nodes": 31}),
           small_preset=MappingProxyType({"max_iter": 200, "max_leaf_nodes": 8,
                                          "min_samples_leaf": 10, "learning_rate": 0.03})),
    Family("extra_trees", _FOREST, preset=_FOREST_PRESET),
    Family("random_forest", _FOREST, preset=_FOREST_PRESET),
)
FAMILIES: Mapping[str, Family] = MappingProxyType({f.candidate: f for f in _CATALOGUE})


def families_for(task: str, rows: int, only: Sequence[str] | None = None) -> list[Family]:
    """The families that handle ``task`` at ``rows`` training rows, cheapest first.

    ``only`` (``model.candidates``) keeps the families it names, in catalogue order.
    """
    chosen = [f for f in _CATALOGUE if f.supports(task)
              and (f.candidate != "knn" or rows <= KNN_MAX_ROWS)]
    if only is not None:
        chosen = [f for f in chosen if f.candidate in only]
    return chosen


_SHAPES: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "lightgbm": ("n_estimators", "num_leaves", "min_child_samples"),
    "xgboost": ("n_estimators", "max_depth", "min_child_weight"),
    "hist_gb": ("max_iter", "max_leaf_nodes", "min_samples_leaf"),
    "extra_trees": ("n_estimators", "max_leaf_nodes", "min_samples_leaf"),
    "random_forest": ("n_estimators", "max_leaf_nodes", "min_samples_leaf"),
})
"""Per tree family: its number of trees, its cap on leaves (XGBoost: the depth) and its least
rows (hessian) per leaf."""


def tree_nodes(candidate: str, params: Mapping[str, Any], rows: int, classes: int = 2) -> int:
    """About how many tree nodes ``candidate`` with ``params`` grows on ``rows`` rows (0 for a
    model without trees): trees × (2 × leaves − 1), leaves capped by the leaf limit and by the
    rows each leaf needs; boosting grows a tree per class on more than two classes. What the
    ONNX conversion and its parity check cost grows with (see ``search_run``).

    >>> tree_nodes("random_forest", {"n_estimators": 100, "max_leaf_nodes": 2048,
    ...                               "min_samples_leaf": 2}, rows=20_190)
    409500
    >>> tree_nodes("ridge", {"alpha": 1.0}, rows=20_190)
    0
    """
    shape = _SHAPES.get(candidate)
    if shape is None:
        return 0
    trees_name, cap_name, least_name = shape
    cap = float(params.get(cap_name, 31))
    if candidate == "xgboost":
        cap = 2.0 ** cap
    leaves = max(2.0, min(cap, rows / max(float(params.get(least_name, 1)), 1.0)))
    trees = int(params.get(trees_name, 100))
    if classes > 2 and candidate != "random_forest" and candidate != "extra_trees":
        trees *= classes
    return int(trees * (2 * leaves - 1))
