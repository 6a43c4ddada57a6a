"""The leakage guard: features that would make a model look better than it can ever be.

Before training, :func:`screen_features` looks at each feature column of the training rows and
reports:

- ``constant``: a single value (or none) — nothing to learn from;
- ``identifier``: a distinct value per row that is text, has an id-like name (``id``,
  ``customer_id``, ``orderKey``...) or is a dense integer counter — it can only memorise rows;
- ``leakage``: the column alone predicts the target almost perfectly (cross-validated score
  ≥ ``leakage_threshold``): a copy of the label, a log of the target, an id that encodes it.
  Numbers and dates are scored with a shallow decision tree (ROC AUC for classification, R² for
  regression, where a rank correlation of ±0.99 and up — a monotonic function of the target —
  counts as well); text with an out-of-fold lookup of the target per level. For regression,
  columns that together add up linearly to the target (``total = principal + interest``) are
  found by one least-squares fit on every numeric column plus a drop-one refit per column.

Limits: combinations other than linear ones of numeric columns (ratios, products, a sum of
text-coded parts) and combinations in classification are not searched; a text identifier that
encodes the target is reported as an identifier, not as leakage. Scores come from at most
``max_rows`` sampled rows, so a column that leaks on a few rows only can pass.

Columns in ``model.features.keep`` are reported with ``kept: True``; the feature plan keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import FeatureConfig
from ..data.types import ColumnInfo
from .cv import StratifiedFolds

__all__ = ["identifier_reason", "identifier_reason_of", "screen_features"]

_ID_TOKENS = {"id", "uuid", "guid", "key"}
_UNIQUE_RATIO = 0.95
_MIN_ROWS = 20
_EXACT_R2 = 0.9999
_FOLDS = 3

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def screen_features(
    frame: pd.DataFrame,
    target: str | None,
    task: str,
    columns: Sequence[ColumnInfo],
    config: FeatureConfig,
    *,
    max_rows: int = 5000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Findings ``{column, reason, score, detail, kept}`` for the feature ``columns`` of
    ``frame`` (training rows only), one per flagged column.

    ``task`` is binary, multiclass, regression or clustering (no leakage scoring without a
    target). ``reason`` is ``constant``, ``identifier`` or ``leakage``.
    """
    features = [c for c in columns if c.name != target]
    sample = frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame
    y = _target_codes(sample[target], task) if target and task != "clustering" else None
    findings: list[dict[str, Any]] = []
    for info in features:
        finding = _screen_column(frame[info.name], sample[info.name], info, y, task, config)
        if finding is not None:
            findings.append(finding)
    if y is not None and task == "regression":
        flagged = {f["column"]: f["reason"] for f in findings}
        numeric = [c.name for c in features if c.type in ("integer", "float", "boolean")
                   and flagged.get(c.name) in (None, "leakage")]
        findings += [f for f in _linear_parts(sample, numeric, y, config.leakage_threshold)
                     if f["column"] not in flagged]
    for finding in findings:
        finding["kept"] = finding["column"] in config.keep
    return findings


def _finding(column: str, reason: str, score: float, detail: str) -> dict[str, Any]:
    return {"column": column, "reason": reason, "score": round(float(score), 6), "detail": detail}


def _screen_column(
    full: pd.Series, sample: pd.Series, info: ColumnInfo, y: FloatArray | None, task: str,
    config: FeatureConfig,
) -> dict[str, Any] | None:
    """The most serious finding for one column: constant, then leakage, then identifier."""
    present = full.dropna()
    distinct = int(present.nunique())
    if distinct <= 1:
        what = "no values" if distinct == 0 else f"a single value ({present.iloc[0]})"
        return _finding(info.name, "constant", 1.0, f"has {what}")
    if y is not None:
        score, detail = _single_score(sample, info, y, task)
        if score >= config.leakage_threshold:
            return _finding(info.name, "leakage", score, f"alone predicts the target: {detail}")
    why = _identifier(present, info, distinct)
    if why:
        return _finding(info.name, "identifier", distinct / len(present), why)
    return None


def identifier_reason(values: pd.Series, info: ColumnInfo) -> str:
    """Why the column ``info`` holding ``values`` is an identifier that can only memorise rows
    (the rule this guard applies before training; online models are created with it too),
    or ``""``."""
    present = values.dropna()
    return _identifier(present, info, int(present.nunique()))


def _identifier(present: pd.Series, info: ColumnInfo, distinct: int) -> str:
    """Why a column with (nearly) one value per row is an identifier, or ``""``."""
    span = None
    if info.type == "integer" and len(present):
        values = present.to_numpy(dtype=np.float64)
        span = (float(values.min()), float(values.max()))
    return identifier_reason_of(info, len(present), distinct, span)


def identifier_reason_of(info: ColumnInfo, count: int, distinct: int,
                         span: tuple[float, float] | None = None) -> str:
    """:func:`identifier_reason` from a column's counts — ``count`` present values, ``distinct``
    of them, an integer column's ``(min, max)`` — which one query over a whole table gives
    without loading it (a sample cannot show a row counter: its keys are not dense).

    >>> from mlstrata.data.types import ColumnInfo
    >>> identifier_reason_of(ColumnInfo("n", "integer", "BIGINT"), 300_000, 300_000, (1, 300_000))
    'a dense integer sequence with a distinct value per row (a row counter)'
    """
    if count < _MIN_ROWS or distinct < _UNIQUE_RATIO * count:
        return ""
    if info.type == "text":
        return "text with a distinct value per row (an identifier or free text)"
    tokens = [t.lower() for t in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", info.name)]
    if tokens and (tokens[0] in _ID_TOKENS or tokens[-1] in _ID_TOKENS):
        return "an id-like name with a distinct value per row"
    if info.type == "integer" and span is not None and span[1] - span[0] + 1 <= 1.05 * distinct:
        return "a dense integer sequence with a distinct value per row (a row counter)"
    return ""


def _target_codes(target: pd.Series, task: str) -> FloatArray:
    """The target as floats: class codes for classification, values for regression."""
    if task == "regression":
        return np.asarray(target.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    _, codes = np.unique(target.astype(str).to_numpy(), return_inverse=True)
    return codes.astype(np.float64)


def _single_score(sample: pd.Series, info: ColumnInfo, y: FloatArray,
                  task: str) -> tuple[float, str]:
    """How well the column alone predicts ``y`` out of fold, and a sentence saying so."""
    keep = ~np.isnan(y)
    if info.type == "text":
        prediction = _level_lookup(sample.to_numpy()[keep], y[keep], task)
    else:
        x = _as_number(sample, info)[keep]
        prediction = _tree_predictions(x, y[keep], task)
    if task == "regression":
        r2 = _r2(y[keep], prediction)
        rho = _rank_correlation(_as_number(sample, info)[keep], y[keep]) \
            if info.type != "text" else 0.0
        if rho * rho > r2:
            return rho * rho, f"rank correlation {rho:+.4f} (a monotonic function of it)"
        return r2, f"R² {r2:.4f}"
    auc = _auc(y[keep], prediction)
    return auc, f"ROC AUC {auc:.4f}"


def _as_number(series: pd.Series, info: ColumnInfo) -> FloatArray:
    """Numbers, booleans and dates (seconds since 1970) as floats, NaN where missing."""
    if info.type in ("date", "timestamp"):
        stamps = pd.to_datetime(series, errors="coerce", utc=True)
        since = stamps - pd.Timestamp(0, tz="UTC")
        series = since.dt.total_seconds()
    return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _folds(y: FloatArray, task: str) -> Any:
    from sklearn.model_selection import KFold

    if task != "regression":
        counts = np.bincount(y.astype(np.int64))
        if int(counts[counts > 0].min()) < 2:  # a fold would miss a class: no stratifying
            return KFold(_FOLDS, shuffle=True, random_state=0)
    return StratifiedFolds(_FOLDS, seed=0)


def _tree_predictions(x: FloatArray, y: FloatArray, task: str) -> FloatArray:
    """Out-of-fold predictions (class probabilities) of a shallow tree on one column."""
    from sklearn.model_selection import cross_val_predict
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if task == "regression":
        model: Any = DecisionTreeRegressor(max_depth=6, min_samples_leaf=5, random_state=0)
        return np.asarray(cross_val_predict(model, x.reshape(-1, 1), y, cv=_folds(y, task)))
    depth = max(3, int(np.ceil(np.log2(max(2, len(np.unique(y)))))) + 1)
    model = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=5, random_state=0)
    return np.asarray(cross_val_predict(model, x.reshape(-1, 1), y, cv=_folds(y, task),
                                        method="predict_proba"))


def _level_lookup(levels: np.ndarray[Any, Any], y: FloatArray, task: str) -> FloatArray:
    """Out-of-fold predictions of a per-level lookup of the target (class shares or mean)."""
    keys = pd.Series(levels).astype(str).fillna("(missing)").to_numpy()
    classes = np.unique(y) if task != "regression" else None
    targets = (y.reshape(-1, 1) == classes).astype(np.float64) if classes is not None \
        else y.reshape(-1, 1)
    out = np.empty_like(targets)
    for train, held in _folds(y, task).split(keys.reshape(-1, 1), y):
        table = pd.DataFrame(targets[train]).groupby(keys[train]).mean()
        prior = targets[train].mean(axis=0)
        looked = table.reindex(keys[held]).to_numpy()
        out[held] = np.where(np.isnan(looked), prior, looked)
    return out if classes is not None else out.ravel()


def _auc(y: FloatArray, proba: FloatArray) -> float:
    from sklearn.metrics import roc_auc_score

    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=np.unique(y)))


def _r2(y: FloatArray, prediction: FloatArray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 0.0 if total == 0 else 1.0 - float(np.sum((y - prediction) ** 2)) / total


def _rank_correlation(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rho on the rows where ``x`` is present (ties ranked by order)."""
    keep = ~np.isnan(x)
    if keep.sum() < 3:
        return 0.0
    rx, ry = (np.argsort(np.argsort(v[keep])).astype(np.float64) for v in (x, y))
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def _linear_parts(sample: pd.DataFrame, numeric: list[str], y: FloatArray,
                  threshold: float) -> list[dict[str, Any]]:
    """Columns that together add up linearly to the target, each one needed for the fit."""
    if len(numeric) < 2:
        return []
    x = sample[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    rows = ~np.isnan(x).any(axis=1) & ~np.isnan(y)
    if rows.sum() <= len(numeric) + 1:
        return []
    x, target = x[rows], y[rows]
    full = _linear_r2(x, target)
    if full < max(threshold, _EXACT_R2):
        return []
    parts = [j for j in range(len(numeric))
             if _linear_r2(np.delete(x, j, axis=1), target) < _EXACT_R2]
    return [_finding(numeric[j], "leakage", full,
                     f"with {', '.join(numeric[k] for k in parts if k != j)} it adds up "
                     f"linearly to the target (R² {full:.6f})")
            for j in parts]


def _linear_r2(x: FloatArray, y: FloatArray) -> float:
    design = np.column_stack([x, np.ones(len(x))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return _r2(y, design @ coef)
