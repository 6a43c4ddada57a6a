"""Cross-validation: folds, one scored pass of a pipeline over them, and k for clustering.

Every fold fits a *fresh* pipeline on its training rows only, so preprocessing learns nothing
from the rows it is scored on. The out-of-fold predictions are kept for error analysis and for
stacking. Folds are stratified for classification and regression by the rule of the held-out
split (:func:`mlstrata.data.split.stratified_positions`: a value with at least k rows is a
stratum, rarer values are binned in value order), shuffled k-fold for clustering, and
forward-chaining (``TimeSeriesSplit``) over the time order when asked.

>>> folds = make_folds("binary", [0, 1] * 5, n_splits=5, strategy="auto", seed=0)
>>> [len(test) for _, test in folds]
[2, 2, 2, 2, 2]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.split import stratified_positions
from ..errors import ConfigError, DataError
from .metrics import score

__all__ = ["CVResult", "Fold", "StratifiedFolds", "average_results", "choose_k", "cross_validate",
           "make_folds"]

Fold = tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.intp]]]
_STRATEGIES = ("auto", "kfold", "stratified", "time")
_CLASSIFICATION = ("binary", "multiclass")
_STRATIFIABLE = (*_CLASSIFICATION, "regression")


def make_folds(
    task: str,
    y: Any,
    n_splits: int,
    strategy: str,
    seed: int,
    time_order: np.ndarray[Any, Any] | None = None,
) -> list[Fold]:
    """Row positions ``(train, test)`` of each fold.

    ``y`` is the target (for clustering any sequence as long as the data). ``strategy`` is
    ``auto`` (stratified for classification and regression, k-fold for clustering), ``kfold``,
    ``stratified`` or ``time``; ``time`` needs ``time_order``, one sortable value per row, and
    never trains on rows later than the ones it tests. Stratified folds deal the rows, stratum by
    stratum in value order, round-robin to the folds, so every fold holds within one row of
    ``1 / n_splits`` of every stratum and the fold sizes differ by at most one row.
    """
    from sklearn.model_selection import KFold, TimeSeriesSplit

    labels = pd.Series(np.asarray(y, dtype=object) if task != "clustering" else np.zeros(len(y)))
    _check_rows(task, labels, n_splits)
    if strategy not in _STRATEGIES:
        raise ConfigError(f"model.cv.strategy: unknown {strategy!r}; use {', '.join(_STRATEGIES)}")
    if strategy == "time":
        if time_order is None:
            raise ConfigError(
                "model.cv.strategy: time needs a time column; declare one or use auto"
            )
        order = np.argsort(np.asarray(time_order), kind="stable")
        splits = TimeSeriesSplit(n_splits=n_splits).split(order)
        return [(order[tr], order[te]) for tr, te in splits]
    if strategy == "stratified" or (strategy == "auto" and task in _STRATIFIABLE):
        if task not in _STRATIFIABLE:
            raise ConfigError(f"model.cv.strategy: stratified needs a classification or "
                              f"regression task, not {task}; use kfold or auto")
        if task in _CLASSIFICATION:
            _check_classes(labels)
        return list(StratifiedFolds(n_splits, seed).split(labels, np.asarray(y)))
    splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(np.zeros(len(labels)))]


class StratifiedFolds:
    """A scikit-learn CV splitter dealing rows to folds by the held-out rule (module docstring).

    For the splits scikit-learn makes itself — stacking's inner folds, the leakage screen — so
    that every place mlstrata stratifies follows one rule: a rare class or a continuous target
    is stratified on value bins, never refused or left out of a fold.

    >>> y = [5.0, 1.0, 3.0, 2.0]  # value bins {1, 2} and {3, 5}: each fold tests one of each
    >>> [[y[i] for i in test] for _, test in StratifiedFolds(2, seed=0).split(None, y)]
    [[5.0, 1.0], [3.0, 2.0]]
    """

    def __init__(self, n_splits: int = 5, seed: int = 0) -> None:
        self.n_splits = n_splits
        self.seed = seed

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds."""
        return self.n_splits

    def split(self, X: Any, y: Any, groups: Any = None) -> Any:
        """``(train, test)`` row positions of each fold, stratified on ``y``."""
        places = stratified_positions(np.asarray(y), min_rows=self.n_splits, seed=self.seed)
        fold = np.asarray(places, dtype=np.intp) % self.n_splits
        for i in range(self.n_splits):
            yield np.flatnonzero(fold != i), np.flatnonzero(fold == i)


def _check_rows(task: str, labels: pd.Series, n_splits: int) -> None:
    if task != "clustering" and bool(labels.isna().any()):
        raise DataError(f"target has {int(labels.isna().sum())} missing values; drop or impute "
                        f"them in the cleaning recipe before training")
    if len(labels) < n_splits:
        raise DataError(f"{len(labels)} training rows are fewer than model.cv.folds={n_splits}; "
                        f"lower the folds or add rows")
    if task in _CLASSIFICATION and labels.nunique() < 2:
        raise DataError(f"target has a single class ({labels.iloc[0]!r}); classification needs "
                        f"at least two")


def _check_classes(labels: pd.Series) -> None:
    """Every class needs two rows: dealt to two folds, each fold then trains on one of them."""
    counts = labels.value_counts()
    if int(counts.min()) < 2:
        raise DataError(
            f"class {counts.idxmin()!r} has 1 row; cross-validation needs at least 2 rows of each "
            f"class so that every fold trains on it; add rows of that class or drop it"
        )


@dataclass
class CVResult:
    """One candidate's cross-validation: metric mean ± std, fold scores, timing, OOF predictions.

    ``fit_seconds`` and ``predict_seconds`` are means per fold. ``oof_pred`` / ``oof_proba`` hold
    each row's prediction by the fold that did not train on it; ``oof_mask`` says which rows have
    one (time-series folds never test the earliest rows). ``classes`` orders ``oof_proba``.
    """

    candidate: str
    metrics: dict[str, tuple[float, float]]
    fold_scores: dict[str, list[float]]
    fit_seconds: float
    predict_seconds: float
    oof_pred: np.ndarray[Any, Any]
    oof_proba: np.ndarray[Any, Any] | None
    oof_mask: np.ndarray[Any, np.dtype[np.bool_]]
    params: dict[str, Any] = field(default_factory=dict)
    classes: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able summary (no per-row arrays)."""
        return {
            "candidate": self.candidate,
            "metrics": {m: {"mean": mean, "std": std} for m, (mean, std) in self.metrics.items()},
            "fold_scores": self.fold_scores,
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "params": self.params,
            "classes": self.classes,
        }


def cross_validate(
    pipeline_factory: Callable[[], Any],
    X: pd.DataFrame,
    y: pd.Series | None,
    folds: Sequence[Fold],
    task: str,
    metrics: Sequence[str],
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
    *,
    candidate: str | None = None,
    params: dict[str, Any] | None = None,
) -> CVResult:
    """Fit a fresh ``pipeline_factory()`` on each fold's training rows and score its test rows.

    ``on_fold(i, scores)`` is called after fold ``i`` with that fold's score per metric (for
    progress bars and trial pruning; it may raise to stop early). ``candidate`` names the result
    (default: the final estimator's class).
    """
    classes = sorted(pd.unique(y)) if y is not None and task in _CLASSIFICATION else None
    target = np.asarray(y) if y is not None else np.zeros(len(X))
    out = _OutOfFold(len(X), target.dtype, classes)
    fold_scores: dict[str, list[float]] = {m: [] for m in metrics}
    fit_times, predict_times, name = [], [], candidate
    for i, (train, test) in enumerate(folds):
        pipe = pipeline_factory()
        start = time.perf_counter()
        pipe.fit(X.iloc[train], None if y is None else y.iloc[train])
        fit_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        pred, proba = _predict(pipe, X.iloc[test], task, classes)
        predict_times.append(time.perf_counter() - start)
        out.put(test, pred, proba)
        extra = pipe[:-1].transform(X.iloc[test]) if task == "clustering" else None
        scores = {m: score(m, target[test], pred, proba, extra, classes) for m in metrics}
        for m, value in scores.items():
            fold_scores[m].append(value)
        name = name or type(pipe[-1]).__name__
        if on_fold is not None:
            on_fold(i, scores)
    return CVResult(
        candidate=name or "pipeline",
        metrics={m: (float(np.mean(v)), float(np.std(v))) for m, v in fold_scores.items()},
        fold_scores=fold_scores,
        fit_seconds=float(np.mean(fit_times)) if fit_times else 0.0,
        predict_seconds=float(np.mean(predict_times)) if predict_times else 0.0,
        oof_pred=out.pred, oof_proba=out.proba, oof_mask=out.mask,
        params=dict(params or {}), classes=classes,
    )


def _predict(
    pipe: Any, X: pd.DataFrame, task: str, classes: list[Any] | None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Predictions and, for classifiers, probabilities aligned to all ``classes``.

    A fold's model may have seen fewer classes than the whole target; its columns are placed
    under the classes it knows and the others get probability 0.
    """
    pred = np.asarray(pipe.predict(X))
    if classes is None:
        return pred, None
    fold_proba = np.asarray(pipe.predict_proba(X), dtype=float)
    proba = np.zeros((len(X), len(classes)))
    for j, cls in enumerate(pipe.classes_):
        proba[:, classes.index(cls)] = fold_proba[:, j]
    return pred, proba


def average_results(
    results: Sequence[CVResult],
    y: pd.Series,
    folds: Sequence[Fold],
    task: str,
    metrics: Sequence[str],
    *,
    candidate: str,
    params: dict[str, Any] | None = None,
    weights: Sequence[float] | None = None,
) -> CVResult:
    """The cross-validation of the model averaging ``results``' models, without fitting it.

    On the same folds, a soft-voting classifier (or averaging regressor) fits exactly its members'
    models and averages their probabilities (predictions), so its out-of-fold predictions are the
    mean of the members' — scored here fold by fold. Its timings are the sums of theirs.
    ``weights`` (one per result, as ``VotingClassifier(weights=...)`` takes them) makes the mean
    a weighted one.
    """
    first = results[0]
    classes = first.classes
    target = np.asarray(y)
    pred = first.oof_pred.copy()
    proba = None
    if classes is not None:
        proba = np.average([r.oof_proba for r in results if r.oof_proba is not None], axis=0,
                           weights=weights)
        rows = first.oof_mask
        pred[rows] = np.asarray(classes, dtype=object)[np.argmax(proba[rows], axis=1)]
    else:
        pred = np.average([r.oof_pred for r in results], axis=0, weights=weights)
    fold_scores = {m: [score(m, target[test], pred[test], None if proba is None
                             else proba[test], None, classes) for _, test in folds]
                   for m in metrics}
    return CVResult(
        candidate=candidate,
        metrics={m: (float(np.mean(v)), float(np.std(v))) for m, v in fold_scores.items()},
        fold_scores=fold_scores,
        fit_seconds=float(sum(r.fit_seconds for r in results)),
        predict_seconds=float(sum(r.predict_seconds for r in results)),
        oof_pred=pred, oof_proba=proba, oof_mask=first.oof_mask.copy(),
        params=dict(params or {}), classes=classes,
    )


class _OutOfFold:
    """Collects each fold's test predictions into whole-data arrays."""

    def __init__(self, rows: int, dtype: np.dtype[Any], classes: list[Any] | None) -> None:
        self.pred = np.empty(rows, dtype=dtype if classes is not None else float)
        self.proba = None if classes is None else np.full((rows, len(classes)), np.nan)
        self.mask = np.zeros(rows, dtype=bool)

    def put(self, rows: np.ndarray[Any, Any], pred: np.ndarray[Any, Any],
            proba: np.ndarray[Any, Any] | None) -> None:
        self.pred[rows] = pred
        if self.proba is not None and proba is not None:
            self.proba[rows] = proba
        self.mask[rows] = True


def choose_k(
    X_transformed: Any, k_range: Sequence[int] = range(2, 11), seed: int = 0
) -> tuple[int, list[dict[str, float]]]:
    """The number of clusters with the best silhouette, and the silhouette/Davies-Bouldin table.

    Each k is fitted with k-means on the (already preprocessed) features; a k that is not
    smaller than the number of rows is skipped.
    """
    from sklearn.cluster import KMeans

    rows = len(X_transformed)
    ks = [k for k in k_range if 2 <= k < rows]
    if not ks:
        raise DataError(f"{rows} rows cannot be clustered into any k in {list(k_range)}; "
                        f"clustering needs more rows than clusters")
    table = []
    for k in ks:
        clusters = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit_predict(X_transformed)
        table.append({
            "k": float(k),
            "silhouette": score("silhouette", None, clusters, X=X_transformed),
            "davies_bouldin": score("davies_bouldin", None, clusters, X=X_transformed),
        })
    best = max(table, key=lambda row: -np.inf if np.isnan(row["silhouette"]) else row["silhouette"])
    return int(best["k"]), table
