"""The reference a model is monitored against: ``reference.json`` in its package.

``mlstrata package`` computes it once, from the rows the model was built on, and it is never
recomputed per check (``mlstrata monitor`` only reads it; the manifest hashes it like every file):

- ``inputs``: the training rows' distribution of every model input — a number on a fine
  quantile grid with its decile bins, a category (text, boolean) as level counts, a date or
  timestamp as its missing rate only (dates move on by nature; drifting "time" is no news);
- ``predictions``: what the model answered on the validation rows (the training rows when there
  is no split) — the shares of the predicted labels and the probability of the positive class
  (binary), the predicted labels (multiclass, clustering) or the predicted values (regression);
- ``validation``: the model's metrics on the validation rows, each with a percentile-bootstrap
  95 % interval (:func:`mlstrata.model.acceptance.bootstrap_interval`), the decision threshold
  the cost matrix chose, and the gates of ``model.gates`` at packaging time — what live,
  labelled predictions are held to.

Categories and class labels are spelled as the prediction log spells them (booleans ``true`` /
``false``, see :func:`mlstrata.runtime.signature.class_key`).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import GateConfig
from ..errors import DataError
from ..model.acceptance import TASK_METRICS, bootstrap_interval
from ..model.evaluate import ModelScores, gate_metrics, model_scores
from ..model.gates import cost_threshold
from ..model.metrics import metric_names
from ..runtime.manifest import load_manifest
from ..runtime.signature import class_key
from .sketch import CategorySketch, NumberSketch

__all__ = [
    "REFERENCE_FILE",
    "REFERENCE_FORMAT",
    "InputSketch",
    "MetricEstimate",
    "MissingReferenceError",
    "PredictionReference",
    "PresenceSketch",
    "Reference",
    "ValidationReference",
    "build_reference",
    "category_text",
    "defined_metric",
    "load_reference",
]

REFERENCE_FILE = "reference.json"
REFERENCE_FORMAT = 1
BOOTSTRAP_RESAMPLES = 200
_NUMBER_TYPES = ("integer", "float")
_CATEGORY_TYPES = ("text", "boolean")
_SUPERVISED = ("binary", "multiclass", "regression")


class MissingReferenceError(DataError):
    """A package holds no ``reference.json`` (it was built before packages carried one)."""


@dataclass(frozen=True)
class PresenceSketch:
    """A date or timestamp input: how many values were present and missing."""

    rows: int
    missing: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": "date", "rows": self.rows, "missing": self.missing}


InputSketch = NumberSketch | CategorySketch | PresenceSketch


@dataclass(frozen=True)
class PredictionReference:
    """The model's answers on the reference rows: label shares and/or a score distribution."""

    rows: int
    labels: CategorySketch | None
    score: NumberSketch | None
    score_name: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rows": self.rows, "labels": self.labels.to_dict() if self.labels else None,
                "score": self.score.to_dict() if self.score else None,
                "score_name": self.score_name}


@dataclass(frozen=True)
class MetricEstimate:
    """A validation metric and its percentile-bootstrap 95 % interval."""

    value: float
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"value": self.value, "ci95": [self.low, self.high]}


@dataclass(frozen=True)
class ValidationReference:
    """Validation metrics with intervals, the decision threshold and the gates."""

    rows: int
    threshold: float | None
    metrics: dict[str, MetricEstimate]
    gates: GateConfig
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rows": self.rows, "threshold": self.threshold,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
                "gates": self.gates.model_dump(), "bootstrap": {
                    "resamples": self.resamples, "interval": "percentile 95%"}}


@dataclass(frozen=True)
class Reference:
    """Everything ``mlstrata monitor`` compares a model's live traffic with."""

    model: str
    version: int
    task: str
    target: str | None
    classes: list[str] | None
    training_rows: int
    inputs: dict[str, InputSketch]
    predictions: PredictionReference
    validation: ValidationReference | None

    @property
    def positive(self) -> str | None:
        """The positive class key of a binary model (the last class), else None."""
        return self.classes[-1] if self.task == "binary" and self.classes else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``reference.json``)."""
        return {"format_version": REFERENCE_FORMAT, "model": self.model,
                "version": self.version, "task": self.task, "target": self.target,
                "classes": self.classes, "training_rows": self.training_rows,
                "inputs": {name: s.to_dict() for name, s in self.inputs.items()},
                "predictions": self.predictions.to_dict(),
                "validation": self.validation.to_dict() if self.validation else None}

    def to_json(self) -> str:
        """``reference.json``'s text."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        """Read the form written by :meth:`to_dict`."""
        predictions = data["predictions"]
        return cls(
            str(data["model"]), int(data["version"]), str(data["task"]), data.get("target"),
            list(data["classes"]) if data.get("classes") is not None else None,
            int(data["training_rows"]),
            {str(name): _input_from_dict(entry) for name, entry in data["inputs"].items()},
            PredictionReference(
                int(predictions["rows"]),
                CategorySketch.from_dict(predictions["labels"]) if predictions["labels"]
                else None,
                NumberSketch.from_dict(predictions["score"]) if predictions["score"] else None,
                predictions.get("score_name")),
            _validation_from_dict(data.get("validation")))


def build_reference(
    model: str,
    version: int,
    task: str,
    target: str | None,
    inputs: Sequence[tuple[str, str]],
    training: Any,
    pipeline: Any,
    validation: tuple[Any, Any] | None,
    primary: str | None,
    gates: GateConfig,
) -> Reference:
    """Compute a model's reference from its training rows and validation rows.

    ``inputs`` are the model's input columns and their logical types; ``training`` the training
    rows (a DataFrame); ``validation`` the validation features and labels, or None without a
    split (the predictions are then taken on the training rows and no metric is estimated).
    """
    sketches = {name: _input_sketch(kind, training[name] if name in training.columns else None,
                                    len(training)) for name, kind in inputs}
    names = [name for name, _ in inputs]
    features = validation[0][names] if validation is not None else training[names]
    labels = validation[1] if validation is not None and target is not None else None
    scores = _scores(pipeline, features, labels, task)
    classes = [class_key(c) for c in scores.classes] if scores.classes is not None else None
    estimates = (_validation(scores, task, primary, gates)
                 if labels is not None and task in _SUPERVISED else None)
    return Reference(model, version, task, target, classes, len(training), sketches,
                     _predictions(scores, task, classes), estimates)


def load_reference(package: Path) -> Reference:
    """The reference of the package in ``package``; a missing one is a one-line error naming
    the command that repackages the model."""
    path = package / REFERENCE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        manifest = load_manifest(package)
        raise MissingReferenceError(
            f"{package} has no {REFERENCE_FILE}: it was packaged before packages carried the "
            "training distribution that monitoring compares with; repackage the model with "
            f"'mlstrata package {manifest.model_name}@{manifest.model_version}' (and serve the "
            "new package)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); repackage the model with 'mlstrata "
                        "package MODEL'") from exc
    version = data.get("format_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or version > REFERENCE_FORMAT:
        raise DataError(f"{path}: format_version {version!r} is newer than this mlstrata reads "
                        f"(<= {REFERENCE_FORMAT}); upgrade mlstrata")
    try:
        return Reference.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a valid reference ({exc}); repackage the model with "
                        "'mlstrata package MODEL'") from exc


def category_text(value: Any) -> str | None:
    """A category value as the prediction log spells it (None for missing)."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def _input_sketch(kind: str, values: Any, rows: int) -> InputSketch:
    """The sketch of one input column (absent from the training rows: all missing)."""
    if values is None:
        return PresenceSketch(0, rows)
    if kind in _NUMBER_TYPES:
        import pandas as pd

        return NumberSketch.from_values(
            pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
    if kind in _CATEGORY_TYPES:
        return _levels(values)
    missing = int(values.isna().sum())
    return PresenceSketch(len(values) - missing, missing)


def _levels(values: Any) -> CategorySketch:
    """The level counts of a pandas Series, levels spelled as the log spells them."""
    counter: Counter[str] = Counter()
    for level, count in values.value_counts(dropna=True).items():
        text = category_text(level)
        if text is not None:
            counter[text] += int(count)
    return CategorySketch.from_counts(counter, int(values.isna().sum()))


def _scores(pipeline: Any, features: Any, labels: Any, task: str) -> ModelScores:
    """The model's answers on ``features`` (labels: the true ones, or placeholders)."""
    if task not in _SUPERVISED:
        predicted = np.asarray(pipeline.predict(features))
        return ModelScores(predicted, predicted, None, None)
    truth = labels if labels is not None else np.zeros(len(features))
    return model_scores(pipeline, features, truth)


def _predictions(scores: ModelScores, task: str, classes: list[str] | None) -> PredictionReference:
    rows = len(scores.y_pred)
    if task == "regression":
        values = np.asarray(scores.y_pred, dtype=np.float64)
        return PredictionReference(rows, None, NumberSketch.from_values(values), "value")
    import pandas as pd

    labels = _levels(pd.Series(scores.y_pred.tolist(), dtype=object))
    positive = scores.positive_scores
    if positive is None or classes is None:
        return PredictionReference(rows, labels, None, None)
    return PredictionReference(rows, labels, NumberSketch.from_values(positive),
                               f"probability of {classes[-1]}")


def _validation(scores: ModelScores, task: str, primary: str | None,
                gates: GateConfig) -> ValidationReference:
    """Validation metrics with bootstrap intervals, at the cost matrix's threshold if any."""
    threshold = None
    positive = scores.positive_scores
    if positive is not None and scores.classes is not None:
        threshold = 0.5
        if gates.cost_matrix is not None:
            threshold = cost_threshold(dict(gates.cost_matrix),
                                       scores.y_true == scores.classes[1], positive).threshold
        scores = scores.at_threshold(threshold)
    known = metric_names(task)
    names = dict.fromkeys([*([primary] if primary in known else []),
                           *(m for m in gate_metrics(gates) if m in known), *known[:TASK_METRICS]])
    rng = np.random.default_rng(0)
    rows = len(scores.y_true)
    estimates = {}
    for name in names:
        value = defined_metric(scores, name)
        if value is None:
            continue
        resamples = (rng.integers(0, rows, size=rows) for _ in range(BOOTSTRAP_RESAMPLES))
        interval = bootstrap_interval(scores, name, resamples)
        low, high = interval if interval is not None else (None, None)
        estimates[name] = MetricEstimate(value, low, high)
    return ValidationReference(rows, threshold, estimates, gates, BOOTSTRAP_RESAMPLES)


def defined_metric(scores: ModelScores, name: str) -> float | None:
    """A metric on every row, or None where it is undefined (e.g. one class in the rows)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = scores.metric(name)
        except ValueError:
            return None
    return value if np.isfinite(value) else None


def _input_from_dict(entry: Mapping[str, Any]) -> InputSketch:
    kind = entry.get("kind")
    if kind == "number":
        return NumberSketch.from_dict(entry)
    if kind == "category":
        return CategorySketch.from_dict(entry)
    if kind == "date":
        return PresenceSketch(int(entry["rows"]), int(entry["missing"]))
    raise ValueError(f"unknown input kind {kind!r}")


def _validation_from_dict(data: Mapping[str, Any] | None) -> ValidationReference | None:
    if not data:
        return None
    metrics = {str(name): MetricEstimate(float(m["value"]), _opt(m["ci95"][0]),
                                         _opt(m["ci95"][1]))
               for name, m in data["metrics"].items()}
    return ValidationReference(int(data["rows"]), _opt(data.get("threshold")), metrics,
                               GateConfig.model_validate(data.get("gates") or {}),
                               int((data.get("bootstrap") or {}).get("resamples", 0)))


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
