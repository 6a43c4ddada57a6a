"""Metrics by task: names, defaults, direction and values against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlstrata.errors import ConfigError
from mlstrata.model.metrics import greater_is_better, metric_names, primary_metric, score, scores


@pytest.mark.parametrize(("task", "default"), [
    ("binary", "roc_auc"), ("multiclass", "f1_macro"), ("regression", "rmse"),
    ("clustering", "silhouette"),
])
def test_primary_metric_defaults(task: str, default: str) -> None:
    assert primary_metric(task, None) == default
    assert metric_names(task)[0] == default


def test_configured_metric_is_kept_when_valid() -> None:
    assert primary_metric("binary", "recall") == "recall"


def test_unknown_configured_metric_names_close_matches() -> None:
    with pytest.raises(ConfigError, match="model.metric: 'roc_uac' is not a binary metric; "
                                          "did you mean roc_auc"):
        primary_metric("binary", "roc_uac")


def test_regression_metric_on_a_classification_task_is_refused() -> None:
    with pytest.raises(ConfigError, match="'rmse' is not a multiclass metric"):
        primary_metric("multiclass", "rmse")


def test_direction() -> None:
    assert greater_is_better("roc_auc") and greater_is_better("r2")
    assert not any(greater_is_better(m) for m in ("log_loss", "brier", "rmse", "mae", "mape",
                                                   "davies_bouldin"))


def test_binary_metrics_with_string_labels_use_the_last_label_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no"])
    pred = np.array(["no", "yes", "no", "no"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    labels = ["no", "yes"]
    assert score("roc_auc", y, pred, proba, labels=labels) == 1.0
    assert score("recall", y, pred, labels=labels) == 0.5
    assert score("precision", y, pred, labels=labels) == 1.0
    brier = np.mean((np.array([0.1, 0.8, 0.4, 0.3]) - np.array([0, 1, 1, 0])) ** 2)
    assert score("brier", y, pred, proba, labels=labels) == pytest.approx(brier)


def test_multiclass_scores_cover_every_metric() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    proba = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.2, .5, .3], [.1, .7, .2],
                      [.6, .3, .1]])
    result = scores("multiclass", y, proba.argmax(axis=1), proba, labels=[0, 1, 2])
    assert set(result) == set(metric_names("multiclass"))
    assert result["accuracy"] == pytest.approx(5 / 6)
    assert result["log_loss"] == pytest.approx(-np.mean(np.log([.8, .8, .8, .3, .7, .6])))


def test_regression_scores() -> None:
    result = scores("regression", [1.0, 2.0, 4.0], [1.0, 3.0, 2.0])
    assert result["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert result["mae"] == pytest.approx(1.0)


def test_clustering_scores_read_the_features() -> None:
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    result = scores("clustering", None, [0, 0, 1, 1], X=X)
    assert result["silhouette"] > 0.9 and result["davies_bouldin"] < 0.1
    assert math.isnan(score("silhouette", None, [0, 0, 0, 0], X=X))


def test_probability_metric_without_probabilities_is_a_bug() -> None:
    with pytest.raises(ValueError, match="needs predicted probabilities"):
        score("roc_auc", [0, 1], [0, 1])


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'acuracy'; use one of accuracy"):
        score("acuracy", [0, 1], [0, 1])


def test_log_loss_takes_float32_probabilities_that_sum_to_one_within_float32() -> None:
    """XGBoost's probabilities are float32: their rows miss 1 by ~1e-7, which scikit-learn's
    log_loss warns about in float64 (and pytest turns warnings into errors)."""
    proba = np.array([[0.3, 0.7000001], [0.8, 0.2]], dtype=np.float32).astype(np.float64)
    loss = score("log_loss", np.array([1, 0]), np.array([1, 0]), proba, labels=[0, 1])
    assert loss == pytest.approx(-(math.log(0.7) + math.log(0.8)) / 2, rel=1e-6)
