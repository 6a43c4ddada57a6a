"""Checking events before they can touch a model, and their one JSON form.

Every event goes through the contract's own evaluator (:meth:`Contract.check_record`, as a live
request and a validated dataset do). A *learn* event is refused when:

- it breaks an ``error`` rule of the contract;
- its label breaks *any* rule of the target column — ``warn`` included: a value the contract
  only warns about is still outside the target's domain —, is missing, is not one of a
  classifier's classes, or is not a finite number for a regressor;
- a number is not finite (``inf`` passes a float column's type rule but would poison a
  linear model for good).

A *prediction* is checked the same way without the target. Refusals raise
:class:`EventRefusedError`, whose one-line message names the field, the rule and the fix.

An accepted event is written in one JSON form (:func:`encode_event`: the contract's columns,
dates as ISO text, and the label) and the model learns from that form decoded again
(:func:`decode_event`), so a model recovered from the event log learns exactly what the live
one learnt.

>>> from mlstrata.contract import Contract
>>> from mlstrata.online.spec import build_spec
>>> contract = Contract.model_validate({"columns": {"age": {"type": "integer", "min": 18},
...     "paid": {"type": "boolean"}}})
>>> checker = EventChecker(build_spec("m", contract, "paid", "knn"))
>>> checker.learn_event({"age": 40, "paid": True})
{'record': {'age': 40}, 'label': True}
>>> checker.learn_event({"age": 15, "paid": "maybe"})
Traceback (most recent call last):
...
mlstrata.online.events.EventRefusedError: event refused: field 'age' (rule min): field 'age' \
is 15, below the minimum 18; send a value >= 18 (and 1 more: paid type)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from ..contract import BAD, Violation, coerce
from ..errors import DataError
from .screen import Screen
from .spec import OnlineSpec

__all__ = ["EventChecker", "EventRefusedError", "decode_event", "encode_event"]

Event = dict[str, Any]
"""An accepted learn event: ``{"record": {column: value}, "label": label}``."""


class EventRefusedError(DataError):
    """An event breaks the contract, or its label is outside the target's domain; the model
    never saw it. ``violations`` lists every problem found (the message names the first)."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        first = self.violations[0]
        where = f"field '{first.field}' (rule {first.rule})" if first.field \
            else f"rule {first.rule}"
        more = self.violations[1:]
        rest = (f" (and {len(more)} more: "
                + ", ".join(f"{v.field or ''} {v.rule}".strip() for v in more) + ")") if more \
            else ""
        super().__init__(f"event refused: {where}: {first.message}{rest}")


class EventChecker:
    """The contract of one online model compiled for its learn and predict events."""

    def __init__(self, spec: OnlineSpec) -> None:
        self.spec = spec
        self._target = spec.target
        self._kind = spec.contract.columns[spec.target].type
        self._columns = [name for name in spec.contract.columns if name != spec.target]
        # the contract's own record evaluator, compiled once (what Contract.check_record runs),
        # behind a screen that lets the events which surely pass every rule skip it
        inputs = spec.contract.without_columns([spec.target])
        self._events = spec.contract.record_checker()
        self._inputs = inputs.record_checker()
        self._event_screen = Screen.of(spec.contract)
        self._input_screen = Screen.of(inputs)

    def learn_event(self, record: Mapping[str, Any]) -> Event:
        """The accepted event for ``record`` (features and label), or :class:`EventRefusedError`."""
        screen = self._event_screen
        if screen is not None and screen.passes(record) \
                and not self._label_problems(record[self._target]):
            return self._accepted(record)
        found = [v for v in self._events.check(record, include_warnings=True)
                 if v.severity == "error" or v.field == self._target]
        found += self._not_finite(record)
        if not any(v.field == self._target for v in found):
            found += self._label_problems(record.get(self._target))
        if found:
            raise EventRefusedError(found)
        return self._accepted(record)

    def check_prediction(self, record: Mapping[str, Any]) -> None:
        """Refuse a record a prediction cannot be made for (an ``error`` rule broken)."""
        if self._input_screen is not None and self._input_screen.passes(record):
            return
        found = self._inputs.check(record) + self._not_finite(record)
        if found:
            raise EventRefusedError(found)

    def _accepted(self, record: Mapping[str, Any]) -> Event:
        return {"record": {name: record.get(name) for name in self._columns},
                "label": coerce(self._kind, record[self._target])}

    def _label_problems(self, label: Any) -> list[Violation]:
        target = self._target
        if label is None:
            return [Violation(target, "label", f"the label '{target}' is missing; a learn event "
                                               "needs one (send it, or predict instead)")]
        value = coerce(self._kind, label)
        if self.spec.task == "classification" and value not in self.spec.classes:
            return [Violation(target, "classes", f"label {label!r} is not one of the model's "
                              f"classes {list(self.spec.classes)}; send one of them", label)]
        if self.spec.task == "regression" and (value is BAD or not math.isfinite(value)):
            return [Violation(target, "finite", f"label {label!r} is not a finite number; "
                                                "send a number", label)]
        return []

    def _not_finite(self, record: Mapping[str, Any]) -> list[Violation]:
        return [Violation(name, "finite", f"field '{name}' is {value}, not a finite number; "
                                          "send a finite number or null", value)
                for name in self.spec.numbers
                if isinstance(value := record.get(name), float) and not math.isfinite(value)]


def encode_event(event: Event) -> bytes:
    """The event's JSON (dates as ISO text, decimals as floats), as the event log stores it."""
    return orjson.dumps(event, default=_json_default)


def decode_event(data: bytes) -> Event:
    """An event from :func:`encode_event`'s bytes."""
    event: Event = orjson.loads(data)
    return event


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
