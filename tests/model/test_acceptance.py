"""The acceptance test: sealed-test reads logged, bootstrap intervals, overfitting, behaviour."""

from __future__ import annotations

import json

import pytest

from mlstrata.errors import DataError
from mlstrata.model.acceptance import ACCEPTANCE_KIND, find_acceptance, run_acceptance
from mlstrata.workspace import ACCEPTANCE_PURPOSE, Workspace
from tests.model._fitted import (  # noqa: F401
    _template,
    credit,
    fit_model,
    write_config,
)


def test_metrics_with_intervals_and_the_sealed_read_logged(credit: Workspace) -> None:  # noqa: F811
    model = fit_model(credit, cv_mean=0.78)
    report = run_acceptance(credit, model.ref, n_boot=100, seed=1)
    assert report.passed and report.rows == 300
    metrics = {m.metric: m for m in report.metrics}
    assert list(metrics)[:3] == ["roc_auc", "average_precision", "accuracy"]
    auc = metrics["roc_auc"]
    assert auc.low < auc.value < auc.high and auc.high - auc.low < 0.3
    assert auc.validation == 0.78 and auc.gap == pytest.approx(auc.value - 0.78)
    testset = credit.get(str(credit.get(model.meta["dataset"]).meta["testset"]))
    assert [r.purpose for r in credit.access_log(testset.id)] == [ACCEPTANCE_PURPOSE]
    stored = report.artifact
    assert stored is not None and stored.kind == ACCEPTANCE_KIND and stored.meta["passed"]
    assert find_acceptance(credit, model) == stored
    assert {role for role, _ in credit.parents(stored.id)} == {"model", "testset"}
    body = json.loads(credit.path_for_read(stored).read_text())
    assert body["metrics"][0]["ci95"] == [auc.low, auc.high]


def test_same_seed_same_intervals(credit: Workspace) -> None:  # noqa: F811
    model = fit_model(credit)
    first = run_acceptance(credit, model.ref, n_boot=50, seed=3).metrics
    again = run_acceptance(credit, model.ref, n_boot=50, seed=3).metrics
    other = run_acceptance(credit, model.ref, n_boot=50, seed=4).metrics
    assert first == again and first != other


def test_a_validation_estimate_far_above_the_test_interval_flags_overfitting(
    credit: Workspace,  # noqa: F811
) -> None:
    model = fit_model(credit, cv_mean=0.99)
    report = run_acceptance(credit, model.ref, n_boot=50)
    auc = next(m for m in report.metrics if m.metric == "roc_auc")
    assert auc.overfit and auc.validation == 0.99 > auc.high and not report.passed
    assert find_acceptance(credit, model).meta["passed"] is False  # type: ignore[union-attr]


def test_a_failing_behavioural_test_fails_the_acceptance(credit: Workspace) -> None:  # noqa: F811
    model = fit_model(credit)
    ws = write_config(credit, """
        model:
          tests:
            - {name: defaults-raise-risk, kind: directional, column: previous_defaults,
               values: [0, 2, 4], direction: increasing}
            - {name: defaults-do-not-matter, kind: invariance, column: previous_defaults,
               values: [0, 5], epsilon: 0.01}
    """)
    report = run_acceptance(ws, model.ref, n_boot=20)
    assert [b.passed for b in report.behaviour] == [True, False] and not report.passed
    rendered = report.to_html()
    assert "defaults-do-not-matter" in rendered and "FAIL" in rendered


def test_too_few_resamples_are_refused(credit: Workspace) -> None:  # noqa: F811
    model = fit_model(credit)
    with pytest.raises(DataError, match="n_boot must be at least 10"):
        run_acceptance(credit, model.ref, n_boot=5)
    assert credit.artifacts(ACCEPTANCE_KIND) == []


def test_label_metrics_compare_at_the_chosen_threshold_not_the_cv_default() -> None:
    from mlstrata.model.acceptance import _validation
    from mlstrata.workspace import Artifact

    def artifact(meta: dict[str, object]) -> Artifact:
        return Artifact("0" * 64, "x", "x", 1, "", 0, "", "", "internal", "", "", meta)

    model = artifact({"cv": {"accuracy": {"mean": 0.84}, "roc_auc": {"mean": 0.78}}})
    evaluation = artifact({"metrics": {"accuracy": 0.66, "roc_auc": 0.77}})
    at_cost_threshold = _validation(model, evaluation, threshold=0.2)
    assert at_cost_threshold == {"accuracy": 0.66, "roc_auc": 0.78}
    assert _validation(model, evaluation, threshold=None) == {"accuracy": 0.84, "roc_auc": 0.78}
