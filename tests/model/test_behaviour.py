"""Behavioural tests on a fitted credit model: invariance, directional, minimum functionality."""

from __future__ import annotations

from typing import Any

import pytest

from mlstrata.config import BehaviouralTest
from mlstrata.errors import ConfigError
from mlstrata.model.artifact import load_model
from mlstrata.model.behaviour import run_behavioural_tests
from mlstrata.model.data import load_training_data
from mlstrata.workspace import Workspace
from tests.model._fitted import _template, credit, fit_model  # noqa: F401


@pytest.fixture
def model_and_rows(credit: Workspace) -> tuple[Any, Any]:  # noqa: F811
    artifact = fit_model(credit)
    _, pipeline = load_model(credit, artifact.ref)
    names = [c["name"] for c in artifact.meta["inputs"]]
    return pipeline, load_training_data(credit, "credit").features("validation")[names]


def _run(model_and_rows: tuple[Any, Any], **fields: Any) -> Any:
    pipeline, rows = model_and_rows
    (result,) = run_behavioural_tests(pipeline, rows, [BehaviouralTest(name="t", **fields)])
    return result


def test_invariance_passes_within_epsilon_and_fails_beyond(model_and_rows: Any) -> None:
    loose = _run(model_and_rows, kind="invariance", column="purpose", values=["car", "wedding"],
                 epsilon=0.9)
    strict = _run(model_and_rows, kind="invariance", column="previous_defaults", values=[0, 6],
                  epsilon=0.001)
    assert loose.passed and loose.failures == 0 and loose.checked == 200
    assert not strict.passed and strict.failures > 0
    assert "previous_defaults" in strict.detail and "epsilon 0.001" in strict.detail


def test_directional_expectation_holds_one_way_only(model_and_rows: Any) -> None:
    # the logistic model learned that more previous defaults raise the default probability
    rises = _run(model_and_rows, kind="directional", column="previous_defaults",
                 values=[0, 1, 2, 4], direction="increasing", epsilon=0.0)
    falls = _run(model_and_rows, kind="directional", column="previous_defaults",
                 values=[0, 1, 2, 4], direction="decreasing", epsilon=0.0)
    assert rises.passed and not falls.passed and falls.failures == falls.checked


def test_directional_defaults_to_a_quantile_grid(model_and_rows: Any) -> None:
    result = _run(model_and_rows, kind="directional", column="previous_defaults",
                  direction="increasing")
    assert result.passed and "previous_defaults goes through" in result.detail


def test_minimum_functionality_cases(model_and_rows: Any) -> None:
    result = _run(model_and_rows, kind="minimum", cases=[
        {"previous_defaults": 6, "min": 0.5},
        {"previous_defaults": 0, "expected": 0},
        {"previous_defaults": 0, "max": 0.01},
    ])
    assert not result.passed and result.checked == 3 and result.failures == 1
    assert result.detail.startswith("case 3: score") and "> max 0.01" in result.detail


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "invariance", "column": "salary", "values": [1]},
     "'t': column 'salary' is not an input of the model; use one of age, income"),
    ({"kind": "invariance", "column": "age"}, "'t': an invariance test needs 'values'"),
    ({"kind": "directional", "column": "age"}, "needs 'direction: increasing'"),
    ({"kind": "minimum"}, "needs 'cases'"),
    ({"kind": "minimum", "cases": [{"agee": 3, "expected": 1}]},
     r"case 1 names unknown column\(s\) \['agee'\]"),
    ({"kind": "minimum", "cases": [{"age": 3}]}, "case 1 expects nothing"),
])
def test_declaration_errors_name_the_test(
    model_and_rows: Any, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _run(model_and_rows, **fields)
