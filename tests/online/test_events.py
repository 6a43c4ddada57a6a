"""Every event is checked against the contract before it can touch the model."""

from __future__ import annotations

import math

import pytest

from mlstrata.online.events import EventChecker, EventRefusedError
from mlstrata.online.spec import build_spec

from . import _stream


@pytest.fixture
def checker() -> EventChecker:
    return EventChecker(build_spec("loans", _stream.contract(), "paid", "logistic_regression"))


def _row(**changes: object) -> dict[str, object]:
    return {**_stream.rows(1)[0], **changes}


def test_an_error_rule_refuses_the_event_naming_field_and_rule(checker: EventChecker) -> None:
    with pytest.raises(EventRefusedError, match=r"field 'amount' \(rule min\).*send a value >= 0"):
        checker.learn_event(_row(amount=-5.0))


def test_a_warn_rule_on_a_feature_lets_the_event_through(checker: EventChecker) -> None:
    event = checker.learn_event(_row(region="west"))
    assert event["record"]["region"] == "west" and event["label"] in ("no", "yes")


@pytest.mark.parametrize(("label", "rule"), [("maybe", "allowed"), (None, "label"),
                                             (1, "type")])
def test_a_label_outside_the_targets_domain_is_refused(checker: EventChecker, label: object,
                                                       rule: str) -> None:
    with pytest.raises(EventRefusedError, match=rf"field 'paid' \(rule {rule}\)"):
        checker.learn_event(_row(paid=label))


def test_a_non_finite_number_is_refused(checker: EventChecker) -> None:
    with pytest.raises(EventRefusedError, match=r"field 'amount' \(rule finite\)"):
        checker.learn_event(_row(amount=math.inf))


def test_a_regression_label_must_be_a_finite_number_in_range() -> None:
    contract = _stream.contract().model_copy(update={"columns": {
        **_stream.contract().columns,
        "paid": _stream.contract().columns["amount"]}})
    checker = EventChecker(build_spec("amounts", contract, "paid", "linear_regression"))
    assert checker.spec.task == "regression"
    with pytest.raises(EventRefusedError, match=r"field 'paid' \(rule min\)"):
        checker.learn_event(_row(paid=-1.0))
    assert checker.learn_event(_row(paid=3))["label"] == 3.0


def test_a_prediction_needs_no_label_but_valid_inputs(checker: EventChecker) -> None:
    checker.check_prediction({k: v for k, v in _row().items() if k != "paid"})
    with pytest.raises(EventRefusedError, match="field 'opened'"):
        checker.check_prediction(_row(opened="yesterday"))
