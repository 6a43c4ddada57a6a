"""Evaluation against the business gates of ``mlstrata.yaml``, on the validation rows of the split.

``evaluate_model`` scores a stored model on the validation subset of its dataset's recorded split
(never the sealed test set) and checks every gate of ``model.gates``:

* **metric thresholds** — ``roc_auc >= 0.80``, ``rmse <= 1200`` and operating points like
  ``recall >= 0.7 at precision >= 0.6`` (see :mod:`mlstrata.model.gates`);
* **cost matrix** — for a binary model, ``{fp: 1, fn: 5}`` chooses the decision threshold of least
  total cost on the validation rows; label metrics (accuracy, f1, precision...) are then computed
  at that threshold, and the report gives the threshold and the cost (and the cost at 0.5);
* **max_latency_ms** — single-row latency: the median of :data:`LATENCY_CALLS` timed one-row
  predictions after :data:`LATENCY_WARMUP` untimed ones, for the native pipeline and, when a
  package directory is given, for its ``model.onnx`` in onnxruntime. The gate checks the ONNX
  figure when there is one (that is what serves), else the native one;
* **max_package_mb** — the size of the package directory when given, else of the joblib file.

The report is stored as an ``evaluation`` artifact with lineage to the model (and the split), so
promotion can find the newest evaluation of a model and refuse a failed one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.table import Table

from ..config import GateConfig
from ..errors import ConfigError, DataError
from ..reports import Report, badge, html_page, table
from ..runtime.session import open_session
from ..workspace import Artifact, Workspace
from .artifact import load_model
from .data import load_training_data
from .gates import MetricGate, best_operating_point, cost_threshold, parse_gate
from .metrics import metric_names, score

__all__ = [
    "EVALUATION_KIND",
    "LATENCY_CALLS",
    "LATENCY_WARMUP",
    "EvaluationReport",
    "GateResult",
    "ModelScores",
    "check_metric_gates",
    "evaluate_model",
    "find_evaluation",
    "gate_metrics",
    "model_scores",
]

EVALUATION_KIND = "evaluation"
LATENCY_CALLS = 100
LATENCY_WARMUP = 10
_MB = 1024 * 1024


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: the expression, whether it held, the observed value and a detail."""

    gate: str
    passed: bool
    observed: float | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"gate": self.gate, "passed": self.passed, "observed": self.observed,
                "detail": self.detail}


@dataclass(frozen=True)
class ModelScores:
    """A model's outputs on some rows: labels, predictions and (binary) positive-class scores."""

    y_true: np.ndarray[Any, Any]
    y_pred: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None
    classes: list[Any] | None

    @property
    def positive_scores(self) -> np.ndarray[Any, Any] | None:
        """The score of the positive class (the second of ``classes``) for a binary model."""
        return self.proba[:, 1] if self.proba is not None and self.proba.shape[1] == 2 else None

    def at_threshold(self, threshold: float) -> ModelScores:
        """Binary predictions re-made at ``threshold`` (positive when score >= threshold)."""
        scores = self.positive_scores
        if scores is None or self.classes is None:
            return self
        labels = np.where(scores >= threshold, self.classes[1], self.classes[0])
        return replace(self, y_pred=labels)

    def metric(self, name: str, subset: np.ndarray[Any, Any] | None = None) -> float:
        """One metric (see :func:`mlstrata.model.metrics.score`), on ``subset`` rows if given."""
        pick = slice(None) if subset is None else subset
        proba = None if self.proba is None else self.proba[pick]
        return score(name, self.y_true[pick], self.y_pred[pick], proba, labels=self.classes)


@dataclass(frozen=True)
class EvaluationReport(Report):
    """What ``mlstrata evaluate`` found: metrics and gate verdicts on the validation rows."""

    model: Artifact
    rows: int
    metrics: dict[str, float]
    gates: list[GateResult]
    threshold: float | None
    latency_ms: dict[str, float]
    size_mb: float
    size_of: str
    artifact: Artifact | None = field(default=None, compare=False)

    @property
    def passed(self) -> bool:
        """Whether every gate held (no gates configured means nothing failed)."""
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        """The verdict, metrics, gates, decision threshold, latency and size."""
        body = {
            "model": self.model.ref, "model_id": self.model.id, "subset": "validation",
            "rows": self.rows, "passed": self.passed, "threshold": self.threshold,
            "metrics": self.metrics, "gates": [g.to_dict() for g in self.gates],
            "latency_ms": self.latency_ms, "size_mb": self.size_mb, "size_of": self.size_of,
        }
        if self.artifact is not None:
            body["evaluation"] = self.artifact.ref
        return body

    def render_terminal(self, console: Console) -> None:
        """A verdict line, then one row per gate and the metrics."""
        verdict = "[bold green]PASS[/]" if self.passed else "[bold red]FAIL[/]"
        console.print(f"{verdict} {self.model.ref} on {self.rows} validation rows"
                      + (f", decision threshold {self.threshold:.4g}" if self.threshold else ""))
        grid = Table("gate", "observed", "result", "detail")
        for g in self.gates:
            grid.add_row(g.gate, _fmt(g.observed), "pass" if g.passed else "[red]FAIL[/]",
                         g.detail)
        if self.gates:
            console.print(grid)
        else:
            console.print("no gates configured (model.gates in mlstrata.yaml)")
        console.print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in self.metrics.items()))

    def to_html(self) -> str:
        """One page: the facts, the gate table and the metrics."""
        gates = [{"gate": g.gate, "observed": g.observed, "result": badge(g.passed),
                  "detail": g.detail} for g in self.gates]
        facts = {"model": self.model.ref, "verdict": "PASS" if self.passed else "FAIL",
                 "validation rows": self.rows, "decision threshold": self.threshold,
                 **{f"latency {k} (ms)": v for k, v in self.latency_ms.items()},
                 f"size of {self.size_of} (MB)": self.size_mb}
        metrics = [{"metric": k, "value": v} for k, v in self.metrics.items()]
        return html_page(f"Evaluation of {self.model.ref}",
                         [("Gates", [table(gates)]), ("Metrics", [table(metrics)])], facts=facts)


def evaluate_model(
    ws: Workspace, model_ref: str, package_dir: Path | None = None, *,
    latency: Literal["all", "gated"] = "all",
) -> EvaluationReport:
    """Check model ``model_ref`` against ``model.gates`` on its validation rows; store the result.

    ``package_dir`` (a built package) adds the onnxruntime latency and makes the size gate measure
    the package instead of the joblib file. ``latency="gated"`` (``retrain``: nobody reads the
    figures, a gate may) times only what ``max_latency_ms`` checks — the ONNX latency of a
    package, else the native one — and nothing without that gate; ``"all"`` times both always.
    """
    config = ws.config.model.gates
    parsed = _parse_gates(config)
    model, pipeline = load_model(ws, model_ref)
    _check_metric_names(parsed, model)
    features, labels, split = _validation_rows(ws, model)
    scores = model_scores(pipeline, features, labels)
    gates, threshold = _decision_gates(config, model, scores)
    if threshold is not None:
        scores = scores.at_threshold(threshold)
    names = dict.fromkeys([model.meta.get("metric"), *(g.condition.metric for g in parsed
                                                       if g.at is None)])
    metrics = {name: scores.metric(name) for name in names if name}
    gates = [*(_check_metric(g, metrics, scores) for g in parsed), *gates]
    timed = (_latencies(pipeline, features, package_dir, native=latency == "all")
             if latency == "all" or config.max_latency_ms is not None else {})
    size_mb, size_of = _size(model, package_dir)
    gates += _resource_gates(config, timed, size_mb, size_of)
    report = EvaluationReport(model, len(labels), metrics, gates, threshold, timed, size_mb,
                              size_of)
    return replace(report, artifact=_store(ws, report, split))


def find_evaluation(ws: Workspace, model: Artifact) -> Artifact | None:
    """The newest stored evaluation of ``model`` (its ``meta.passed`` tells the verdict)."""
    return ws.find_by_meta(EVALUATION_KIND, "model", model.id)


def model_scores(pipeline: Any, features: Any, labels: Any) -> ModelScores:
    """Predict ``features`` with a fitted pipeline; keep probabilities when it has them."""
    proba = pipeline.predict_proba(features) if hasattr(pipeline, "predict_proba") else None
    classes = list(pipeline.classes_) if proba is not None else None
    y_pred = (np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if proba is not None
              else pipeline.predict(features))
    if classes is not None:
        y_pred = np.asarray(y_pred.tolist())
    return ModelScores(np.asarray(labels), np.asarray(y_pred), proba, classes)


def check_metric_gates(config: GateConfig, scores: ModelScores) -> list[GateResult]:
    """The metric gates of ``config`` checked on ``scores`` (labels already at the decision
    threshold): what ``mlstrata monitor`` holds live, labelled predictions to. The cost matrix,
    latency and size gates say nothing about predictions and are left out."""
    parsed = _parse_gates(config)
    names = dict.fromkeys(g.condition.metric for g in parsed if g.at is None)
    metrics = {name: scores.metric(name) for name in names}
    return [_check_metric(gate, metrics, scores) for gate in parsed]


def gate_metrics(gates: GateConfig) -> list[str]:
    """The metrics named by the plain (not operating-point) gates, in order."""
    return [g.condition.metric for g in _parse_gates(gates) if g.at is None]


def _parse_gates(gates: GateConfig) -> list[MetricGate]:
    return [parse_gate(text, f"model.gates.metrics[{i}]") for i, text in enumerate(gates.metrics)]


def _check_metric_names(gates: list[MetricGate], model: Artifact) -> None:
    """Refuse a gate on a metric the model's task does not have, naming the gate."""
    known = metric_names(str(model.meta.get("task")))
    for gate in gates:
        if gate.at is None and gate.condition.metric not in known:
            raise ConfigError(f"mlstrata.yaml model.gates.metrics: '{gate.text}' names "
                              f"'{gate.condition.metric}', not a metric of {model.ref} (a "
                              f"{model.meta.get('task')} model); use one of {', '.join(known)}")


def _validation_rows(ws: Workspace, model: Artifact) -> tuple[Any, Any, Artifact]:
    """Features and labels of the validation subset the model was not trained on."""
    task = model.meta.get("task")
    if task not in ("binary", "multiclass", "regression"):
        raise DataError(f"{model.ref} is a {task} model; gates are checked against labels, so "
                        "'mlstrata evaluate' needs a classification or regression model")
    data = load_training_data(ws, str(model.meta["dataset"]), task=task)
    if data.split is None:
        raise DataError(f"{data.dataset.ref} has no train/validation split, so {model.ref} has no "
                        f"validation rows to be evaluated on; run 'mlstrata split "
                        f"{data.dataset.ref}' first (then retrain)")
    trained_on = model.meta.get("split")
    if trained_on and trained_on != data.split.id:
        raise DataError(f"{model.ref} was trained with split {str(trained_on)[:12]} but the newest "
                        f"split of {data.dataset.ref} is {data.split.ref}; its validation rows "
                        "may have been trained on — retrain the model on the newest split")
    names = [column["name"] for column in model.meta["inputs"]]
    rows = data.frame.loc[data.is_validation]
    return rows[names], rows[str(model.meta["target"])], data.split


def _decision_gates(
    config: GateConfig, model: Artifact, scores: ModelScores
) -> tuple[list[GateResult], float | None]:
    """The cost-matrix gate (binary only) and the decision threshold it chooses."""
    positive = scores.positive_scores
    if config.cost_matrix is None:
        return [], (0.5 if positive is not None else None)
    if positive is None or scores.classes is None:
        raise DataError(f"mlstrata.yaml model.gates.cost_matrix: {model.ref} is a "
                        f"{model.meta.get('task')} model; a cost matrix (fp, fn, tp, tn) chooses "
                        "the threshold of a binary classifier only — remove it")
    choice = cost_threshold(dict(config.cost_matrix), scores.y_true == scores.classes[1], positive)
    detail = (f"threshold {choice.threshold:.4g} minimizes cost: {choice.cost:g} total, "
              f"{choice.cost_per_row:.4g} per row (at 0.5: {choice.cost_at_half:g})")
    return [GateResult("cost_matrix", True, choice.cost, detail)], choice.threshold


def _check_metric(gate: MetricGate, metrics: dict[str, float], scores: ModelScores) -> GateResult:
    """One metric gate: a plain threshold, or the best operating point meeting a constraint."""
    if gate.at is None:
        observed = metrics[gate.condition.metric]
        return GateResult(gate.text, gate.condition.holds(observed), observed)
    positive = scores.positive_scores
    if positive is None or scores.classes is None:
        raise DataError(f"mlstrata.yaml model.gates.metrics: '{gate.text}' is an operating-point "
                        "gate, which needs a binary classifier; use a plain threshold instead")
    point = best_operating_point(gate, scores.y_true == scores.classes[1], positive)
    if point is None:
        return GateResult(gate.text, False, None, f"no threshold reaches {gate.at}")
    return GateResult(gate.text, gate.condition.holds(point.value), point.value,
                      f"at threshold {point.threshold:.4g}, {gate.at.metric} "
                      f"{point.constraint_value:.4g}")


def _resource_gates(
    config: GateConfig, latency: dict[str, float], size_mb: float, size_of: str
) -> list[GateResult]:
    """The latency gate (ONNX when measured, else native) and the size gate."""
    results = []
    if config.max_latency_ms is not None:
        which = "onnx" if "onnx" in latency else "native"
        observed = latency[which]
        results.append(GateResult(f"latency_ms <= {config.max_latency_ms:g}",
                                  observed <= config.max_latency_ms, observed,
                                  f"median single-row {which} predict of {LATENCY_CALLS} calls"))
    if config.max_package_mb is not None:
        results.append(GateResult(f"package_mb <= {config.max_package_mb:g}",
                                  size_mb <= config.max_package_mb, size_mb, f"size of {size_of}"))
    return results


def _latencies(pipeline: Any, features: Any, package_dir: Path | None, *,
               native: bool = True) -> dict[str, float]:
    """Median single-row latency (ms) of the native pipeline and, if packaged, of ONNX (the
    native one only when ``native`` or when there is no ONNX to time)."""
    rows = [features.iloc[[i % len(features)]] for i in range(LATENCY_CALLS)]
    # a River package runs the native (frozen) model itself
    onnx = package_dir is not None and _flavour(package_dir) != "river"
    latency: dict[str, float] = {}
    if native or not onnx:
        predict = (pipeline.predict_proba if hasattr(pipeline, "predict_proba")
                   else pipeline.predict)
        latency["native"] = _median_ms(predict, rows)
    if package_dir is not None and onnx:
        if not (package_dir / "model.onnx").is_file():
            raise DataError(f"{package_dir}: no model.onnx here, so this is not a package; pass "
                            "a directory built by 'mlstrata package', or omit --package")

        session = open_session(package_dir / "model.onnx")
        # The ONNX graph starts after date expansion; the runtime expands dates before it.
        dates = getattr(pipeline, "named_steps", {}).get("dates")
        feeds = [_onnx_feed(session, dates.transform(row) if dates is not None else row)
                 for row in rows]
        latency["onnx"] = _median_ms(lambda feed: session.run(None, feed), feeds)
    return latency


def _flavour(package_dir: Path) -> str | None:
    """The package's flavour (``onnx``, ``river``), or None when it is no package."""
    from ..runtime.manifest import MANIFEST_FILE, load_manifest

    return load_manifest(package_dir).flavour if (package_dir / MANIFEST_FILE).is_file() \
        else None


def _median_ms(call: Callable[[Any], Any], inputs: list[Any]) -> float:
    """Median wall time of ``call(x)`` over ``inputs`` after a few untimed warm-up calls."""
    for x in inputs[:LATENCY_WARMUP]:
        call(x)
    timings = []
    for x in inputs:
        start = time.perf_counter()
        call(x)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000.0


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
                "tensor(string)": object}


def _onnx_feed(session: Any, row: Any) -> dict[str, np.ndarray[Any, Any]]:
    """One row as onnxruntime inputs: one ``[1, 1]`` tensor per column, or one ``[1, n]`` tensor."""
    inputs = session.get_inputs()
    if len(inputs) == 1 and inputs[0].name not in row.columns:
        dtype = _ONNX_DTYPES.get(inputs[0].type, np.float32)
        return {inputs[0].name: row.to_numpy().astype(dtype)}
    feed = {}
    for item in inputs:
        dtype = _ONNX_DTYPES.get(item.type, np.float32)
        column = row[item.name]
        values = (column.astype(object).where(column.notna(), "").astype(str).to_numpy()
                  if dtype is object else column.to_numpy().astype(dtype))
        feed[item.name] = values.reshape(1, 1)
    return feed


def _size(model: Artifact, package_dir: Path | None) -> tuple[float, str]:
    """Size in MB of the package directory (all files) if given, else of the joblib file."""
    if package_dir is None:
        return model.size / _MB, "joblib file"
    total = sum(f.stat().st_size for f in package_dir.rglob("*") if f.is_file())
    return total / _MB, "package directory"


def _store(ws: Workspace, report: EvaluationReport, split: Artifact) -> Artifact:
    """Keep the report JSON as an ``evaluation`` artifact with lineage to the model and split."""
    verdict = "PASS" if report.passed else "FAIL"
    return ws.put_bytes(
        report.to_json().encode(), suffix=".json", kind=EVALUATION_KIND,
        name=f"{report.model.name}.evaluation",
        meta={"model": report.model.id, "passed": report.passed, "threshold": report.threshold,
              "metrics": report.metrics},
        inputs={"model": report.model.id, "split": split.id}, access=report.model.access,
        description=f"{verdict}: gates of {report.model.ref} on validation rows",
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
