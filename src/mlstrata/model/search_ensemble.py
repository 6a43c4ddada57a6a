"""Greedy ensemble selection (Caruana et al. 2004, as AutoGluon does) on out-of-fold predictions.

The search leaves a pool of cross-validated models, each with its out-of-fold predictions. Ensemble
selection starts from nothing and, round after round, adds the pool model (with replacement) that
makes the averaged out-of-fold predictions score best; the weights are how often each model was
added. The best round wins, so the ensemble never scores below the best single model on the
rows the selection saw. Nothing is fitted: a weighted soft-voting classifier (averaging regressor)
fitted on the same folds would predict exactly these averages, which is why its cross-validated
score is computed from the members' out-of-fold predictions at no cost (``average_results``).

>>> import numpy as np
>>> from mlstrata.model.cv import CVResult
>>> def oof(pred):
...     return CVResult("m", {}, {}, 0.0, 0.0, np.array(pred, float), None, np.ones(4, bool))
>>> y = np.array([1.0, 2.0, 3.0, 4.0])
>>> select_weights([oof([0, 2, 2, 4]), oof([2, 2, 4, 4])], y, "rmse", rounds=4)
[1, 1]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cv import CVResult
from .metrics import greater_is_better, rank_auc, score

__all__ = ["select_weights", "stacked_score", "voting_estimator"]

_ROUNDS = 25


def select_weights(pool: Sequence[CVResult], y: Any, metric: str,
                   rounds: int = _ROUNDS, deadline: float | None = None) -> list[int]:
    """How many times greedy selection with replacement picks each pool model (best round kept).

    Ties go to the earlier pool model, so the result is a pure function of the pool's
    predictions. Rows that some model has no out-of-fold prediction for are left out. With a
    ``deadline`` (``time.monotonic()``, time budgets only) no round starts after it: the best
    round so far is kept.
    """
    rows = np.logical_and.reduce([r.oof_mask for r in pool])
    target = np.asarray(y)[rows]
    classes = pool[0].classes
    outputs = [_output(r, rows) for r in pool]
    sign = 1.0 if greater_is_better(metric) else -1.0
    counts = [0] * len(pool)
    total = np.zeros_like(outputs[0])
    best: tuple[float, list[int]] = (-np.inf, counts)
    for n in range(1, rounds + 1):
        if deadline is not None and n > 1 and time.monotonic() > deadline:
            break
        trial = [sign * _score(metric, target, (total + out) / n, classes) for out in outputs]
        pick = int(np.nanargmax(trial)) if not np.all(np.isnan(trial)) else 0
        counts = [c + (i == pick) for i, c in enumerate(counts)]
        total = total + outputs[pick]
        if trial[pick] > best[0]:
            best = (trial[pick], counts)
    return best[1]


def _output(result: CVResult, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """What the ensemble averages: probabilities (classification) or predictions."""
    if result.oof_proba is not None:
        return np.asarray(result.oof_proba[rows], dtype=float)
    return np.asarray(result.oof_pred[rows], dtype=float)


def _score(metric: str, y: Any, blend: np.ndarray[Any, Any], classes: list[Any] | None) -> float:
    """The blend's score; binary ROC AUC from ranks (the loop scores pool × rounds blends, and
    scikit-learn's checks made that 8 s on 20,000 rows)."""
    if classes is None:
        return score(metric, y, blend)
    if metric == "roc_auc" and len(classes) == 2:
        return rank_auc(y == classes[-1], blend[:, -1])
    pred = np.asarray(classes)[np.argmax(blend, axis=1)]  # ints stay ints (digits' 0..9)
    return score(metric, y, pred, blend, None, classes)


def voting_estimator(task: str, members: Sequence[tuple[str, Any]], weights: Sequence[int]) -> Any:
    """The weighted soft-voting classifier (averaging regressor) of ``members``; converts to ONNX
    (skl2onnx multiplies each member's output by its normalized weight)."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    counts = np.asarray(weights, dtype=float)  # skl2onnx normalizes with ``weights.sum()``
    if task in ("binary", "multiclass"):
        return VotingClassifier(list(members), voting="soft", weights=counts,
                                flatten_transform=False)
    return VotingRegressor(list(members), weights=counts)


def stacked_score(pool: Sequence[CVResult], y: Any, task: str, metric: str, seed: int) -> float:
    """What stacking ``pool`` could score: its meta-model (logistic or ridge regression, as
    :func:`mlstrata.model.ensemble.build_ensembles` stacks) cross-validated on the members'
    out-of-fold predictions — seconds, where cross-validating the stack refits every member
    inside every fold. ``train`` cross-validates stacking only when this beats the best."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import cross_val_predict

    from .cv import StratifiedFolds

    rows = np.logical_and.reduce([r.oof_mask for r in pool])
    features = np.hstack([_output(r, rows).reshape(int(rows.sum()), -1) for r in pool])
    target = np.asarray(y)[rows]
    folds = StratifiedFolds(3, seed)
    if pool[0].classes is None:
        return score(metric, target, cross_val_predict(Ridge(), features, target, cv=folds))
    proba = cross_val_predict(LogisticRegression(max_iter=1000), features, target, cv=folds,
                              method="predict_proba")
    return _score(metric, target, proba, pool[0].classes)
