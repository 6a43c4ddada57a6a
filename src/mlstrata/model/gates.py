"""Business gates as written in ``mlstrata.yaml`` (``model.gates.metrics``), parsed and checked.

The grammar of one gate is::

    gate      := condition [ "at" condition ]
    condition := METRIC OP NUMBER          OP is one of >=  <=  >  <

``roc_auc >= 0.80`` and ``rmse <= 1200`` are plain thresholds on a metric. The ``at`` form is an
operating point of a binary classifier: ``recall >= 0.7 at precision >= 0.6`` scans every decision
threshold, keeps those where the second condition holds (precision at least 0.6), and checks the
first metric at the best of them (the highest recall there). Both metrics of an ``at`` gate must be
threshold metrics: ``precision``, ``recall``, ``specificity`` or ``fpr``.

>>> gate = parse_gate("recall >= 0.7 at precision >= 0.6")
>>> gate.condition.metric, gate.at.metric if gate.at else None
('recall', 'precision')
>>> parse_gate("rmse <= 1200").condition.holds(1100.0)
True
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "GATE_GRAMMAR",
    "OPERATING_POINT_METRICS",
    "COST_KEYS",
    "Condition",
    "CostChoice",
    "MetricGate",
    "OperatingPoint",
    "best_operating_point",
    "cost_threshold",
    "parse_gate",
]

GATE_GRAMMAR = ("'METRIC OP NUMBER' or 'METRIC OP NUMBER at METRIC OP NUMBER' with OP one of "
                ">=, <=, >, < (e.g. 'roc_auc >= 0.80', 'recall >= 0.7 at precision >= 0.6')")
OPERATING_POINT_METRICS = ("precision", "recall", "specificity", "fpr")
COST_KEYS = ("fp", "fn", "tp", "tn")

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
_CONDITION = r"([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_GATE = re.compile(rf"^\s*{_CONDITION}(?:\s+at\s+{_CONDITION})?\s*$")


@dataclass(frozen=True)
class Condition:
    """``metric op value``, e.g. ``roc_auc >= 0.8``."""

    metric: str
    op: str
    value: float

    def holds(self, observed: float) -> bool:
        """Whether ``observed`` satisfies the condition (NaN never does)."""
        return bool(_OPS[self.op](observed, self.value))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class MetricGate:
    """One parsed gate: a condition, optionally checked at an operating point (``at``)."""

    text: str
    condition: Condition
    at: Condition | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """The best decision threshold meeting a constraint, and both metrics there."""

    threshold: float
    value: float
    constraint_value: float


@dataclass(frozen=True)
class CostChoice:
    """The decision threshold of least total cost, that cost, and the cost at threshold 0.5."""

    threshold: float
    cost: float
    cost_per_row: float
    cost_at_half: float


def parse_gate(text: str, where: str = "model.gates.metrics") -> MetricGate:
    """Parse one gate expression; a ConfigError names ``where``, the text and the grammar."""
    match = _GATE.match(text)
    if match is None:
        raise ConfigError(f"mlstrata.yaml {where}: cannot parse gate '{text}'; "
                          f"write {GATE_GRAMMAR}")
    metric, op, value, at_metric, at_op, at_value = match.groups()
    condition = Condition(metric.lower(), op, float(value))
    if at_metric is None:
        return MetricGate(text.strip(), condition)
    at = Condition(at_metric.lower(), at_op, float(at_value))
    for part in (condition, at):
        if part.metric not in OPERATING_POINT_METRICS:
            raise ConfigError(
                f"mlstrata.yaml {where}: gate '{text}' uses '{part.metric}' in an 'at' form, "
                f"which needs threshold metrics ({', '.join(OPERATING_POINT_METRICS)}); "
                f"write {GATE_GRAMMAR}"
            )
    return MetricGate(text.strip(), condition, at)


def best_operating_point(
    gate: MetricGate, positive: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]
) -> OperatingPoint | None:
    """The threshold where ``gate.at`` holds and ``gate.condition``'s metric is best, or None.

    ``positive`` is a boolean array of the true labels, ``scores`` the positive-class scores. A row
    is predicted positive when its score is >= the threshold; every distinct score is tried.
    "Best" means highest for ``>``/``>=`` conditions and lowest for ``<``/``<=``.
    """
    if gate.at is None:
        raise ValueError(f"gate '{gate.text}' has no operating point")
    curves = _threshold_curves(positive, scores)
    feasible = _OPS[gate.at.op](curves[gate.at.metric], gate.at.value)
    if not feasible.any():
        return None
    values = np.where(feasible, curves[gate.condition.metric], np.nan)
    best = int(np.nanargmax(values) if gate.condition.op in (">", ">=") else np.nanargmin(values))
    return OperatingPoint(float(curves["threshold"][best]), float(values[best]),
                          float(curves[gate.at.metric][best]))


def cost_threshold(
    costs: dict[str, float], positive: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]
) -> CostChoice:
    """The threshold minimizing ``fp*FP + fn*FN + tp*TP + tn*TN`` (missing keys cost 0).

    Every distinct score is tried as a threshold (predict positive when score >= threshold), plus
    "never positive" (a threshold just above the highest score).

    >>> choice = cost_threshold({"fp": 1, "fn": 5}, np.array([0, 0, 1, 1]),
    ...                         np.array([0.1, 0.3, 0.2, 0.9]))
    >>> choice.threshold, choice.cost
    (0.2, 1.0)
    """
    unknown = sorted(set(costs) - set(COST_KEYS))
    if unknown:
        raise ConfigError(f"mlstrata.yaml model.gates.cost_matrix: unknown key(s) {unknown}; "
                          f"use {', '.join(COST_KEYS)} (the cost of each outcome, e.g. "
                          "{fp: 1, fn: 5})")
    c = {key: float(costs.get(key, 0.0)) for key in COST_KEYS}
    positive = np.asarray(positive, dtype=bool)
    curves = _threshold_curves(positive, scores)
    pos, neg = float(positive.sum()), float(len(positive) - positive.sum())
    tp = np.r_[0.0, curves["tp"]]
    fp = np.r_[0.0, curves["fp"]]
    thresholds = np.r_[np.nextafter(scores.max(), np.inf), curves["threshold"]]
    total = c["tp"] * tp + c["fp"] * fp + c["fn"] * (pos - tp) + c["tn"] * (neg - fp)
    best = int(np.argmin(total))
    predicted = scores >= 0.5
    at_half = (c["tp"] * (predicted & positive).sum() + c["fp"] * (predicted & ~positive).sum()
               + c["fn"] * (~predicted & positive).sum() + c["tn"] * (~predicted & ~positive).sum())
    return CostChoice(float(thresholds[best]), float(total[best]),
                      float(total[best] / len(positive)), float(at_half))


def _threshold_curves(
    positive: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]
) -> dict[str, np.ndarray[Any, Any]]:
    """TP, FP, precision, recall, specificity, FPR at every distinct score used as threshold."""
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    ranked, truth = scores[order], positive[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tp, fp = np.cumsum(truth)[last], np.cumsum(1.0 - truth)[last]
    pos, neg = truth.sum(), len(truth) - truth.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = fp / neg if neg else np.zeros_like(fp)
        return {
            "threshold": ranked[last],
            "tp": tp,
            "fp": fp,
            "precision": tp / (tp + fp),
            "recall": tp / pos if pos else np.zeros_like(tp),
            "fpr": fpr,
            "specificity": 1.0 - fpr,
        }
