"""A prediction is never NaN or infinite: the runtime names the record and the fields instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlstrata.runtime.inputs import InvalidInputError
from mlstrata.runtime.model import Predictions, load
from mlstrata.runtime.outputs import NonFinitePredictionError, require_finite
from mlstrata.runtime.signature import InputField, Signature

RECORD = {"age": 40, "income": 30000.0, "employment_years": 5, "loan_amount": 10000,
          "term_months": 36, "interest_rate": 5.0, "debt_to_income": 0.2, "num_credit_lines": 3,
          "previous_defaults": 0, "home_ownership": "rent", "purpose": "car", "region": "madrid",
          "application_date": "2023-01-01"}
NUMBERS = ("age", "income", "employment_years", "loan_amount", "term_months", "interest_rate",
           "debt_to_income", "num_credit_lines", "previous_defaults")


def _signature(*fields: InputField) -> Signature:
    return Signature("m@1", "regression", "y", fields, (), (), ())


@pytest.mark.parametrize("field", NUMBERS)
def test_1e300_in_any_number_is_named_not_answered_as_nan(
        uncontracted_packages: tuple[Path, Path], field: str) -> None:
    model = load(uncontracted_packages[1])
    with pytest.raises(NonFinitePredictionError) as caught:
        model.predict_records([RECORD, {**RECORD, field: 1e300}])
    message = str(caught.value)
    assert message.startswith(f"record 1, field '{field}': 1e+300 is above the training range (")
    assert "the model answers NaN for this record" in message and "\n" not in message
    assert [(p.row, p.field) for p in caught.value.problems] == [(1, field)]
    assert isinstance(caught.value, InvalidInputError)
    kept = caught.value.predictions
    assert kept is not None and np.isfinite(kept.rows(0, 1).probabilities).all()


def test_finite_records_score_as_before(uncontracted_packages: tuple[Path, Path]) -> None:
    predictions = load(uncontracted_packages[1]).predict_records([RECORD, {**RECORD, "age": None}])
    assert predictions.probabilities is not None
    assert np.isfinite(predictions.probabilities).all() and len(predictions) == 2


def test_a_package_without_contract_carries_the_training_ranges_as_warn_rules(
        uncontracted_packages: tuple[Path, Path]) -> None:
    """Like an inferred contract's, the ranges warn: a value past them is scored with a warning;
    1e300, which the model answers NaN for, is still refused (by the finite-answer guard); a
    strict model refuses both."""
    bounded, types_only = uncontracted_packages
    assert not (bounded / "contract.yaml").exists()
    inputs = {i["name"]: i for i in json.loads((bounded / "signature.json").read_text())["inputs"]}
    for name in NUMBERS:
        field = inputs[name]
        assert field["min"] <= field["training_min"] <= field["training_max"] <= field["max"]
    assert inputs["previous_defaults"]["max"] == inputs["previous_defaults"]["training_max"]
    assert inputs["income"]["max"] > inputs["income"]["training_max"]  # widened, not exact
    assert all(inputs[name]["nullable"] for name in inputs)
    assert all(inputs[name]["severity"] == {"min": "warn", "max": "warn"} for name in NUMBERS)
    assert "min" not in inputs["region"] and "training_min" not in inputs["application_date"]
    model = load(bounded)
    above = inputs["income"]["max"] + 1000.0
    (warned,) = model.predict_records([{**RECORD, "income": above}]).warnings
    assert [(w.field, w.rule) for w in warned] == [("income", "max")]
    with pytest.raises(NonFinitePredictionError, match=r"^record 0, field 'income': 1e\+300 is "
                                                       r"above the training range"):
        model.predict_records([{**RECORD, "income": 1e300}])
    with pytest.raises(InvalidInputError, match=r"^record 0, field 'income': [\d.]+ is above the "
                                                r"maximum \d"):
        load(bounded, strict=True).predict_records([{**RECORD, "income": above}])
    loose = json.loads((types_only / "signature.json").read_text())["inputs"]
    assert all("min" not in field and "max" not in field for field in loose)
    assert loose[1]["training_max"] == inputs["income"]["training_max"]


def test_infinity_and_several_records_and_fields() -> None:
    signature = _signature(InputField("x", "float", training_min=0.0, training_max=1.0),
                           InputField("y", "integer", training_min=0.0, training_max=5.0),
                           InputField("flag", "boolean"), InputField("city", "text"))
    columns = {"x": np.array([0.5, 9.0, 0.5]), "y": np.array([1.0, -3.0, 2.0]),
               "flag": np.array([1.0, 0.0, 1.0]),
               "city": np.array(["a", "b", None], dtype=object)}
    answers = Predictions(values=np.array([1.0, np.inf, -np.inf]))
    with pytest.raises(NonFinitePredictionError) as caught:
        require_finite(signature, columns, answers)
    problems = [(p.row, p.field, p.message) for p in caught.value.problems]
    assert [(row, field) for row, field, _ in problems] == [(1, "x"), (1, "y"), (2, "x"),
                                                             (2, "y")]
    assert problems[1][2].startswith("-3 is below the training range (0 to 5) and the model "
                                     "answers infinity")
    assert problems[2][2].startswith("the model answers infinity for this record and none of its "
                                     "numbers is outside the training range, so 0.5 is a suspect")
    assert caught.value.rows == [1, 2]


def test_without_training_ranges_or_numbers() -> None:
    no_ranges = _signature(InputField("x", "float"))
    with pytest.raises(NonFinitePredictionError, match="the package carries no training range"):
        require_finite(no_ranges, {"x": np.array([1e300])},
                       Predictions(probabilities=np.array([[np.nan, np.nan]]), classes=(0, 1),
                                   labels=np.array([0])))
    text_only = _signature(InputField("city", "text"))
    with pytest.raises(NonFinitePredictionError, match=r"^record 0, field '\*': the model "
                                                       "answers NaN for this record"):
        require_finite(text_only, {"city": np.array(["a"], dtype=object)},
                       Predictions(values=np.array([np.nan])))


def test_a_huge_number_is_shown_short_in_every_message() -> None:
    from mlstrata.runtime.inputs import columns_from_records

    signature = _signature(InputField("x", "float", max=10))
    _, problems = columns_from_records(signature, [{"x": 1e300}, {"x": 12.0}])
    assert [p.message for p in problems] == ["1e+300 is above the maximum 10",
                                             "12 is above the maximum 10"]


def test_finite_outputs_pass_untouched() -> None:
    signature = _signature(InputField("x", "float"))
    answers: Any = Predictions(values=np.array([1.0, 2.0]))
    require_finite(signature, {"x": np.array([1.0, 2.0])}, answers)
