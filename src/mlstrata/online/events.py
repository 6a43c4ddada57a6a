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

__all__ = ["EventChecker", "EventRefusedError", "as_learnt", "decode_event", "encode_event",
           "logged_forms", "round_trips"]

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


def logged_forms(events: Sequence[Event]) -> tuple[list[bytes], list[Event]]:
    """Each event's JSON for the event log, and each event as a model learns it: its JSON
    decoded again, so that a model recovered from the log learns exactly what the live one
    learnt — the event itself when decoding would change nothing (:func:`round_trips`).

    >>> logged_forms([{"record": {"x": 1.5}, "label": 1}, {"record": {"x": float("nan")},
    ...                                                   "label": 0}])
    ([b'{"record":{"x":1.5},"label":1}', b'{"record":{"x":null},"label":0}'], \
[{'record': {'x': 1.5}, 'label': 1}, {'record': {'x': None}, 'label': 0}])
    """
    exact = [round_trips(event) for event in events]
    payloads = _encode_plain(events) if all(exact) else None
    if payloads is None:
        payloads = [encode_event(event) for event in events]
    return payloads, [event if same else decode_event(payload)
                      for event, same, payload in zip(events, exact, payloads, strict=True)]


def as_learnt(event: Event) -> Event:
    """``event`` as a model learns it (see :func:`logged_forms`), without logging it."""
    return event if round_trips(event) else decode_event(encode_event(event))


_PLAIN = frozenset({str, int, bool, type(None)})
_INT64 = 1 << 63


def round_trips(event: Event) -> bool:
    """Whether ``event`` equals its decoded JSON (text, 64-bit ints, booleans, nulls, finite
    floats — JSON round-trips them exactly).

    >>> round_trips({"record": {"a": 1.5, "b": "x", "c": None}, "label": True})
    True
    >>> round_trips({"record": {"a": float("nan")}, "label": 1})
    False
    >>> round_trips({"record": {}, "label": 2**64})
    False
    """
    for value in (event["label"], *event["record"].values()):
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN and ±inf become null in JSON
                return False
        elif kind not in _PLAIN or (kind is int and not -_INT64 <= value < _INT64):
            return False
    return True


_EVENT_START = b'{"record":'
_BETWEEN_EVENTS = b"," + _EVENT_START


def _encode_plain(events: Sequence[Event]) -> list[bytes] | None:
    """:func:`encode_event` of each of ``events`` — all of them :func:`round_trips` — from one
    ``orjson`` call for the whole list, cut at the events' starts: ~0.6 µs an event instead of
    ~3 µs for a call each (every call allocates a 1 KiB buffer, and thousands of them kept
    alive at once are slow to allocate). Such values are never objects, and a quote inside text
    is escaped (``\\"``), so ``,{"record":`` occurs only where an event starts; None when an
    event does not start with its ``record`` (then the pieces would not match the events)."""
    pieces = orjson.dumps(list(events))[1:-1].split(_BETWEEN_EVENTS)
    if len(pieces) != len(events) or (events and not pieces[0].startswith(_EVENT_START)):
        return None
    return [pieces[0], *[_EVENT_START + piece for piece in pieces[1:]]]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
