"""Gate expressions: parsing, the grammar error, operating points and the cost threshold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlstrata.errors import ConfigError
from mlstrata.model.gates import (
    Condition,
    best_operating_point,
    cost_threshold,
    parse_gate,
)


@pytest.mark.parametrize(("text", "metric", "op", "value"), [
    ("roc_auc >= 0.80", "roc_auc", ">=", 0.8),
    ("rmse<=1200", "rmse", "<=", 1200.0),
    ("  R2 > -0.5 ", "r2", ">", -0.5),
    ("log_loss < 1e-1", "log_loss", "<", 0.1),
])
def test_plain_gates_parse(text: str, metric: str, op: str, value: float) -> None:
    gate = parse_gate(text)
    assert gate.condition == Condition(metric, op, value) and gate.at is None


def test_operating_point_gate_parses_both_conditions() -> None:
    gate = parse_gate("recall >= 0.7 at precision >= 0.6")
    assert gate.condition == Condition("recall", ">=", 0.7)
    assert gate.at == Condition("precision", ">=", 0.6)


@pytest.mark.parametrize("text", ["roc_auc", "roc_auc => 0.8", "auc >= high", "recall >= 0.7 at",
                                  "roc_auc >= 0.8 and f1 >= 0.5", ">= 0.8"])
def test_unparseable_gate_names_the_expression_and_the_grammar(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_gate(text, "model.gates.metrics[2]")
    message = str(caught.value)
    assert f"model.gates.metrics[2]: cannot parse gate '{text}'" in message
    assert "METRIC OP NUMBER at METRIC OP NUMBER" in message and "\n" not in message


def test_operating_point_needs_threshold_metrics() -> None:
    with pytest.raises(ConfigError, match="'roc_auc' in an 'at' form.*precision, recall"):
        parse_gate("roc_auc >= 0.7 at precision >= 0.6")


def test_best_operating_point_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    positive = rng.random(400) < 0.3
    scores = np.clip(positive * 0.3 + rng.random(400) * 0.7, 0, 1)
    gate = parse_gate("recall >= 0.5 at precision >= 0.6")
    point = best_operating_point(gate, positive, scores)
    assert point is not None
    best = max(
        (positive & (scores >= t)).sum() / positive.sum()
        for t in np.unique(scores)
        if (positive & (scores >= t)).sum() / (scores >= t).sum() >= 0.6
    )
    assert point.value == pytest.approx(best) and point.constraint_value >= 0.6
    predicted = scores >= point.threshold
    assert (positive & predicted).sum() / positive.sum() == pytest.approx(point.value)


def test_unreachable_constraint_has_no_operating_point() -> None:
    positive = np.array([True, False, False, False])
    scores = np.array([0.1, 0.9, 0.8, 0.7])
    assert best_operating_point(parse_gate("recall >= 0.5 at precision >= 0.9"),
                                positive, scores) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=1, max_size=40),
       st.floats(0, 10), st.floats(0, 10))
def test_cost_threshold_is_the_minimum_over_all_thresholds(
    rows: list[tuple[bool, float]], fp: float, fn: float
) -> None:
    positive = np.array([r[0] for r in rows])
    scores = np.array([r[1] for r in rows])
    choice = cost_threshold({"fp": fp, "fn": fn}, positive, scores)

    def cost(t: float) -> float:
        predicted = scores >= t
        return fp * float((predicted & ~positive).sum()) + fn * float((~predicted & positive).sum())

    candidates = [*np.unique(scores), np.inf]
    assert choice.cost == pytest.approx(min(cost(t) for t in candidates))
    assert cost(choice.threshold) == pytest.approx(choice.cost)
    assert choice.cost_at_half == pytest.approx(cost(0.5))


def test_cost_matrix_with_unknown_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"cost_matrix: unknown key\(s\) \['false_pos'\]"):
        cost_threshold({"false_pos": 1.0}, np.array([True]), np.array([0.5]))
