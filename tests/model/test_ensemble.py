"""Ensembles: what is built for each task, and which ones convert to ONNX with parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlstrata.model.candidates import CANDIDATES
from mlstrata.model.ensemble import Member, build_ensembles
from mlstrata.package.onnx_export import measure_parity, to_onnx


def _members(task: str, names: list[str]) -> list[Member]:
    small = {"n_estimators": 15}
    return [Member(n, CANDIDATES[n].build(task, small if n in ("lightgbm", "xgboost") else {}, 0),
                   CANDIDATES[n].onnx) for n in names]


def _data(task: str) -> tuple[pd.DataFrame, np.ndarray]:  # type: ignore[type-arg]
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    if task == "regression":
        return X, (X.a * 2 + rng.normal(size=300)).to_numpy()
    if task == "binary":
        return X, (X.a + X.b > 0).astype(int).to_numpy()
    return X, np.where(X.a > 0.5, "hi", np.where(X.a < -0.5, "lo", "mid"))


def test_kinds_by_task_and_member_count() -> None:
    two = _members("binary", ["lightgbm", "logistic"])
    built = build_ensembles(["voting", "stacking", "bagging"], "binary", two, seed=0)
    assert [(e.kind, e.members) for e in built] == [
        ("voting", ("lightgbm", "logistic")), ("stacking", ("lightgbm", "logistic")),
        ("bagging", ("lightgbm",))]
    assert type(built[0].estimator).__name__ == "VotingClassifier"
    assert built[0].estimator.voting == "soft"
    assert built[1].params == {"kind": "stacking", "members": ["lightgbm", "logistic"]}
    one = build_ensembles(["voting", "stacking", "bagging"], "binary", two[:1], seed=0)
    assert [e.kind for e in one] == ["bagging"]
    regression = build_ensembles(["voting", "stacking"], "regression",
                                 _members("regression", ["ridge", "tree"]), seed=0)
    assert [type(e.estimator).__name__ for e in regression] == ["VotingRegressor",
                                                                "StackingRegressor"]
    assert build_ensembles(["voting"], "clustering", two, seed=0) == []


def test_an_ensemble_converts_when_all_its_members_do() -> None:
    members = _members("binary", ["dummy", "logistic"])
    flags = {e.kind: e.onnx for e in build_ensembles(["voting", "stacking", "bagging"],
                                                      "binary", members, seed=0)}
    assert flags == {"voting": False, "stacking": False, "bagging": False}
    flags = {e.kind: e.onnx for e in build_ensembles(["voting", "bagging"], "binary",
                                                      members[::-1], seed=0)}
    assert flags == {"voting": False, "bagging": True}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("boosting", ["lightgbm", "xgboost", "hist_gb"])
def test_convertible_ensembles_export_to_onnx_with_parity(task: str, boosting: str) -> None:
    linear = "ridge" if task == "regression" else "logistic"
    X, y = _data(task)
    for ensemble in build_ensembles(["voting", "stacking", "bagging"], task,
                                    _members(task, [boosting, linear]), seed=0):
        assert ensemble.onnx
        pipe = Pipeline([("features", StandardScaler()), ("model", ensemble.estimator)])
        pipe.fit(X, y)
        exported = to_onnx(pipe, X.head(5), task)
        parity = measure_parity(pipe, exported.model_bytes, X, task)
        assert parity.passed, (ensemble.kind, parity.to_dict())


@pytest.mark.parametrize("labels", [["no", "yes"], [False, True], [1, 2]], ids=str)
def test_every_ensemble_answers_with_the_users_labels(labels: list[object]) -> None:
    X, codes = _data("binary")
    y = np.asarray(labels, dtype=object)[codes].astype(type(labels[0]))
    for ensemble in build_ensembles(["voting", "stacking", "bagging"], "binary",
                                    _members("binary", ["xgboost", "logistic"]), seed=0):
        fitted = ensemble.estimator.fit(X, y)
        assert list(fitted.classes_) == labels, ensemble.kind
        assert set(fitted.predict(X).tolist()) <= set(labels)


def test_stacking_folds_follow_the_split_rule_for_a_rare_class() -> None:
    """sklearn's StratifiedKFold warned that 3 rows of a class are fewer than its 5 folds (an
    error under this suite's filterwarnings); the split rule pools them and deals them out."""
    X, y = _data("multiclass")
    y = y.astype(object)
    y[:3] = "rare"
    [stacking] = build_ensembles(["stacking"], "multiclass",
                                 _members("multiclass", ["logistic", "tree"]), seed=0)
    assert "rare" in stacking.estimator.fit(X, y).classes_
