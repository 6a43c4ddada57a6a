"""``mlstrata evaluate`` and ``mlstrata test``: reports, JSON, exit codes and one-line errors."""

from __future__ import annotations

import json

from mlstrata.workspace import Workspace
from tests.model._fitted import (  # noqa: F401
    _template,
    credit,
    fit_model,
    write_config,
)


def test_evaluate_passes_writes_reports_and_prints_json(credit: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    fit_model(credit)
    write_config(credit, "model: {gates: {metrics: ['roc_auc >= 0.6']}}")
    result = cli("evaluate", "credit-model", "--json", cwd=credit.root)
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["passed"] and body["gates"][0]["gate"] == "roc_auc >= 0.6"
    assert (credit.reports_dir / "credit-model-v1-evaluate.html").is_file()
    assert "report:" in result.err


def test_evaluate_exits_1_when_a_gate_fails(credit: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    fit_model(credit)
    write_config(credit, "model: {gates: {metrics: ['roc_auc >= 0.99']}}")
    result = cli("evaluate", "credit-model", cwd=credit.root)
    assert result.code == 1 and "FAIL" in result.out and "roc_auc >= 0.99" in result.out


def test_bad_gate_is_one_red_line(credit: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    fit_model(credit)
    write_config(credit, "model: {gates: {metrics: ['roc_auc ~ 0.9']}}")
    result = cli("evaluate", "credit-model", cwd=credit.root)
    assert result.code == 2 and result.out == ""
    assert "\n" not in result.err.strip() and "cannot parse gate 'roc_auc ~ 0.9'" in result.err
    assert not credit.reports_dir.exists()


def test_acceptance_test_json_and_failure_exit(credit: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    fit_model(credit)
    passed = cli("test", "credit-model", "--n-boot", "20", "--json", cwd=credit.root)
    assert passed.code == 0, passed.err
    assert json.loads(passed.out)["bootstrap"]["resamples"] == 20
    write_config(credit, """
        model:
          tests: [{name: flat, kind: invariance, column: previous_defaults, values: [0, 6],
                   epsilon: 0.001}]
    """)
    failed = cli("test", "credit-model", "--n-boot", "20", cwd=credit.root)
    assert failed.code == 1 and "flat" in failed.out


def test_unknown_model_is_one_line(credit: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    result = cli("test", "nope", cwd=credit.root)
    assert result.code == 2 and "no model named 'nope'" in result.err
