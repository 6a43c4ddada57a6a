"""Ensembles of the best models: soft voting / averaging, stacking, bagging of the best one.

An ensemble is built from the *estimators* of the leaderboard's best candidates and placed behind
the same preprocessing as they are (one ``features`` step feeding every member), so it is one
pipeline like any other: it is cross-validated, joins the leaderboard and wins only if it scores
better. Members are the best entry of each distinct candidate (tuned or not), best first.

ONNX: skl2onnx converts ``VotingClassifier`` (with ``flatten_transform=False``),
``VotingRegressor``, ``StackingClassifier``/``StackingRegressor`` and ``BaggingClassifier``/
``BaggingRegressor``, and ``tests/model/test_ensemble.py`` converts them and measures parity
for every convertible member, XGBoost and HistGradientBoosting included (their thresholds need
the packager's double-precision export). An ensemble converts when all its members do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .cv import StratifiedFolds

__all__ = ["ENSEMBLE_KINDS", "Ensemble", "EnsembleKind", "Member", "build_ensembles",
           "fits_per_fold"]

EnsembleKind = Literal["voting", "stacking", "bagging"]
ENSEMBLE_KINDS: tuple[EnsembleKind, ...] = ("voting", "stacking", "bagging")

_STACKING_FOLDS = 3
_BAGS = 5
_CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class Member:
    """One model an ensemble is made of: its candidate name (unique), unfitted estimator, and
    whether it converts to ONNX on its own."""

    name: str
    estimator: Any
    onnx: bool


@dataclass(frozen=True)
class Ensemble:
    """One unfitted ensemble estimator and what it is made of."""

    name: str
    kind: EnsembleKind
    members: tuple[str, ...]
    estimator: Any
    onnx: bool

    @property
    def params(self) -> dict[str, Any]:
        """What the leaderboard and MLflow record as this entry's parameters."""
        return {"kind": self.kind, "members": list(self.members)}


def build_ensembles(
    kinds: Sequence[EnsembleKind], task: str, members: Sequence[Member], seed: int
) -> list[Ensemble]:
    """The requested ensembles of ``members`` (best first) that make sense for ``task``.

    Voting and stacking need at least two members; bagging resamples the best one. Clustering
    has no ensembles here.

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> found = build_ensembles(["voting", "bagging"], "binary",
    ...     [Member("tree", DecisionTreeClassifier(), True),
    ...      Member("logistic", LogisticRegression(), True)], seed=0)
    >>> [(e.name, e.members) for e in found]
    [('voting', ('tree', 'logistic')), ('bagging', ('tree',))]
    """
    if task not in (*_CLASSIFICATION, "regression") or not members:
        return []
    out = []
    for kind in dict.fromkeys(kinds):
        chosen = list(members[:1]) if kind == "bagging" else list(members)
        if kind != "bagging" and len(chosen) < 2:
            continue
        estimator = _BUILDERS[kind](task, [(m.name, m.estimator) for m in chosen], seed)
        onnx = all(m.onnx for m in chosen)
        out.append(Ensemble(kind, kind, tuple(m.name for m in chosen), estimator, onnx))
    return out


def _voting(task: str, estimators: list[tuple[str, Any]], seed: int) -> Any:
    """Soft voting (mean of probabilities) for classification, mean prediction for regression."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    if task in _CLASSIFICATION:
        return VotingClassifier(estimators, voting="soft", flatten_transform=False)
    return VotingRegressor(estimators)


def _stacking(task: str, estimators: list[tuple[str, Any]], seed: int) -> Any:
    """A logistic (classification) or ridge (regression) model over the members' predictions."""
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    folds = StratifiedFolds(_STACKING_FOLDS, seed)
    if task in _CLASSIFICATION:
        return StackingClassifier(estimators, LogisticRegression(max_iter=1000), cv=folds,
                                  stack_method="predict_proba")
    return StackingRegressor(estimators, Ridge(), cv=folds)


def _bagging(task: str, estimators: list[tuple[str, Any]], seed: int) -> Any:
    """Bootstrap copies of the best model, averaged."""
    from sklearn.ensemble import BaggingClassifier, BaggingRegressor

    cls = BaggingClassifier if task in _CLASSIFICATION else BaggingRegressor
    return cls(estimators[0][1], n_estimators=_BAGS, random_state=seed)


_BUILDERS = {"voting": _voting, "stacking": _stacking, "bagging": _bagging}


def fits_per_fold(kind: EnsembleKind) -> float:
    """About how many fits of its members an ensemble's cross-validation costs per fold.

    Voting costs nothing: its members' out-of-fold predictions already give its score. Stacking
    fits each member on its ``k`` inner folds (each ``1 - 1/k`` of the rows: ``k - 1`` fits'
    worth) and once on all rows, ``k`` in all; bagging fits ``_BAGS`` bootstrap copies of the
    best member.

    >>> fits_per_fold("voting"), fits_per_fold("stacking"), fits_per_fold("bagging")
    (0.0, 3.0, 5.0)
    """
    if kind == "voting":
        return 0.0
    if kind == "stacking":
        return float(_STACKING_FOLDS)
    return float(_BAGS)
