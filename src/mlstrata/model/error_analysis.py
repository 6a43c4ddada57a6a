"""Where a model is wrong: confusion, per-class metrics, calibration, residuals, segments.

Computed from out-of-fold (or validation) predictions, so every row is predicted by a model that did
not see it. The result is data first (:class:`ErrorAnalysis`, JSON-ready); :meth:`ErrorAnalysis.
html_sections` draws it for the training report with matplotlib.

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": [1, 2, 3, 4]})
>>> analysis = analyze_errors("regression", frame, [1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 3.0, 2.0])
>>> analysis.worst[0].actual, analysis.worst[0].loss
(4.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..reports import Fragment, figure_uri, image, paragraph, table

__all__ = [
    "CalibrationCurve",
    "ClassMetrics",
    "ErrorAnalysis",
    "Residuals",
    "SegmentError",
    "WorstPrediction",
    "analyze_errors",
]

_MAX_LEVELS = 12
_NUMERIC_BINS = 5
_PLOT_POINTS = 5000
_EPS = 1e-15


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class (one-vs-rest)."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class CalibrationCurve:
    """Mean predicted probability vs observed positive rate per probability bin (binary)."""

    predicted: list[float]
    observed: list[float]
    counts: list[int]
    brier: float


@dataclass(frozen=True)
class Residuals:
    """Regression errors: summary figures and a sample of (predicted, residual) for the plots."""

    mae: float
    rmse: float
    bias: float
    predicted: list[float]
    residual: list[float]


@dataclass(frozen=True)
class WorstPrediction:
    """One of the rows the model got most wrong, with its features."""

    row: int
    actual: Any
    predicted: Any
    loss: float
    features: dict[str, Any]


@dataclass(frozen=True)
class SegmentError:
    """The error on one segment: a categorical level or a numeric quantile bin of a feature.

    ``error`` is the error rate (classification) or the mean absolute error (regression).
    """

    column: str
    segment: str
    rows: int
    error: float


@dataclass(frozen=True)
class ErrorAnalysis:
    """Everything the training report shows about the winner's errors."""

    task: str
    overall_error: float
    labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    per_class: list[ClassMetrics] = field(default_factory=list)
    calibration: CalibrationCurve | None = None
    residuals: Residuals | None = None
    worst: list[WorstPrediction] = field(default_factory=list)
    segments: list[SegmentError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (plot samples of residuals left out)."""
        out = asdict(self)
        if self.residuals is not None:
            out["residuals"] = {k: v for k, v in out["residuals"].items()
                                if k not in ("predicted", "residual")}
        return out

    def worst_segments(self, n: int = 15) -> list[SegmentError]:
        """The ``n`` segments with the highest error (ties: the bigger segment first)."""
        return sorted(self.segments, key=lambda s: (-s.error, -s.rows))[:n]

    def figure_uris(self) -> dict[str, str]:
        """The plots as PNG data URIs by name (``confusion``, ``calibration``, ``residuals``)."""
        figures = {}
        if self.confusion:
            figures["confusion"] = _confusion_figure(self.labels, self.confusion)
        if self.calibration is not None:
            figures["calibration"] = _calibration_figure(self.calibration)
        if self.residuals is not None:
            figures["residuals"] = _residual_figure(self.residuals)
        return {name: figure_uri(figure) for name, figure in figures.items()}

    def html_sections(
        self, uris: dict[str, str] | None = None
    ) -> list[tuple[str, list[Fragment]]]:
        """Titled HTML sections with tables and the plots (``uris`` from :meth:`figure_uris`)."""
        plots = self.figure_uris() if uris is None else uris
        sections: list[tuple[str, list[Fragment]]] = []
        if self.confusion:
            sections.append(("Confusion matrix and per-class metrics", [
                image(plots["confusion"], "confusion matrix"),
                table([asdict(c) for c in self.per_class]),
            ]))
        if self.calibration is not None:
            sections.append(("Calibration", [
                paragraph(f"Brier score {self.calibration.brier:.4f} (lower is better)."),
                image(plots["calibration"], "calibration curve"),
            ]))
        if self.residuals is not None:
            r = self.residuals
            sections.append(("Residuals", [
                paragraph(f"MAE {r.mae:.4g}, RMSE {r.rmse:.4g}, mean residual {r.bias:.4g}."),
                image(plots["residuals"], "residual plots"),
            ]))
        sections.append(("Worst predictions", [table([_worst_row(w) for w in self.worst])]))
        sections.append(("Error by segment", [
            paragraph("Segments with the highest error (error rate, or MAE for regression)."),
            table([asdict(s) for s in self.worst_segments()]),
        ]))
        return sections


def analyze_errors(
    task: str,
    features: pd.DataFrame,
    actual: Sequence[Any] | np.ndarray[Any, Any] | pd.Series,
    predicted: Sequence[Any] | np.ndarray[Any, Any] | pd.Series,
    probabilities: np.ndarray[Any, Any] | None = None,
    classes: Sequence[Any] | None = None,
    *,
    top_n: int = 10,
) -> ErrorAnalysis:
    """Analyse out-of-fold predictions of a binary, multiclass or regression model.

    ``probabilities`` (rows × classes, columns in ``classes`` order) sharpen the per-row loss
    (log loss instead of 0/1) and give the calibration curve for binary tasks.
    """
    y = np.asarray(actual)
    pred = np.asarray(predicted)
    if task == "regression":
        loss = np.abs(y.astype(float) - pred.astype(float))
        return ErrorAnalysis(
            task, float(loss.mean()), residuals=_residuals(y.astype(float), pred.astype(float)),
            worst=_worst(features, y, pred, loss, top_n),
            segments=_segments(features, loss),
        )
    labels = list(classes) if classes is not None else sorted(set(y.tolist()) | set(pred.tolist()))
    wrong = (y != pred).astype(float)
    loss = _class_loss(y, probabilities, labels) if probabilities is not None else wrong
    calibration = None
    if task == "binary" and probabilities is not None and len(labels) == 2:
        calibration = _calibration(y == labels[1], probabilities[:, 1])
    confusion, per_class = _confusion(y, pred, labels)
    return ErrorAnalysis(
        task, float(wrong.mean()), labels=[str(v) for v in labels], confusion=confusion,
        per_class=per_class, calibration=calibration,
        worst=_worst(features, y, pred, loss, top_n), segments=_segments(features, wrong),
    )


def _confusion(
    y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], labels: list[Any]
) -> tuple[list[list[int]], list[ClassMetrics]]:
    """Counts (rows: actual, columns: predicted) and one-vs-rest metrics per class."""
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for a, p in zip(y.tolist(), pred.tolist(), strict=True):
        if a in index and p in index:
            counts[index[a], index[p]] += 1
    per_class = []
    for i, label in enumerate(labels):
        hits = counts[i, i]
        precision = hits / counts[:, i].sum() if counts[:, i].sum() else 0.0
        recall = hits / counts[i, :].sum() if counts[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassMetrics(str(label), float(precision), float(recall), float(f1),
                                      int(counts[i, :].sum())))
    return counts.tolist(), per_class


def _class_loss(
    y: np.ndarray[Any, Any], probabilities: np.ndarray[Any, Any], labels: list[Any]
) -> np.ndarray[Any, Any]:
    """Per-row log loss: minus the log of the probability given to the true class."""
    index = {label: i for i, label in enumerate(labels)}
    columns = np.array([index.get(v, -1) for v in y.tolist()])
    rows = np.arange(len(y))
    true_proba = np.where(columns >= 0, probabilities[rows, np.maximum(columns, 0)], 0.0)
    return np.asarray(-np.log(np.clip(true_proba, _EPS, 1.0)), dtype=float)


def _calibration(positive: np.ndarray[Any, Any], proba: np.ndarray[Any, Any],
                 bins: int = 10) -> CalibrationCurve:
    """Reliability diagram data with equal-width probability bins (empty bins left out)."""
    which = np.minimum((proba * bins).astype(int), bins - 1)
    predicted, observed, counts = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            predicted.append(float(proba[mask].mean()))
            observed.append(float(positive[mask].mean()))
            counts.append(int(mask.sum()))
    brier = float(np.mean((proba - positive.astype(float)) ** 2))
    return CalibrationCurve(predicted, observed, counts, brier)


def _residuals(y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]) -> Residuals:
    residual = y - pred
    sample = np.random.default_rng(0).permutation(len(y))[:_PLOT_POINTS]
    return Residuals(
        mae=float(np.abs(residual).mean()), rmse=float(np.sqrt((residual ** 2).mean())),
        bias=float(residual.mean()), predicted=pred[sample].tolist(),
        residual=residual[sample].tolist(),
    )


def _worst(features: pd.DataFrame, y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any],
           loss: np.ndarray[Any, Any], n: int) -> list[WorstPrediction]:
    order = np.argsort(-loss, kind="stable")[:n]
    return [
        WorstPrediction(int(i), _plain(y[i]), _plain(pred[i]), float(loss[i]),
                        {k: _plain(v) for k, v in features.iloc[int(i)].items()})
        for i in order
    ]


def _segments(features: pd.DataFrame, loss: np.ndarray[Any, Any]) -> list[SegmentError]:
    """The mean loss per level of each categorical feature and per quantile bin of each number."""
    out: list[SegmentError] = []
    errors = pd.Series(loss, index=features.index)
    for column in features.columns:
        groups = _segment_labels(features[column])
        if groups is None:
            continue
        stats = errors.groupby(groups, observed=True, sort=False).agg(["size", "mean"])
        out.extend(SegmentError(str(column), str(label), int(row["size"]), float(row["mean"]))
                   for label, row in stats.iterrows())
    return out


def _segment_labels(values: pd.Series) -> pd.Series | None:
    """A label per row: the level (rare ones as ``(other)``) or the quantile bin; None to skip."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_datetime64_any_dtype(values):
            return None
        text = values.astype("string").fillna("(missing)")
        top = text.value_counts().index[:_MAX_LEVELS]
        return text.where(text.isin(top), "(other)")
    numbers = values.astype(float)
    if numbers.nunique() <= _NUMERIC_BINS:
        return numbers.astype("string").fillna("(missing)")
    bins = pd.qcut(numbers, _NUMERIC_BINS, duplicates="drop")
    return bins.astype("string").fillna("(missing)")


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar (numpy scalars unwrapped, NaN and NaT as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return None if pd.isna(value) else str(value)


def _worst_row(w: WorstPrediction) -> dict[str, Any]:
    shown = ", ".join(f"{k}={v}" for k, v in list(w.features.items())[:8])
    return {"row": w.row, "actual": w.actual, "predicted": w.predicted, "loss": w.loss,
            "features": shown}


def _confusion_figure(labels: list[str], counts: list[list[int]]) -> Any:
    import matplotlib.pyplot as plt

    size = min(2 + 0.5 * len(labels), 9)
    figure, axes = plt.subplots(figsize=(size, size), layout="constrained")
    axes.imshow(np.asarray(counts), cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    top = max((max(r) for r in counts), default=0)
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center",
                      color="white" if count > top / 2 else "black")
    return figure


def _calibration_figure(curve: CalibrationCurve) -> Any:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.plot(curve.predicted, curve.observed, marker="o", label="model")
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("observed positive rate")
    axes.legend()
    return figure


def _residual_figure(residuals: Residuals) -> Any:
    import matplotlib.pyplot as plt

    figure, (scatter, histogram) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
    scatter.scatter(residuals.predicted, residuals.residual, s=4, alpha=0.4)
    scatter.axhline(0.0, color="grey", linestyle="--")
    scatter.set_xlabel("predicted")
    scatter.set_ylabel("actual − predicted")
    histogram.hist(residuals.residual, bins=40)
    histogram.set_xlabel("residual")
    return figure
