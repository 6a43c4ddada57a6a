"""Decay verdicts on a window's labelled predictions: real decay is flagged, noise is not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlstrata.config import GateConfig
from mlstrata.monitor.decay import window_decay
from mlstrata.monitor.reference import (
    MetricEstimate,
    PredictionReference,
    Reference,
    ValidationReference,
)

NARROW = MetricEstimate(0.80, 0.79, 0.81)


def _reference(gates: list[str] | None = None, auc: MetricEstimate = NARROW) -> Reference:
    validation = ValidationReference(
        5_000, 0.5, {"roc_auc": auc},
        GateConfig(metrics=gates or []), 200)
    return Reference("m", 1, "binary", "y", ["no", "yes"], 5_000, {},
                     PredictionReference(5_000, None, None, None), validation)


def _labelled(rows: int, separation: float, seed: int) -> pd.DataFrame:
    """Labelled predictions of a classifier whose AUC is Φ(separation / √2)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    positive = 1 / (1 + np.exp(-(truth * separation + rng.normal(0, 1, rows) - separation / 2)))
    labels = np.where(truth == 1, "yes", "no")
    return pd.DataFrame({"label": labels, "prediction": np.where(positive >= 0.5, "yes", "no"),
                         "p0": 1 - positive, "p1": positive})


def test_a_model_that_lost_its_signal_decays() -> None:
    decay = window_decay(_reference(["roc_auc >= 0.7"]), 2_000, _labelled(1_000, 0.0, 1), 100)
    auc = next(m for m in decay.metrics if m.metric == "roc_auc")
    assert decay.evaluated and decay.coverage == 0.5 and decay.decayed
    assert auc.worse and auc.window_interval is not None and auc.window_interval[1] < 0.8
    assert [g.passed for g in decay.gates] == [False]


def test_a_small_window_below_the_interval_by_noise_is_not_decay() -> None:
    """The trap: 150 labels of a model as good as validated wobble by ±0.07 AUC, far more
    than the validation interval's ±0.01 — falling below it alone is not decay."""
    labelled = _labelled(150, 1.19, 3)  # true AUC 0.80, the validation estimate
    decay = window_decay(_reference(), 150, labelled, 100)
    auc = next(m for m in decay.metrics if m.metric == "roc_auc")
    assert auc.value is not None and auc.value < auc.low  # outside the validation interval
    assert auc.window_interval is not None and auc.window_interval[1] > 0.80
    assert not auc.worse and not decay.decayed


def test_too_few_labels_give_coverage_but_no_verdict() -> None:
    decay = window_decay(_reference(), 1_000, _labelled(40, 0.0, 2), 100)
    assert decay.labelled == 40 and decay.coverage == 0.04
    assert not decay.evaluated and not decay.decayed and decay.metrics == []


def test_labels_that_are_no_class_are_counted_and_left_out() -> None:
    labelled = _labelled(300, 1.19, 4)
    labelled.loc[:9, "label"] = "maybe"
    decay = window_decay(_reference(), 300, labelled, 100)
    assert decay.unknown_labels == 10 and decay.labelled == 290


def test_a_lucky_validation_estimate_is_not_held_against_a_window() -> None:
    """The second trap: the validation estimate is itself noisy. A window as good as the model
    (true AUC 0.78, inside the validation interval [0.77, 0.83]) whose 1,000 labels came out at
    0.764 has its whole interval below the estimate 0.80 — but the gap is within the noise of
    the two estimates together, so it is not decay."""
    reference = _reference(auc=MetricEstimate(0.80, 0.77, 0.83))
    decay = window_decay(reference, 1_000, _labelled(1_000, 1.092, 28), 100)
    auc = next(m for m in decay.metrics if m.metric == "roc_auc")
    assert auc.value is not None and auc.value < 0.77
    assert auc.window_interval is not None and auc.window_interval[1] < 0.80
    assert not auc.worse and not decay.decayed
