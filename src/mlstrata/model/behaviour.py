"""Behavioural tests of the acceptance test: invariance, directional and minimum functionality.

Declared in ``mlstrata.yaml`` under ``model.tests`` and run on probe rows (the sealed test rows,
at most :data:`MAX_PROBE_ROWS` of them). The *score* of a row is the positive-class probability
of a binary classifier, the class-probability vector of a multiclass one (a change is the largest
change of any class) and the prediction of a regressor.

* ``invariance`` — setting ``column`` to each of ``values`` on every probe row must not move any
  row's score by more than ``epsilon``.
* ``directional`` — as ``column`` increases (through ``values`` sorted, or by default its 10th to
  90th percentiles in the probe rows), the score must move in ``direction``: for ``decreasing``
  no step may raise it by more than ``epsilon``, for ``increasing`` none may lower it by more.
  "More income must not raise the default probability" is ``column: income, direction:
  decreasing``. Binary classifiers and regressors only.
* ``minimum`` — each of ``cases`` gives some input values plus ``expected`` (the predicted label
  must equal it) and/or ``min`` / ``max`` (the score must lie in the range); the other inputs are
  taken from a typical probe row (median of numeric columns, most frequent value of the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import BehaviouralTest
from ..errors import ConfigError

__all__ = ["CASE_KEYS", "MAX_PROBE_ROWS", "BehaviourResult", "run_behavioural_tests"]

MAX_PROBE_ROWS = 200
CASE_KEYS = ("expected", "min", "max")
_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class BehaviourResult:
    """One behavioural test's verdict: how many probes were checked, how many failed, and why."""

    name: str
    kind: str
    passed: bool
    checked: int
    failures: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "kind": self.kind, "passed": self.passed,
                "checked": self.checked, "failures": self.failures, "detail": self.detail}


def run_behavioural_tests(
    pipeline: Any, rows: pd.DataFrame, tests: Sequence[BehaviouralTest], seed: int = 0
) -> list[BehaviourResult]:
    """Run every test on (a seeded sample of) ``rows``, the model's raw input columns."""
    for test in tests:
        _check_declaration(test, list(rows.columns), pipeline)
    probe = rows.sample(n=min(len(rows), MAX_PROBE_ROWS), random_state=seed) if len(rows) else rows
    runners = {"invariance": _invariance, "directional": _directional, "minimum": _minimum}
    return [runners[test.kind](pipeline, probe, test) for test in tests]


def _check_declaration(test: BehaviouralTest, inputs: list[str], pipeline: Any) -> None:
    """Refuse a test whose declaration cannot run, naming the test and what to write instead."""
    where = f"mlstrata.yaml model.tests '{test.name}'"
    if test.kind != "minimum" and test.column not in inputs:
        raise ConfigError(f"{where}: column {test.column!r} is not an input of the model; use one "
                          f"of {', '.join(inputs)}")
    if test.kind == "invariance" and not test.values:
        raise ConfigError(f"{where}: an invariance test needs 'values' to set {test.column} to")
    if test.kind == "directional":
        if test.direction is None:
            raise ConfigError(f"{where}: a directional test needs 'direction: increasing' or "
                              "'direction: decreasing' (how the score moves as the column grows)")
        if len(getattr(pipeline, "classes_", ())) > 2:
            raise ConfigError(f"{where}: directional tests need a binary classifier or a "
                              "regressor; this model has more than two classes")
    if test.kind == "minimum":
        if not test.cases:
            raise ConfigError(f"{where}: a minimum-functionality test needs 'cases'")
        for i, case in enumerate(test.cases):
            unknown = sorted(set(case) - set(inputs) - set(CASE_KEYS))
            if unknown or not set(case) & set(CASE_KEYS):
                raise ConfigError(
                    f"{where}: case {i + 1} "
                    + (f"names unknown column(s) {unknown}" if unknown else "expects nothing")
                    + "; give input columns and 'expected' (a label) and/or 'min'/'max' (a score)"
                )


def _scores(pipeline: Any, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Scores as a 2-D array: positive-class probability, class probabilities, or prediction."""
    if hasattr(pipeline, "predict_proba"):
        proba = np.asarray(pipeline.predict_proba(frame), dtype=float)
        return proba[:, 1:] if proba.shape[1] == 2 else proba
    return np.asarray(pipeline.predict(frame), dtype=float).reshape(-1, 1)


def _invariance(pipeline: Any, probe: pd.DataFrame, test: BehaviouralTest) -> BehaviourResult:
    base = _scores(pipeline, probe)
    moved = np.zeros(len(probe))
    for value in test.values:
        changed = _scores(pipeline, probe.assign(**{str(test.column): value}))
        moved = np.maximum(moved, np.abs(changed - base).max(axis=1))
    failures = int((moved > test.epsilon).sum())
    worst = float(moved.max()) if len(moved) else 0.0
    detail = (f"setting {test.column} to {test.values} moved the score by up to {worst:.4g} "
              f"(epsilon {test.epsilon:g})")
    return BehaviourResult(test.name, test.kind, failures == 0, len(probe), failures, detail)


def _directional(pipeline: Any, probe: pd.DataFrame, test: BehaviouralTest) -> BehaviourResult:
    column = str(test.column)
    grid = sorted(test.values) if test.values else _quantile_grid(probe, test)
    steps = np.hstack([_scores(pipeline, probe.assign(**{column: v})) for v in grid])
    rises = np.diff(steps, axis=1)
    against = rises if test.direction == "decreasing" else -rises
    worst = against.max(axis=1) if against.shape[1] else np.zeros(len(probe))
    failures = int((worst > test.epsilon).sum())
    moved = "rose" if test.direction == "decreasing" else "fell"
    detail = (f"as {column} goes through {[round(float(v), 4) for v in grid]} the score "
              f"{moved} by up to {float(max(worst.max(initial=0.0), 0.0)):.4g} "
              f"(must be {test.direction}, epsilon {test.epsilon:g})")
    return BehaviourResult(test.name, test.kind, failures == 0, len(probe), failures, detail)


def _quantile_grid(probe: pd.DataFrame, test: BehaviouralTest) -> list[float]:
    values = pd.to_numeric(probe[str(test.column)], errors="coerce").dropna()
    if values.empty:
        raise ConfigError(f"mlstrata.yaml model.tests '{test.name}': column {test.column} has no "
                          "numeric values to increase; give 'values' in increasing order")
    return sorted({float(q) for q in np.quantile(values, _GRID)})


def _minimum(pipeline: Any, probe: pd.DataFrame, test: BehaviouralTest) -> BehaviourResult:
    typical = _typical_row(probe)
    frame = pd.DataFrame([{**typical, **{k: v for k, v in case.items() if k not in CASE_KEYS}}
                          for case in test.cases])[list(probe.columns)]
    labels = pipeline.predict(frame)
    scores = _scores(pipeline, frame)[:, -1]
    reasons = [_case_failure(case, label, float(value))
               for case, label, value in zip(test.cases, labels, scores, strict=True)]
    wrong = [f"case {i + 1}: {why}" for i, why in enumerate(reasons) if why]
    detail = "; ".join(wrong) or f"all {len(test.cases)} cases as expected"
    return BehaviourResult(test.name, test.kind, not wrong, len(test.cases), len(wrong), detail)


def _case_failure(case: dict[str, Any], label: Any, score: float) -> str:
    """Why one case failed, or '' when it passed."""
    if "expected" in case and str(label) != str(case["expected"]):
        return f"predicted {label!r}, expected {case['expected']!r}"
    if "min" in case and score < float(case["min"]):
        return f"score {score:.4g} < min {case['min']}"
    if "max" in case and score > float(case["max"]):
        return f"score {score:.4g} > max {case['max']}"
    return ""


def _typical_row(probe: pd.DataFrame) -> dict[str, Any]:
    """Median of each numeric column, most frequent value of the others."""
    row: dict[str, Any] = {}
    for name in probe.columns:
        column = probe[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            row[name] = float(column.median())
        else:
            mode = column.mode(dropna=True)
            row[name] = mode.iloc[0] if len(mode) else None
    return row
