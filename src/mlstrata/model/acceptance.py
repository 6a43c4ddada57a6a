"""The acceptance test: the one reader of the sealed test set (``mlstrata test MODEL``).

``run_acceptance`` opens the sealed test set of the model's dataset (the read is logged with the
``acceptance-test`` purpose), and reports:

* **metrics with 95 % confidence intervals** — the primary metric, the gates' metrics and the
  task's first :data:`TASK_METRICS` metrics; percentile bootstrap: ``n_boot`` resamples of the
  test rows with replacement (seeded); resamples where a metric is undefined (one class only) are
  skipped. Label metrics of a binary model use the decision threshold of its newest evaluation
  (the cost-matrix choice), else 0.5;
* **the gap to the validation estimate** — the cross-validated mean recorded with the model for
  its primary metric, and the newest evaluation's validation figures for the others. A metric is
  flagged as *overfit* when the validation estimate is better than the whole test interval, or
  when the test figure is worse than it by more than :data:`OVERFIT_TOLERANCE` (relative);
* **behavioural tests** from ``model.tests`` (see :mod:`mlstrata.model.behaviour`).

The test passes when no metric is flagged and every behavioural test passes; only then may the
model be promoted. The report is stored as an ``acceptance`` artifact with lineage to the model
and the test set.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..errors import DataError
from ..reports import Report, badge, html_page, table
from ..workspace import Artifact, Workspace
from .artifact import load_model
from .behaviour import BehaviourResult, run_behavioural_tests
from .data import load_sealed_test
from .evaluate import ModelScores, find_evaluation, gate_metrics, model_scores
from .metrics import THRESHOLD_FREE, greater_is_better, metric_names

__all__ = [
    "ACCEPTANCE_KIND",
    "OVERFIT_TOLERANCE",
    "TASK_METRICS",
    "AcceptanceReport",
    "MetricInterval",
    "bootstrap_interval",
    "find_acceptance",
    "run_acceptance",
]

ACCEPTANCE_KIND = "acceptance"
OVERFIT_TOLERANCE = 0.10
TASK_METRICS = 3


@dataclass(frozen=True)
class MetricInterval:
    """A test metric, its bootstrap interval, and how it compares with the validation estimate."""

    metric: str
    value: float
    low: float
    high: float
    validation: float | None
    overfit: bool

    @property
    def gap(self) -> float | None:
        """Test minus validation (None without a validation estimate)."""
        return None if self.validation is None else self.value - self.validation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"metric": self.metric, "value": self.value, "ci95": [self.low, self.high],
                "validation": self.validation, "gap": self.gap, "overfit": self.overfit}


@dataclass(frozen=True)
class AcceptanceReport(Report):
    """What ``mlstrata test`` found on the sealed test set."""

    model: Artifact
    rows: int
    threshold: float | None
    metrics: list[MetricInterval]
    behaviour: list[BehaviourResult]
    n_boot: int
    seed: int
    artifact: Artifact | None = field(default=None, compare=False)

    @property
    def passed(self) -> bool:
        """No overfitting flag and every behavioural test passed."""
        return not any(m.overfit for m in self.metrics) and all(b.passed for b in self.behaviour)

    def to_dict(self) -> dict[str, Any]:
        """Verdict, metrics with intervals and gaps, behavioural results."""
        body = {
            "model": self.model.ref, "model_id": self.model.id, "subset": "sealed test",
            "rows": self.rows, "passed": self.passed, "threshold": self.threshold,
            "bootstrap": {"resamples": self.n_boot, "seed": self.seed,
                          "interval": "percentile 95%"},
            "overfit_tolerance": OVERFIT_TOLERANCE,
            "metrics": [m.to_dict() for m in self.metrics],
            "behaviour": [b.to_dict() for b in self.behaviour],
        }
        if self.artifact is not None:
            body["acceptance"] = self.artifact.ref
        return body

    def render_terminal(self, console: Console) -> None:
        """A verdict line, the metric table and the behavioural tests."""
        verdict = "[bold green]PASS[/]" if self.passed else "[bold red]FAIL[/]"
        console.print(f"{verdict} acceptance test of {self.model.ref} on {self.rows} sealed test "
                      f"rows ({self.n_boot} bootstrap resamples)")
        grid = Table("metric", "test", "95% CI", "validation", "gap", "overfit")
        for m in self.metrics:
            grid.add_row(m.metric, f"{m.value:.4g}", f"[{m.low:.4g}, {m.high:.4g}]",
                         _fmt(m.validation), _fmt(m.gap), "[red]yes[/]" if m.overfit else "no")
        console.print(grid)
        if self.behaviour:
            tests = Table("behavioural test", "kind", "result", "detail")
            for b in self.behaviour:
                tests.add_row(b.name, b.kind, "pass" if b.passed else "[red]FAIL[/]", b.detail)
            console.print(tests)

    def to_html(self) -> str:
        """One page: facts, metrics with intervals, behavioural tests."""
        metrics = [{**m.to_dict(), "ci95": f"[{m.low:.4g}, {m.high:.4g}]",
                    "overfit": badge(not m.overfit, "yes" if m.overfit else "no")}
                   for m in self.metrics]
        tests = [{**b.to_dict(), "passed": badge(b.passed)} for b in self.behaviour]
        facts = {"model": self.model.ref, "verdict": "PASS" if self.passed else "FAIL",
                 "sealed test rows": self.rows, "decision threshold": self.threshold,
                 "bootstrap resamples": self.n_boot, "seed": self.seed,
                 "overfit tolerance (relative)": OVERFIT_TOLERANCE}
        return html_page(f"Acceptance test of {self.model.ref}",
                         [("Metrics", [table(metrics)]), ("Behavioural tests", [table(tests)])],
                         facts=facts)


def run_acceptance(
    ws: Workspace, model_ref: str, n_boot: int = 1000, seed: int = 0
) -> AcceptanceReport:
    """Test model ``model_ref`` on its sealed test set; store and return the report."""
    if n_boot < 10:
        raise DataError(f"n_boot must be at least 10 for a 95% interval, got {n_boot}")
    model, pipeline = load_model(ws, model_ref)
    target, task = model.meta.get("target"), model.meta.get("task")
    if target is None or task not in ("binary", "multiclass", "regression"):
        raise DataError(f"{model.ref} is a {task} model without labels to test against; the "
                        "acceptance test needs a classification or regression model")
    test = load_sealed_test(ws, model)
    inputs = [column["name"] for column in model.meta["inputs"]]
    evaluation = find_evaluation(ws, model)
    threshold = evaluation.meta.get("threshold") if evaluation is not None else None
    scores = model_scores(pipeline, test[inputs], test[str(target)])
    if threshold is not None:
        scores = scores.at_threshold(float(threshold))
    metrics = _intervals(scores, _metric_names(ws, model),
                         _validation(model, evaluation, threshold), n_boot, seed)
    behaviour = run_behavioural_tests(pipeline, test[inputs], ws.config.model.tests, seed)
    report = AcceptanceReport(model, len(test), threshold, metrics, behaviour, n_boot, seed)
    return replace(report, artifact=_store(ws, report))


def find_acceptance(ws: Workspace, model: Artifact) -> Artifact | None:
    """The newest stored acceptance test of ``model`` (its ``meta.passed`` tells the verdict)."""
    return ws.find_by_meta(ACCEPTANCE_KIND, "model", model.id)


def _metric_names(ws: Workspace, model: Artifact) -> list[str]:
    """The primary metric, the gates' metrics and the task's first :data:`TASK_METRICS`."""
    primary = model.meta.get("metric")
    task = metric_names(str(model.meta["task"]))
    gated = [m for m in gate_metrics(ws.config.model.gates) if m in task]
    return list(dict.fromkeys([*([primary] if primary else []), *gated, *task[:TASK_METRICS]]))


def _validation(
    model: Artifact, evaluation: Artifact | None, threshold: float | None
) -> dict[str, float]:
    """Validation estimates to compare the test with, at the same decision threshold.

    The CV means (threshold 0.5) are used, overriding the evaluation's figures, except that with
    a chosen threshold the label metrics (accuracy, recall...) come only from the evaluation,
    which measured them at that threshold.
    """
    found = {k: float(v) for k, v in (evaluation.meta.get("metrics", {}) if evaluation else {})
             .items() if v is not None}
    for name, stats in (model.meta.get("cv") or {}).items():
        if threshold is not None and name not in THRESHOLD_FREE:
            continue  # cross-validated at 0.5, not at the chosen threshold
        if isinstance(stats, dict) and stats.get("mean") is not None:
            found[name] = float(stats["mean"])
    return found


def _intervals(
    scores: ModelScores, names: list[str], validation: dict[str, float], n_boot: int, seed: int
) -> list[MetricInterval]:
    """Point value, percentile bootstrap 95 % interval and overfitting flag of each metric."""
    rng = np.random.default_rng(seed)
    n = len(scores.y_true)
    resamples = rng.integers(0, n, size=(n_boot, n))
    results = []
    for name in names:
        value = scores.metric(name)
        interval = bootstrap_interval(scores, name, resamples)
        if interval is None:
            raise DataError(f"{name} is undefined on every bootstrap resample of the {n} sealed "
                            "test rows; the test set is too small for an acceptance test")
        low, high = interval
        estimate = validation.get(name)
        results.append(MetricInterval(name, value, low, high, estimate,
                                      _overfit(name, value, low, high, estimate)))
    return results


def bootstrap_interval(
    scores: ModelScores, name: str, resamples: Iterable[np.ndarray[Any, Any]]
) -> tuple[float, float] | None:
    """Percentile-bootstrap 95 % interval of metric ``name`` over ``resamples`` (row indices of
    ``scores`` drawn with replacement), or None when the metric is undefined on every one.

    The acceptance test bootstraps the sealed test rows with it; packaging bootstraps the
    validation rows, whose interval ``mlstrata monitor`` holds live performance against.
    """
    boot = np.array([_safe_metric(scores, name, rows) for rows in resamples])
    if not len(boot) or np.isnan(boot).all():
        return None
    low, high = (float(x) for x in np.nanpercentile(boot, [2.5, 97.5]))
    return low, high


def _safe_metric(scores: ModelScores, name: str, rows: np.ndarray[Any, Any]) -> float:
    """A metric on one resample; NaN where it is undefined (e.g. a single class drawn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return scores.metric(name, rows)
        except ValueError:
            return float("nan")


def _overfit(name: str, value: float, low: float, high: float, estimate: float | None) -> bool:
    """Validation better than the whole test interval, or test worse by > the tolerance."""
    if estimate is None:
        return False
    better = greater_is_better(name)
    outside = estimate > high if better else estimate < low
    worse_by = (estimate - value) if better else (value - estimate)
    return bool(outside or worse_by > OVERFIT_TOLERANCE * max(abs(estimate), 1e-12))


def _store(ws: Workspace, report: AcceptanceReport) -> Artifact:
    """Keep the report JSON as an ``acceptance`` artifact with lineage to model and test set."""
    dataset = ws.get(str(report.model.meta["dataset"]))
    verdict = "PASS" if report.passed else "FAIL"
    return ws.put_bytes(
        report.to_json().encode(), suffix=".json", kind=ACCEPTANCE_KIND,
        name=f"{report.model.name}.acceptance",
        meta={"model": report.model.id, "passed": report.passed,
              "metrics": {m.metric: m.value for m in report.metrics}},
        inputs={"model": report.model.id, "testset": str(dataset.meta["testset"])},
        access=report.model.access,
        description=f"{verdict}: acceptance test of {report.model.ref} on the sealed test set",
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
