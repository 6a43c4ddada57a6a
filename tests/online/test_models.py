"""Every model kind, classifier and regressor: learns, and a checkpoint plus the events after it
equals the uninterrupted run (the property recovery rests on)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from mlstrata.contract import Contract
from mlstrata.errors import ConfigError, ContractError
from mlstrata.online.estimators import MODEL_KINDS, build_pipeline
from mlstrata.online.learner import OnlineModel
from mlstrata.online.spec import OnlineSpec, build_spec

from . import _stream

_FAST = {"adaptive_random_forest": {"n_models": 3}}


def _regression_contract() -> Contract:
    columns = dict(_stream.contract().columns)
    columns["paid"] = columns["amount"]
    return Contract.model_validate({"columns": {n: s.model_dump() for n, s in columns.items()}})


def _specs() -> list[Any]:
    made = []
    for kind in MODEL_KINDS:
        if kind != "linear_regression":
            made.append(pytest.param(_stream.contract(), kind, id=f"{kind}-classifier"))
        if kind != "logistic_regression":
            made.append(pytest.param(_regression_contract(), kind, id=f"{kind}-regressor"))
    return made


def _rows(task: str, count: int, seed: int = 0) -> list[dict[str, Any]]:
    rows = _stream.rows(count, seed)
    if task == "regression":
        for row in rows:
            row["paid"] = row["amount"] * 2 + (row["region"] == "north")
    return rows


def _learn(model: OnlineModel, rows: list[dict[str, Any]]) -> None:
    model.learn_events([model.checker.learn_event(row) for row in rows])


@pytest.mark.parametrize(("contract", "kind"), _specs())
def test_checkpoint_then_events_equals_the_uninterrupted_run(contract: Contract,
                                                              kind: str) -> None:
    spec = build_spec("m", contract, "paid", kind, params=_FAST.get(kind), seed=7)
    rows = _rows(spec.task, 400)
    uninterrupted = OnlineModel(spec, build_pipeline(spec))
    _learn(uninterrupted, rows)
    first = OnlineModel(spec, build_pipeline(spec))
    _learn(first, rows[:150])
    resumed = OnlineModel(spec, pickle.loads(pickle.dumps(first.pipeline)), first.seq)
    _learn(resumed, rows[150:])
    held_out = _rows(spec.task, 100, seed=5)
    assert resumed.seq == uninterrupted.seq == 400
    assert [resumed.predict(r) for r in held_out] == [uninterrupted.predict(r) for r in held_out]
    answers = [uninterrupted.predict(r).answer for r in held_out]
    if spec.task == "classification":
        assert sum(a == r["paid"] for a, r in zip(answers, held_out, strict=True)) > 60
    else:
        assert len(set(answers)) > 10  # it learnt something: not one constant answer


@pytest.mark.parametrize(("contract", "kind"), _specs())
def test_predicting_between_events_changes_nothing(contract: Contract, kind: str) -> None:
    """Progressive validation predicts before each event; recovery replays without predicting.
    River's default k-NN search (SWINN) draws random numbers while predicting and fails this."""
    spec = build_spec("m", contract, "paid", kind, params=_FAST.get(kind), seed=3)
    rows = _rows(spec.task, 800)
    quiet, observed = (OnlineModel(spec, build_pipeline(spec)) for _ in range(2))
    _learn(quiet, rows)
    observed.learn_events([observed.checker.learn_event(r) for r in rows],
                          observe=lambda label, prediction: None)
    held_out = _rows(spec.task, 100, seed=6)
    assert [quiet.predict(r) for r in held_out] == [observed.predict(r) for r in held_out]


def test_the_spec_survives_its_json_form() -> None:
    spec = build_spec("m", _stream.contract(), "paid", "knn", params={"n_neighbors": 3})
    assert OnlineSpec.from_json(spec.to_json()) == spec


def test_three_classes_train_one_logistic_regression_per_class() -> None:
    columns = {n: s.model_dump() for n, s in _stream.contract().columns.items()}
    columns["paid"] = {"type": "integer", "allowed": [3, 1, 2]}
    spec = build_spec("m", Contract.model_validate({"columns": columns}), "paid",
                      "logistic_regression")
    model = OnlineModel(spec, build_pipeline(spec))
    rows = [{**row, "paid": 1 + int(row["amount"] // 34)} for row in _stream.rows(300)]
    _learn(model, rows)
    prediction = model.predict(rows[0])
    assert spec.classes == (1, 2, 3) and set(prediction.probabilities) == {1, 2, 3}
    assert sum(model.predict(r).label == r["paid"] for r in rows) > 200


@pytest.mark.parametrize(("kind", "message"), [
    ("logistic_regresion", "did you mean logistic_regression"),
    ("linear_regression", "does not fit a classification target"),
])
def test_a_wrong_model_is_refused_with_the_fix(kind: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_spec("m", _stream.contract(), "paid", kind)


def test_an_unknown_target_and_a_text_target_without_classes_are_refused() -> None:
    with pytest.raises(ContractError, match="did you mean paid"):
        build_spec("m", _stream.contract(), "payd", "knn")
    columns = {"x": {"type": "float"}, "y": {"type": "text"}}
    with pytest.raises(ContractError, match="lists no allowed classes"):
        build_spec("m", Contract.model_validate({"columns": columns}), "y", "knn")
