"""Decay: the model's live performance per window, on the predictions that got feedback.

Feedback lines (``kind: feedback``) carry the true label of a logged prediction, whenever it
arrives; :func:`.logreader.labelled_sql` joins each prediction to its newest label. Per window
this module computes, with the model's own metric code (:mod:`mlstrata.model.metrics`) and
gates (:func:`mlstrata.model.evaluate.check_metric_gates`):

- the label coverage (labelled predictions / predictions);
- every metric the reference estimated on the validation rows, binary label metrics at the
  decision threshold chosen at packaging (the cost matrix's, else 0.5), from the logged
  probabilities;
- the gates of ``model.gates`` as they were at packaging.

A window **decays** when it has at least ``min_labels`` labelled predictions and a gate fails
or a metric is worse than the validation estimate's bootstrap interval (below its lower bound,
or above the upper bound for a loss or an error) *beyond noise*: the gap between the window's
value and the validation estimate must also exceed 1.96 standard errors of a difference, each
standard error read off a bootstrap interval (the window's own, and the validation one). A
window of a thousand labels wobbles by ±0.03 AUC and a validation estimate of a thousand rows
by as much: without the second condition, noise alone crosses the validation interval in about
one window in seven. Labels that are none of the model's classes are counted and left out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.acceptance import bootstrap_interval
from ..model.evaluate import GateResult, ModelScores, check_metric_gates
from ..model.metrics import greater_is_better
from .reference import MetricEstimate, Reference, defined_metric

__all__ = ["WINDOW_RESAMPLES", "MetricCheck", "WindowDecay", "window_decay"]

WINDOW_RESAMPLES = 200
_Z95 = 1.959964  # a 95 % interval spans ±1.96 standard errors
"""Bootstrap resamples of a window's labelled rows (only for a metric outside its interval)."""


@dataclass(frozen=True)
class MetricCheck:
    """A live metric against the validation estimate's interval."""

    metric: str
    value: float | None
    validation: float
    low: float | None
    high: float | None
    worse: bool
    window_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"metric": self.metric, "value": self.value, "validation": self.validation,
                "validation_ci95": [self.low, self.high], "worse": self.worse,
                "window_ci95": list(self.window_interval) if self.window_interval else None}


@dataclass(frozen=True)
class WindowDecay:
    """Live performance in one window."""

    labelled: int
    coverage: float
    unknown_labels: int
    evaluated: bool
    metrics: list[MetricCheck] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)

    @property
    def decayed(self) -> bool:
        """A gate failed or a metric is worse than its validation interval (with enough
        labels)."""
        return self.evaluated and (any(not g.passed for g in self.gates)
                                   or any(m.worse for m in self.metrics))

    @property
    def reasons(self) -> list[str]:
        """Why the window decayed, one phrase per failed gate or metric."""
        if not self.evaluated:
            return []
        found = [f"gate {g.gate} failed ({_fmt(g.observed)})" for g in self.gates if not g.passed]
        found += [f"{m.metric} {_fmt(m.value)} outside the validation interval "
                  f"[{_fmt(m.low)}, {_fmt(m.high)}]" for m in self.metrics if m.worse]
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"labelled": self.labelled, "coverage": self.coverage,
                "unknown_labels": self.unknown_labels, "evaluated": self.evaluated,
                "decayed": self.decayed, "reasons": self.reasons,
                "metrics": [m.to_dict() for m in self.metrics],
                "gates": [g.to_dict() for g in self.gates]}


def window_decay(reference: Reference, rows: int, labelled: Any, min_labels: int
                 ) -> WindowDecay:
    """The decay verdict of one window of ``rows`` predictions, ``labelled`` being its labelled
    predictions (a DataFrame with ``label``, ``prediction`` and ``p<k>`` per class)."""
    truth, predicted, proba, unknown = _arrays(reference, labelled)
    count = len(truth)
    coverage = count / rows if rows else 0.0
    validation = reference.validation
    if validation is None or count < min_labels:
        return WindowDecay(count, coverage, unknown, False)
    scores = ModelScores(truth, predicted, proba, reference.classes)
    if validation.threshold is not None and proba is not None:
        scores = scores.at_threshold(validation.threshold)
    checks = [_check(scores, name, estimate) for name, estimate in validation.metrics.items()]
    return WindowDecay(count, coverage, unknown, True, checks, _gates(validation.gates, scores))


def _check(scores: ModelScores, name: str, estimate: MetricEstimate) -> MetricCheck:
    """One metric against its validation interval, and — when outside it — the gap to the
    validation estimate against the noise of both (see the module docstring)."""
    value = defined_metric(scores, name)
    better = greater_is_better(name)
    outside = value is not None and (
        (estimate.low is not None and value < estimate.low) if better
        else (estimate.high is not None and value > estimate.high))
    if value is None or not outside:
        return MetricCheck(name, value, estimate.value, estimate.low, estimate.high, False)
    interval = _window_interval(scores, name)
    if interval is None or estimate.low is None or estimate.high is None:
        return MetricCheck(name, value, estimate.value, estimate.low, estimate.high, False,
                           interval)
    spread = np.hypot((interval[1] - interval[0]) / _Z95 / 2,
                      (estimate.high - estimate.low) / _Z95 / 2)
    gap = (estimate.value - value) if better else (value - estimate.value)
    return MetricCheck(name, value, estimate.value, estimate.low, estimate.high,
                       bool(gap > _Z95 * spread), interval)


def _window_interval(scores: ModelScores, name: str) -> tuple[float, float] | None:
    """The percentile-bootstrap 95 % interval of a metric on the window's labelled rows."""
    rows = len(scores.y_true)
    rng = np.random.default_rng(0)
    resamples = (rng.integers(0, rows, size=rows) for _ in range(WINDOW_RESAMPLES))
    return bootstrap_interval(scores, name, resamples)


def _arrays(reference: Reference, labelled: Any) -> tuple[Any, Any, Any, int]:
    """Labels, predictions and the probability matrix of the rows whose label is a class."""
    if reference.task == "regression":
        truth = np.asarray(labelled["label"], dtype=np.float64)
        predicted = np.asarray(labelled["prediction"], dtype=np.float64)
        keep = np.isfinite(truth) & np.isfinite(predicted)
        return truth[keep], predicted[keep], None, int((~keep).sum())
    truth = np.asarray(labelled["label"].astype(str), dtype=object)
    classes = reference.classes or []
    keep = np.isin(truth, classes) if classes else np.ones(len(truth), dtype=bool)
    predicted = np.asarray(labelled["prediction"].astype(str), dtype=object)[keep]
    proba = None
    columns = [f"p{k}" for k in range(len(classes))]
    if classes and all(c in labelled.columns for c in columns):
        matrix = labelled[columns].to_numpy(dtype=np.float64)[keep]
        if len(matrix) and np.isfinite(matrix).all():
            proba = matrix
    return truth[keep], predicted, proba, int((~keep).sum())


def _gates(config: Any, scores: ModelScores) -> list[GateResult]:
    """The metric gates on the window's labelled predictions (none when undefined)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return check_metric_gates(config, scores)
        except ValueError:
            return []


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
