"""Champion against challenger on the same sealed test rows: a paired bootstrap of the metric.

Both models score the **same** sealed rows — the newest batch's slice and, separately, the whole
sealed history — each after its own training data's cleaning (the fitted recipes between the
ingested version and its training version, replayed with their frozen statistics). A row that
either model's cleaning drops (a ``filter`` step) is left out for both, so the two figures are
always paired row by row.

The bootstrap draws ``n`` resamples of those rows with replacement (seeded) and computes, on each,
the challenger's improvement over the champion (challenger minus champion, or champion minus
challenger for a metric where lower is better). The interval is the central ``confidence``
share of those improvements; the challenger beats the champion by ``margin`` with
``confidence`` when the interval's lower end is above ``margin`` (a one-sided test at level
``1 - confidence``; the upper end is reported for symmetry).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.clean import fitted_recipes_since_ingest
from ..data.datasets import workspace_connection
from ..data.engine import parquet_scan
from ..data.recipe import apply_fitted
from ..errors import DataError
from ..model.artifact import load_model
from ..model.evaluate import ModelScores, find_evaluation, model_scores
from ..model.metrics import greater_is_better, rank_auc
from ..workspace import ACCEPTANCE_PURPOSE, Artifact, Workspace

__all__ = ["SliceComparison", "compare_models", "paired_bootstrap"]

_ROW = "__mlstrata_sealed_row"


@dataclass(frozen=True)
class SliceComparison:
    """Champion and challenger on one set of sealed rows, with the improvement's interval."""

    slice: str
    rows: int
    metric: str
    challenger: float
    champion: float | None
    improvement: float | None
    low: float | None
    high: float | None
    confidence: float
    resamples: int

    def beats(self, margin: float) -> bool:
        """True when the improvement's lower bound is above ``margin`` (or there is no
        champion to beat)."""
        return self.low is None or self.low > margin

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"slice": self.slice, "rows": self.rows, "metric": self.metric,
                "challenger": self.challenger, "champion": self.champion,
                "improvement": self.improvement,
                f"ci{round(self.confidence * 100)}": [self.low, self.high],
                "confidence": self.confidence, "resamples": self.resamples}


def paired_bootstrap(
    champion: ModelScores, challenger: ModelScores, metric: str, *, resamples: int, seed: int,
    confidence: float,
) -> tuple[float, float, float]:
    """The improvement of ``challenger`` over ``champion`` (same rows, same order) on ``metric``
    and the central ``confidence`` interval of its bootstrap distribution.

    >>> y = np.array([0, 1] * 50)
    >>> good = ModelScores(y, y, None, None)
    >>> bad = ModelScores(y, np.where(np.arange(100) % 4 == 0, 1 - y, y), None, None)
    >>> point, low, high = paired_bootstrap(bad, good, "accuracy", resamples=200, seed=0,
    ...                                     confidence=0.95)
    >>> round(point, 2), low > 0
    (0.25, True)
    """
    sign = 1.0 if greater_is_better(metric) else -1.0
    point = sign * (challenger.metric(metric) - champion.metric(metric))
    rng = np.random.default_rng(seed)
    n = len(challenger.y_true)
    measure = _auc_on if _binary_auc(metric, challenger, champion) else _safe
    draws = []
    for rows in rng.integers(0, n, size=(resamples, n)):
        draws.append(sign * (measure(challenger, metric, rows) - measure(champion, metric, rows)))
    values = np.asarray(draws, dtype=float)
    if np.isnan(values).all():
        raise DataError(f"{metric} is undefined on every bootstrap resample of the {n} sealed "
                        "rows (one class only?); compare on more rows or another metric")
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(point), float(low), float(high)


def compare_models(
    ws: Workspace, champion: Artifact | None, challenger: Artifact,
    slices: Sequence[tuple[str, Sequence[Artifact]]], *, metric: str, resamples: int, seed: int,
    confidence: float,
) -> list[SliceComparison]:
    """Score both models on each named slice of sealed test sets and compare them there."""
    models = [m for m in (challenger, champion) if m is not None]
    loaded = {m.id: load_model(ws, m.ref)[1] for m in models}
    results = []
    for name, testsets in slices:
        frames = {m.id: _sealed_rows(ws, m, testsets) for m in models}
        common = _common_rows(frames.values())
        if not len(common):
            raise DataError(f"no sealed row of the {name} slice survives both models' cleaning; "
                            "the comparison needs rows both can score")
        scored = {m.id: _scores(ws, m, loaded[m.id], frames[m.id].loc[common]) for m in models}
        new = scored[challenger.id]
        if champion is None:
            results.append(SliceComparison(name, len(common), metric, new.metric(metric), None,
                                           None, None, None, confidence, resamples))
            continue
        old = scored[champion.id]
        point, low, high = paired_bootstrap(old, new, metric, resamples=resamples, seed=seed,
                                            confidence=confidence)
        results.append(SliceComparison(name, len(common), metric, new.metric(metric),
                                       old.metric(metric), point, low, high, confidence,
                                       resamples))
    return results


def _sealed_rows(ws: Workspace, model: Artifact, testsets: Sequence[Artifact]) -> pd.DataFrame:
    """The sealed rows of ``testsets`` cleaned as ``model``'s training data was, indexed by a
    row identity (test set, row) that survives the cleaning."""
    dataset = ws.get(str(model.meta["dataset"]))
    parts = []
    for number, testset in enumerate(testsets):
        path = ws.path_for_read(testset, ACCEPTANCE_PURPOSE)
        parts.append(f"SELECT * EXCLUDE (file_row_number), "
                     f"{number} * 1000000000 + file_row_number AS {_ROW} FROM "
                     f"{parquet_scan(path, 'file_row_number = true')}")
    sql = " UNION ALL BY NAME ".join(parts)
    con = workspace_connection(ws)
    try:
        for _, fitted in fitted_recipes_since_ingest(ws, dataset)[1]:
            sql = apply_fitted(con, fitted, sql)
        frame = con.execute(sql).df()
    finally:
        con.close()
    if _ROW not in frame.columns:
        raise DataError(f"the cleaning recipe of {model.ref} drops the row identity of the sealed "
                        "rows; a recipe should not 'keep' a fixed list of columns")
    return frame.set_index(_ROW)


def _common_rows(frames: Any) -> pd.Index:
    common: pd.Index | None = None
    for frame in frames:
        common = frame.index if common is None else common.intersection(frame.index)
    return pd.Index([]) if common is None else common.sort_values()


def _scores(ws: Workspace, model: Artifact, pipeline: Any, rows: pd.DataFrame) -> ModelScores:
    """The model's outputs on ``rows`` at its evaluated decision threshold (if any)."""
    inputs = [column["name"] for column in model.meta["inputs"]]
    scores = model_scores(pipeline, rows[inputs], rows[str(model.meta["target"])])
    evaluation = find_evaluation(ws, model)
    threshold = evaluation.meta.get("threshold") if evaluation is not None else None
    return scores.at_threshold(float(threshold)) if threshold is not None else scores


def _binary_auc(metric: str, *scores: ModelScores) -> bool:
    return metric == "roc_auc" and all(s.positive_scores is not None for s in scores)


def _auc_on(scores: ModelScores, metric: str, rows: np.ndarray[Any, Any]) -> float:
    """ROC AUC of a binary model on ``rows`` (:func:`rank_auc`: scikit-learn's value at a
    fraction of its per-call cost, for thousands of resamples).

    >>> from sklearn.metrics import roc_auc_score
    >>> y = np.array([0, 0, 1, 1, 0, 1]); p = np.array([.1, .4, .35, .8, .4, .4])
    >>> s = ModelScores(y, y, np.c_[1 - p, p], [0, 1])
    >>> rows = np.arange(6)
    >>> bool(np.isclose(_auc_on(s, "roc_auc", rows), roc_auc_score(y, p)))
    True
    """
    values = scores.positive_scores
    if not scores.classes or values is None:
        return float("nan")
    return rank_auc(scores.y_true[rows] == scores.classes[1], values[rows])


def _safe(scores: ModelScores, metric: str, rows: np.ndarray[Any, Any]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return scores.metric(metric, rows)
        except ValueError:
            return float("nan")
