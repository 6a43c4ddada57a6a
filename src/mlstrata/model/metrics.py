"""Metrics by task: which ones exist, which one ranks the leaderboard, and how each is computed.

One name space for the leaderboard, the gates and the acceptance test. Probabilities are passed
as a ``(rows, classes)`` matrix whose columns follow ``labels`` (the fitted model's ``classes_``);
for binary tasks the positive class is the last label. Clustering metrics read the transformed
features ``X`` and the predicted cluster ids.

>>> primary_metric("binary", None)
'roc_auc'
>>> score("accuracy", [0, 1, 1], [0, 1, 0])
0.6666666666666666
>>> greater_is_better("rmse")
False
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["THRESHOLD_FREE", "greater_is_better", "metric_names", "primary_metric", "rank_auc",
           "score", "scores"]

_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "f1",
               "precision", "recall", "log_loss", "brier"),
    "multiclass": ("f1_macro", "accuracy", "balanced_accuracy", "log_loss", "roc_auc"),
    "regression": ("rmse", "mae", "r2", "mape"),
    "clustering": ("silhouette", "davies_bouldin"),
}
_LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "mape", "davies_bouldin"})
_NEEDS_PROBA = frozenset({"roc_auc", "average_precision", "log_loss", "brier"})
THRESHOLD_FREE = _NEEDS_PROBA
"""Metrics computed from scores, so a decision threshold does not change them."""
_SILHOUETTE_SAMPLE = 5_000


def metric_names(task: str) -> list[str]:
    """The metrics reported for ``task``, the default primary metric first."""
    if task not in _METRICS:
        raise ConfigError(f"model.task: unknown task {task!r}; use one of {', '.join(_METRICS)}")
    return list(_METRICS[task])


def primary_metric(task: str, configured: str | None) -> str:
    """The metric that ranks candidates: ``configured`` when valid for ``task``, else the default.

    Defaults: ROC AUC (binary), macro F1 (multiclass, every class counts equally), RMSE
    (regression), silhouette (clustering).
    """
    names = metric_names(task)
    if configured is None:
        return names[0]
    if configured not in names:
        close = difflib.get_close_matches(configured, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"use one of {', '.join(names)}"
        raise ConfigError(f"model.metric: {configured!r} is not a {task} metric; {hint}")
    return configured


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better (false for losses and errors)."""
    return metric not in _LOWER_IS_BETTER


def score(
    metric: str,
    y_true: Any,
    y_pred: Any,
    y_proba: Any = None,
    X: Any = None,
    labels: Sequence[Any] | None = None,
) -> float:
    """The value of ``metric`` for one set of predictions."""
    if metric in ("silhouette", "davies_bouldin"):
        return _cluster_score(metric, X, np.asarray(y_pred))
    y_true = np.asarray(y_true)
    if metric in _NEEDS_PROBA:
        if y_proba is None:
            raise ValueError(f"metric {metric!r} needs predicted probabilities")
        labels = list(labels) if labels is not None else sorted(np.unique(y_true))
        return _proba_score(metric, y_true, np.asarray(y_proba, dtype=float), labels)
    return _label_score(metric, y_true, np.asarray(y_pred), labels)


def scores(
    task: str,
    y_true: Any,
    y_pred: Any,
    y_proba: Any = None,
    X: Any = None,
    labels: Sequence[Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Every metric of ``task`` (or just ``metrics``) for one set of predictions."""
    chosen = metrics if metrics is not None else metric_names(task)
    return {m: score(m, y_true, y_pred, y_proba, X, labels) for m in chosen}


def rank_auc(positive: Any, values: Any) -> float:
    """Binary ROC AUC from ranks (Mann-Whitney U, ties averaged), NaN with one class only.

    The value :func:`score` gives for ``roc_auc``, at a fraction of scikit-learn's per-call cost
    (its input checks): for loops that score thousands of blends or resamples.

    >>> from sklearn.metrics import roc_auc_score
    >>> y = np.array([0, 0, 1, 1, 0, 1]); p = np.array([.1, .4, .35, .8, .4, .4])
    >>> bool(np.isclose(rank_auc(y == 1, p), roc_auc_score(y, p)))
    True
    """
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    hits = int(positive.sum())
    misses = len(positive) - hits
    if hits == 0 or misses == 0:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[positive].sum() - hits * (hits + 1) / 2) / (hits * misses))


def _positive(labels: Sequence[Any] | None, y_true: np.ndarray[Any, Any]) -> Any:
    return (list(labels) if labels is not None else sorted(np.unique(y_true)))[-1]


def _proba_score(
    metric: str, y_true: np.ndarray[Any, Any], proba: np.ndarray[Any, Any], labels: list[Any]
) -> float:
    from sklearn import metrics as skm

    if metric == "log_loss":  # float32 probabilities (XGBoost) sum to 1 only within 1e-7
        rows = np.asarray(proba, dtype=np.float64)
        return float(skm.log_loss(y_true, rows / rows.sum(axis=1, keepdims=True), labels=labels))
    if proba.ndim == 2 and len(labels) > 2:
        return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
    positive = proba[:, -1] if proba.ndim == 2 else proba
    is_positive = y_true == labels[-1]
    fn = {"roc_auc": skm.roc_auc_score, "average_precision": skm.average_precision_score,
          "brier": skm.brier_score_loss}[metric]
    return float(fn(is_positive, positive))


def _label_score(
    metric: str, y_true: np.ndarray[Any, Any], y_pred: np.ndarray[Any, Any],
    labels: Sequence[Any] | None,
) -> float:
    from sklearn import metrics as skm

    if metric in ("f1", "precision", "recall"):
        fn = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}
        pos = _positive(labels, y_true)
        return float(fn[metric](y_true, y_pred, pos_label=pos, zero_division=0))
    simple = {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "rmse": skm.root_mean_squared_error,
        "mae": skm.mean_absolute_error,
        "r2": skm.r2_score,
        "mape": skm.mean_absolute_percentage_error,
    }
    if metric == "f1_macro":
        return float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    if metric not in simple:
        known = sorted({m for names in _METRICS.values() for m in names})
        close = difflib.get_close_matches(metric, known, n=3) or known
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(close)}")
    return float(simple[metric](y_true, y_pred))


def _cluster_score(metric: str, X: Any, clusters: np.ndarray[Any, Any]) -> float:
    """Silhouette (on a fixed sample of at most 5,000 rows) or Davies-Bouldin; NaN for 1 cluster.

    A single cluster has no separation to measure, so NaN says "undefined" instead of raising.
    """
    from sklearn import metrics as skm

    if X is None:
        raise ValueError(f"metric {metric!r} needs the transformed features X")
    if len(np.unique(clusters)) < 2:
        return float("nan")
    if metric == "davies_bouldin":
        return float(skm.davies_bouldin_score(X, clusters))
    sample = min(len(clusters), _SILHOUETTE_SAMPLE)
    return float(skm.silhouette_score(X, clusters, sample_size=sample, random_state=0))
