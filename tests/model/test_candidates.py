"""Shared contract of every model candidate: fit/predict per task, probabilities, ONNX parity."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlstrata.errors import ConfigError
from mlstrata.model.candidates import (
    CANDIDATES,
    default_candidates,
    register_onnx_converters,
    resolve_candidates,
)
from mlstrata.package.onnx_export import measure_parity, to_onnx

PAIRS = [(name, task) for name, c in CANDIDATES.items() for task in sorted(c.tasks)]
PARITY = 1e-4
LABEL_KINDS: dict[str, list[Any]] = {
    "text binary": ["no", "yes"],
    "text multiclass": ["setosa", "versicolor", "virginica"],
    "boolean": [False, True],
    "integers not 0..n-1": [1, 2],
}
"""Labels as real tables have them (every fixture used to have 0/1 labels, which hid that
XGBoost refuses anything else)."""
LABELLED = [(name, kind) for name, c in CANDIDATES.items() if "binary" in c.tasks
            for kind in LABEL_KINDS]


def _data(task: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Tiny synthetic data; features far from 0 so the scaler matters, a unit-scale target."""
    if task == "regression":
        X, y = make_regression(120, 5, noise=1.0, random_state=0)
        return X * 100 + 7.3, (y - y.mean()) / y.std()
    classes = 3 if task == "multiclass" else 2
    X, y = make_classification(120, 5, n_informative=4, n_redundant=0, n_classes=classes,
                               random_state=0)
    return X * 100 + 7.3, (None if task == "clustering" else y)


def _pipeline(name: str, task: str) -> Pipeline:
    params = {"n_clusters": 3} if task == "clustering" else {}
    estimator = CANDIDATES[name].build(task, params, seed=0)
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


@pytest.mark.parametrize(("name", "task"), PAIRS)
def test_candidate_fits_and_predicts(name: str, task: str) -> None:
    X, y = _data(task)
    pipe = _pipeline(name, task).fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (len(X),)
    if task in ("binary", "multiclass"):
        proba = pipe.predict_proba(X)
        assert proba.shape == (len(X), len(np.unique(y)))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        assert set(pred) <= set(y)
    elif task == "clustering":
        assert set(pred) <= {0, 1, 2}


def _parity(pipe: Pipeline, X: np.ndarray[Any, Any], task: str) -> float:
    """Max |ONNX - native| of the packager's export (labels must agree exactly)."""
    frame = _frame(X)
    with warnings.catch_warnings():  # skl2onnx reads SVC's probA_, deprecated in sklearn 1.9
        warnings.filterwarnings("ignore", category=FutureWarning, message="Attribute `prob")
        export = to_onnx(pipe, frame.head(20), task)
    parity = measure_parity(pipe, export.model_bytes, frame, task)
    assert parity.label_mismatches == 0
    return parity.max_abs_diff_scores


def _frame(X: np.ndarray[Any, Any]) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "task"), [p for p in PAIRS if CANDIDATES[p[0]].onnx])
def test_onnx_conversion_matches_native(name: str, task: str) -> None:
    X, y = _data(task)
    pipe = _pipeline(name, task).fit(_frame(X), y)
    assert _parity(pipe, X, task) <= PARITY


@pytest.mark.slow
@pytest.mark.parametrize(("name", "task"), [p for p in PAIRS if not CANDIDATES[p[0]].onnx])
def test_unconvertible_candidates_still_do_not_convert(name: str, task: str) -> None:
    """Fails when a library upgrade fixes the conversion: then flip the candidate's onnx flag."""
    X, y = _data(task)
    pipe = _pipeline(name, task).fit(_frame(X), y)
    try:
        parity = _parity(pipe, X, task)
    except Exception:  # noqa: BLE001 - any conversion failure is what this test expects
        return
    assert parity > PARITY, f"{name} now converts within {PARITY}: set onnx=True"


def _labelled(kind: str) -> tuple[pd.DataFrame, pd.Series, str]:
    """Features and the user's own labels of ``kind`` (0..n-1 codes mapped to them)."""
    labels = LABEL_KINDS[kind]
    task = "multiclass" if len(labels) > 2 else "binary"
    X, codes = _data(task)
    assert codes is not None
    return _frame(X), pd.Series(np.asarray(labels, dtype=object)[codes]).astype(
        type(labels[0])), task


@pytest.mark.parametrize(("name", "kind"), LABELLED)
def test_candidate_answers_with_the_users_labels(name: str, kind: str) -> None:
    frame, y, task = _labelled(kind)
    pipe = _pipeline(name, task).fit(frame, y)
    assert list(pipe.classes_) == sorted(LABEL_KINDS[kind])
    assert set(pipe.predict(frame).tolist()) <= set(LABEL_KINDS[kind])
    assert pipe.predict_proba(frame).shape == (len(frame), len(LABEL_KINDS[kind]))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), [p for p in LABELLED if CANDIDATES[p[0]].onnx])
def test_onnx_export_keeps_the_users_labels(name: str, kind: str) -> None:
    frame, y, task = _labelled(kind)
    pipe = _pipeline(name, task).fit(frame, y)
    export = to_onnx(pipe, frame.head(20), task)
    assert export.outputs[1]["classes"] == sorted(LABEL_KINDS[kind])
    assert _parity(pipe, frame.to_numpy(), task) <= PARITY


def test_register_onnx_converters_is_idempotent() -> None:
    register_onnx_converters()
    register_onnx_converters()
    X, y = _data("binary")
    pipe = _pipeline("lightgbm", "binary").fit(_frame(X), y)
    assert _parity(pipe, X, "binary") <= PARITY


def test_build_applies_defaults_params_and_seed() -> None:
    forest = CANDIDATES["random_forest"].build("regression", {"n_estimators": 7}, seed=42)
    assert forest.get_params()["n_estimators"] == 7
    assert forest.get_params()["random_state"] == 42
    assert forest.get_params()["min_samples_leaf"] == 5
    assert forest.get_params()["max_leaf_nodes"] == 2048  # bounded size, whatever the rows


def test_a_forest_on_many_rows_stays_small() -> None:
    """Fully grown, a forest's size grows with the rows (a 672 MB package at 100k rows)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60_000, 4))
    y = (X[:, 0] + rng.normal(size=60_000) > 0).astype(int)  # uncapped: 5,587 leaves
    forest = CANDIDATES["extra_trees"].build("binary", {"n_estimators": 5}, seed=0).fit(X, y)
    assert max(tree.tree_.n_leaves for tree in forest.estimators_) <= 2048


def test_unknown_hyper_parameter_names_candidate_and_close_matches() -> None:
    with pytest.raises(ConfigError) as err:
        CANDIDATES["lightgbm"].build("binary", {"num_leafs": 8}, seed=0)
    message = str(err.value)
    assert "model.params.lightgbm" in message and "'num_leafs'" in message
    assert "num_leaves" in message and "\n" not in message


def test_lightgbm_is_silent_and_takes_its_keyword_only_params(
    capfd: pytest.CaptureFixture[str],
) -> None:
    X, y = _data("binary")
    _pipeline("lightgbm", "binary").fit(X, y)
    assert "[LightGBM]" not in "".join(capfd.readouterr())
    chosen = CANDIDATES["lightgbm"].build("binary", {"verbose": 0, "max_bin": 63}, seed=0)
    assert chosen.get_params()["verbose"] == 0 and chosen.get_params()["max_bin"] == 63
    with pytest.raises(ConfigError, match="'verbos'.*did you mean verbose"):
        CANDIDATES["lightgbm"].build("binary", {"verbos": 0}, seed=0)


def test_forests_use_every_core() -> None:
    for name in ("random_forest", "extra_trees"):
        assert CANDIDATES[name].build("binary", {}, seed=0).get_params()["n_jobs"] == -1


def test_svm_params_are_checked_against_svc_not_its_calibrator() -> None:
    svm = CANDIDATES["svm"].build("binary", {"C": 3.0}, seed=0)
    assert svm.estimator.C == 3.0
    with pytest.raises(ConfigError, match="'ensemble'"):
        CANDIDATES["svm"].build("binary", {"ensemble": True}, seed=0)


def test_build_refuses_a_task_the_candidate_does_not_handle() -> None:
    with pytest.raises(ConfigError, match="'naive_bayes' does not handle task 'regression'"):
        CANDIDATES["naive_bayes"].build("regression", {}, seed=0)


def test_search_space_suggests_only_known_parameters() -> None:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for name, task in PAIRS:
        params = CANDIDATES[name].search_space(study.ask(), task)
        CANDIDATES[name].build(task, params, seed=0)  # raises on an unknown parameter


def test_default_candidates_follow_task_and_size() -> None:
    small = default_candidates("binary", rows=1_000)
    assert {"dummy", "logistic", "svm", "knn", "lightgbm", "naive_bayes"} <= set(small)
    assert "ridge" not in small and "kmeans" not in small
    big = default_candidates("binary", rows=100_000)
    assert "svm" not in big and "knn" not in big
    assert default_candidates("clustering", rows=50) == ["kmeans", "minibatch_kmeans"]


def test_resolve_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="unknown model 'lightgmb'; did you mean lightgbm"):
        resolve_candidates(["lightgmb"], "binary", 100, require_onnx=False)


def test_resolve_require_onnx_drops_and_names_unconvertible(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlstrata.model.candidates"):
        kept = resolve_candidates(["dummy", "xgboost", "logistic"], "binary", 100, True)
    assert [c.name for c in kept] == ["xgboost", "logistic"]
    assert "dummy (cannot be exported" in caplog.text and "xgboost" not in caplog.text
    assert len(resolve_candidates(None, "binary", 100, require_onnx=False)) > len(
        resolve_candidates(None, "binary", 100, require_onnx=True))


def test_resolve_with_nothing_left_is_an_error() -> None:
    with pytest.raises(ConfigError, match="none of dummy can train here.*require_onnx: false"):
        resolve_candidates(["dummy"], "regression", 100, require_onnx=True)


def test_unknown_task_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown task 'ranking'"):
        default_candidates("ranking", rows=10)
