"""The event screen against the contract's evaluator: a record it passes has no violation at all.

Hypothesis draws contracts (every column type, nullable or not, bounds, categories, a pattern,
warn or error) and records mixing valid values with every kind of wrong one (missing, null,
NaN, ±inf, huge ints, booleans for numbers, Decimals, dates as objects and as text, text
that is no date); the screen may only say "passes" when the evaluator finds nothing, and must
say it for a valid record of plain values (else the fast path would silently go unused).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlstrata.contract import Contract
from mlstrata.online.screen import Screen

TYPES = ("float", "integer", "boolean", "text", "date", "timestamp")


@st.composite
def columns(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(TYPES))
    spec: dict[str, Any] = {"type": kind, "nullable": draw(st.booleans())}
    if kind in ("float", "integer"):
        low = draw(st.one_of(st.none(), st.integers(-5, 5)))
        high = draw(st.one_of(st.none(), st.integers(-5, 10)))
        if low is not None and high is not None and high < low:
            low, high = high, low
        spec.update({k: v for k, v in (("min", low), ("max", high)) if v is not None})
        if draw(st.booleans()):
            spec["allowed"] = draw(st.lists(st.integers(-3, 3), min_size=1, max_size=4,
                                            unique=True))
    if kind == "text" and draw(st.booleans()):
        spec["allowed"] = ["a", "b", "2024-01-02"]
    if kind == "text" and draw(st.booleans()):
        spec["pattern"] = "[a-z]+"
    if kind == "date" and draw(st.booleans()):
        spec["min"] = "2024-01-01"
    rules = [r for r in ("type", "not_null", "min", "max", "allowed", "pattern") if r in spec
             or r in ("type", "not_null")]
    warned = draw(st.lists(st.sampled_from(rules), max_size=2, unique=True))
    if warned:
        spec["severity"] = dict.fromkeys(warned, "warn")
    return spec


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-6, 12), st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 3.0, -2.0, 7.25]),
    st.sampled_from(["a", "b", "abc", "A1", "", "2024-01-02", "2023-12-31", "2024-02-30",
                     "2024-01-02T10:00:00", "x"]),
    st.sampled_from([Decimal("1.5"), Decimal("2"), date(2024, 3, 1), date(2023, 1, 1),
                     datetime(2024, 3, 1, 12, 0)]),
)
MISSING = object()


@st.composite
def contract_and_record(draw: st.DrawFn) -> tuple[Contract, dict[str, Any]]:
    specs = draw(st.lists(columns(), min_size=1, max_size=4))
    contract = Contract.model_validate({"columns": {f"c{i}": s for i, s in enumerate(specs)}})
    record = {}
    for name in contract.columns:
        value = draw(st.one_of(VALUES, st.just(MISSING)))
        if value is not MISSING:
            record[name] = value
    return contract, record


@settings(max_examples=500, deadline=None)
@given(contract_and_record())
def test_a_record_the_screen_passes_breaks_no_rule(case: tuple[Contract, dict[str, Any]]) -> None:
    contract, record = case
    screen = Screen.of(contract)
    assert screen is not None
    if screen.passes(record):
        assert contract.record_checker().check(record, include_warnings=True) == []
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in record.values())


@settings(max_examples=300, deadline=None)
@given(contract_and_record())
def test_a_valid_record_of_plain_values_passes(case: tuple[Contract, dict[str, Any]]) -> None:
    contract, record = case
    plain = all(_plain(contract.columns[name].type, record.get(name, MISSING),
                       contract.columns[name].nullable) for name in contract.columns)
    if plain and contract.record_checker().check(record, include_warnings=True) == []:
        screen = Screen.of(contract)
        assert screen is not None and screen.passes(record)


def _plain(kind: str, value: Any, nullable: bool) -> bool:
    """A value as JSON brings it, of the column's own type (what a live stream sends)."""
    if value is None:
        return nullable
    if kind == "float":
        return type(value) in (float, int) and math.isfinite(value) and abs(value) < 2**63
    if kind in ("integer", "boolean", "text"):
        return type(value) is {"integer": int, "boolean": bool, "text": str}[kind]
    return value is not MISSING


def test_a_contract_with_checks_has_no_screen() -> None:
    contract = Contract.model_validate({"columns": {"a": {"type": "integer"}},
                                        "checks": [{"name": "pos", "sql": "a > 0"}]})
    assert Screen.of(contract) is None
