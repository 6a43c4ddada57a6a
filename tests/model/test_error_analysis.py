"""Error analysis of out-of-fold predictions: confusion, calibration, residuals, worst, segments."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlstrata.model.error_analysis import analyze_errors


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "region": np.where(np.arange(n) < n // 2, "north", "south"),
        "income": rng.normal(50, 10, n),
        "flag": np.arange(n) % 2 == 0,
    })


def test_binary_confusion_per_class_and_calibration() -> None:
    frame = _frame()
    actual = np.array(["no", "yes"] * 100)
    proba_yes = np.where(actual == "yes", 0.8, 0.3)
    proba_yes[:10] = np.where(actual[:10] == "yes", 0.1, 0.95)   # ten confident mistakes
    predicted = np.where(proba_yes >= 0.5, "yes", "no")
    probabilities = np.column_stack([1 - proba_yes, proba_yes])
    result = analyze_errors("binary", frame, actual, predicted, probabilities, ["no", "yes"])
    assert result.labels == ["no", "yes"]
    assert result.confusion == [[95, 5], [5, 95]]
    assert result.overall_error == pytest.approx(0.05)
    yes = next(c for c in result.per_class if c.label == "yes")
    assert (yes.precision, yes.recall, yes.support) == (pytest.approx(0.95), 0.95, 100)
    assert result.calibration is not None
    assert sum(result.calibration.counts) == 200
    assert result.calibration.brier > 0
    assert {w.row for w in result.worst} == set(range(10))   # the confident mistakes
    assert result.worst[0].features.keys() == {"region", "flag", "income"}
    by_region = {s.segment: s.error for s in result.segments if s.column == "region"}
    assert by_region == {"north": pytest.approx(0.1), "south": 0.0}
    json.dumps(result.to_dict())


def test_multiclass_without_probabilities_uses_zero_one_loss() -> None:
    frame = _frame(6)
    actual = ["a", "b", "c", "a", "b", "c"]
    predicted = ["a", "b", "c", "b", "b", "a"]
    result = analyze_errors("multiclass", frame, actual, predicted, top_n=2)
    assert result.calibration is None
    assert result.confusion[0] == [1, 1, 0]
    assert [w.loss for w in result.worst] == [1.0, 1.0]
    assert {w.row for w in result.worst} == {3, 5}


def test_regression_residuals_and_numeric_bins() -> None:
    frame = _frame()
    actual = frame["income"].to_numpy() * 2
    predicted = actual + np.where(frame["income"] > 60, 10.0, 0.0)
    result = analyze_errors("regression", frame, actual, predicted)
    assert result.residuals is not None
    assert result.residuals.bias < 0
    assert result.confusion == []
    bins = [s for s in result.segments if s.column == "income"]
    assert len(bins) == 5 and sum(s.rows for s in bins) == 200
    assert result.worst_segments(1)[0].column == "income"
    assert "predicted" not in result.to_dict()["residuals"]


def test_html_sections_embed_plots() -> None:
    frame = _frame(20)
    actual = np.array([0, 1] * 10)
    probabilities = np.column_stack([np.full(20, 0.4), np.full(20, 0.6)])
    result = analyze_errors("binary", frame, actual, np.ones(20, int), probabilities, [0, 1])
    uris = result.figure_uris()
    assert set(uris) == {"confusion", "calibration"}
    titles = [title for title, _ in result.html_sections(uris)]
    assert titles[:2] == ["Confusion matrix and per-class metrics", "Calibration"]
    html = "".join(str(part) for _, parts in result.html_sections(uris) for part in parts)
    assert "data:image/png;base64," in html
