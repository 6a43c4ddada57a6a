"""Evaluation against business gates on the validation rows, stored with lineage to the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstrata.errors import ConfigError, DataError
from mlstrata.model.evaluate import EVALUATION_KIND, evaluate_model, find_evaluation
from mlstrata.workspace import Workspace
from tests.model._fitted import (  # noqa: F401
    _template,
    credit,
    credit_workspace,
    fit_model,
    write_config,
)

GATES = """
model:
  gates:
    metrics: ["roc_auc >= 0.6", "recall >= 0.5 at precision >= 0.3", "accuracy >= 0.5"]
    cost_matrix: {fp: 1, fn: 5}
    max_latency_ms: 1000
    max_package_mb: 5
"""


def test_passing_gates_are_reported_and_stored_with_lineage(credit: Workspace) -> None:  # noqa: F811
    model = fit_model(credit)
    report = evaluate_model(write_config(credit, GATES), model.ref)
    assert report.passed and report.rows == 300
    gates = {g.gate: g for g in report.gates}
    assert set(gates) == {"roc_auc >= 0.6", "recall >= 0.5 at precision >= 0.3",
                          "accuracy >= 0.5", "cost_matrix", "latency_ms <= 1000",
                          "package_mb <= 5"}
    assert gates["roc_auc >= 0.6"].observed == report.metrics["roc_auc"] > 0.6
    assert "at threshold" in gates["recall >= 0.5 at precision >= 0.3"].detail
    # fn costs 5x fp, so the chosen threshold is below 0.5 and cheaper than 0.5
    assert report.threshold is not None and report.threshold < 0.5
    assert "(at 0.5:" in gates["cost_matrix"].detail
    assert 0 < report.latency_ms["native"] < 1000 and report.size_of == "joblib file"
    stored = report.artifact
    assert stored is not None and stored.kind == EVALUATION_KIND and stored.meta["passed"]
    assert find_evaluation(credit, model) == stored
    roles = {role: parent.id for role, parent in credit.parents(stored.id)}
    assert roles["model"] == model.id and roles["split"] == model.meta["split"]
    body = json.loads(credit.path_for_read(stored).read_text())
    assert body["passed"] and body["threshold"] == report.threshold
    assert "<table>" in report.to_html() and json.loads(report.to_json())["evaluation"]


def test_a_failing_gate_fails_the_evaluation(credit: Workspace) -> None:  # noqa: F811
    model = fit_model(credit)
    ws = write_config(credit, """
        model:
          gates: {metrics: ["roc_auc >= 0.99", "recall >= 0.99 at precision >= 0.99"],
                  max_latency_ms: 0.0001}
    """)
    report = evaluate_model(ws, model.ref)
    assert not report.passed and [g.passed for g in report.gates] == [False, False, False]
    assert report.gates[1].observed < 0.99 and "precision 1" in report.gates[1].detail  # type: ignore[operator]
    assert find_evaluation(ws, model).meta["passed"] is False  # type: ignore[union-attr]


def test_regression_gates_and_package_size(tmp_path: Path) -> None:
    ws = credit_workspace(tmp_path, target="interest_rate")
    model = fit_model(ws)
    package = tmp_path / "package"
    package.mkdir()
    (package / "model.bin").write_bytes(b"\0" * 3 * 1024 * 1024)
    ws = write_config(ws, "model: {gates: {metrics: ['rmse <= 100'], max_package_mb: 2}}")
    with pytest.raises(DataError, match="package: no model.onnx here, so this is not a package"):
        evaluate_model(ws, model.ref, package)
    report = evaluate_model(ws, model.ref)
    assert report.threshold is None and report.metrics["rmse"] < 100 and report.passed


def test_without_a_split_the_user_is_told_to_run_split(tmp_path: Path) -> None:
    ws = credit_workspace(tmp_path, split=False)
    model = fit_model(ws)
    with pytest.raises(DataError, match=r"credit@1 has no train/validation split.*run "
                                        r"'mlstrata split credit@1' first"):
        evaluate_model(ws, model.ref)
    assert ws.artifacts(EVALUATION_KIND) == []


@pytest.mark.parametrize(("config", "message"), [
    ("model: {gates: {metrics: ['roc_auc => 0.8']}}",
     r"model.gates.metrics\[0\]: cannot parse gate 'roc_auc => 0.8'; write 'METRIC OP NUMBER'"),
    ("model: {gates: {metrics: ['rmse <= 3']}}",
     "'rmse <= 3' names 'rmse', not a metric of credit-model@1 .a binary model.; use one of"),
])
def test_bad_gates_are_config_errors(credit: Workspace, config: str, message: str) -> None:  # noqa: F811
    model = fit_model(credit)
    with pytest.raises(ConfigError, match=message):
        evaluate_model(write_config(credit, config), model.ref)
    assert credit.artifacts(EVALUATION_KIND) == []


def test_cost_matrix_needs_a_binary_model(tmp_path: Path) -> None:
    ws = credit_workspace(tmp_path, target="interest_rate")
    model = fit_model(ws)
    ws = write_config(ws, "model: {gates: {cost_matrix: {fp: 1, fn: 2}}}")
    with pytest.raises(DataError, match="cost_matrix: credit-model@1 is a regression model"):
        evaluate_model(ws, model.ref)


def test_gated_latency_times_only_what_a_gate_checks(credit: Workspace) -> None:  # noqa: F811
    """``retrain`` evaluates with ``latency="gated"``: no timing without a latency gate, and
    with one the gate is still checked (here on the native pipeline: no package)."""
    model = fit_model(credit)
    ungated = evaluate_model(write_config(credit, "model: {gates: {metrics: ['roc_auc >= 0.6']}}"),
                             model.ref, latency="gated")
    assert ungated.passed and ungated.latency_ms == {}
    gated = evaluate_model(write_config(credit, "model: {gates: {max_latency_ms: 0.0001}}"),
                           model.ref, latency="gated")
    assert set(gated.latency_ms) == {"native"} and not gated.passed
    assert [(g.gate, g.passed) for g in gated.gates] == [("latency_ms <= 0.0001", False)]
