"""The two paths that apply the contract's rules — value by value for requests, vectorized for
typed batches — find the same problems with the same messages, rules and severities (warn rules
too, and under ``strict``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlstrata.runtime.inputs import (
    ContractWarning,
    FieldProblem,
    InvalidInputError,
    check_rules,
    columns_from_lists,
    columns_from_records,
    record_warnings,
    require_valid,
)
from mlstrata.runtime.signature import InputField, Signature

SIGNATURE = Signature(
    "m@1", "binary", "y",
    (InputField("age", "integer", False, min=18, max=99),
     InputField("score", "float", True, min=0.0),
     InputField("term", "integer", True, allowed=(12, 24), strict=True),
     InputField("city", "text", False, allowed=("north", "south"), strict=True),
     InputField("code", "text", True, pattern="[0-9]{5}"),
     InputField("loose", "text", True, allowed=("a",), strict=False),
     InputField("opened", "date", True, min="2020-01-01"),
     InputField("flag", "boolean", True),
     InputField("lines", "integer", True, min=0, max=13, warn=frozenset({"max"})),
     InputField("tag", "text", False, allowed=("x", "y"), pattern="[a-z]",
                warn=frozenset({"allowed", "not_null"}))),
    (), (), ())

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "age": st.one_of(st.none(), st.integers(0, 120)),
    "score": st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)),
    "term": st.one_of(st.none(), st.sampled_from([12, 24, 36])),
    "city": st.one_of(st.none(), st.sampled_from(["north", "south", "east"])),
    "code": st.one_of(st.none(), st.sampled_from(["28001", "2800", "abcde"])),
    "loose": st.one_of(st.none(), st.sampled_from(["a", "b"])),
    "opened": st.one_of(st.none(), st.sampled_from(["2019-12-31", "2020-01-01", "2024-06-30"])),
    "flag": st.one_of(st.none(), st.booleans()),
    "lines": st.one_of(st.none(), st.integers(-2, 16)),
    "tag": st.one_of(st.none(), st.sampled_from(["x", "z", "Z"])),
}
RECORDS = st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=8)


def _typed(records: list[dict[str, Any]]) -> dict[str, np.ndarray[Any, Any]]:
    """The records as typed columns, the way batch scoring receives them (no checks)."""
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for field in SIGNATURE.inputs:
        values = [r[field.name] for r in records]
        if field.is_numeric:
            columns[field.name] = np.array([np.nan if v is None else float(v) for v in values])
        elif field.is_date:
            columns[field.name] = np.array(values, dtype="datetime64[s]")
        else:
            columns[field.name] = np.array(values, dtype=object)
    return columns


def _seen(problems: list[FieldProblem]) -> list[tuple[str, str, str]]:
    return sorted((str(p), p.rule, p.severity) for p in problems)


@given(RECORDS, st.booleans())
def test_per_value_and_vectorized_checks_agree(records: list[dict[str, Any]],
                                               strict: bool) -> None:
    _, per_value = columns_from_records(SIGNATURE, records, strict=strict)
    vectorized = check_rules(SIGNATURE, _typed(records), strict=strict)
    assert _seen(per_value) == _seen(vectorized)
    if strict:
        assert {p.severity for p in per_value} <= {"error"}


@given(RECORDS)
def test_valid_values_convert_to_the_typed_columns(records: list[dict[str, Any]]) -> None:
    """A value that breaks only warn rules keeps its value (it is scored); an error empties it."""
    columns, problems = columns_from_records(SIGNATURE, records)
    bad = {(p.row, p.field) for p in problems if p.severity == "error"}
    expected = _typed(records)
    for name, column in columns.items():
        for row in range(len(records)):
            if (row, name) not in bad:
                assert str(column[row]) == str(expected[name][row])


def test_text_sources_accept_numbers_and_empty_cells() -> None:
    lists = {"age": ["42"], "score": [""], "term": ["12"], "city": ["north"], "code": [""],
             "loose": ["z"], "opened": [""], "flag": ["true"], "lines": ["3"], "tag": ["x"]}
    columns, problems = columns_from_lists(SIGNATURE, lists, text_source=True)
    assert [(p.field, p.rule, p.severity) for p in problems] == [("loose", "allowed", "warn")]
    assert columns["loose"].tolist() == ["z"]
    assert columns["age"].tolist() == [42.0]
    assert np.isnan(columns["score"][0]) and columns["code"][0] is None
    assert columns["flag"].tolist() == [1.0]


def test_mismatched_lengths_and_absent_fields_are_named() -> None:
    lists: dict[str, list[Any]] = {field.name: [None] for field in SIGNATURE.inputs}
    lists["age"] = [30, 31]
    _, problems = columns_from_lists(SIGNATURE, lists)
    assert "fields have different lengths" in str(problems[0])
    del lists["city"]
    _, problems = columns_from_lists(SIGNATURE, lists)
    assert str(problems[0]).startswith("record 0, field 'city': missing")


def test_a_record_that_is_not_an_object_is_named() -> None:
    _, problems = columns_from_records(SIGNATURE, [["not", "an", "object"]])  # type: ignore[list-item]
    assert str(problems[0]).startswith("record 0, field '*': expected an object")


def test_an_empty_date_is_missing_in_a_csv_cell_and_a_mistake_in_json() -> None:
    """JSON says null for an unknown date (the OpenAPI document's ``format: date`` refuses "");
    a CSV cell or an OIP ``BYTES`` element has only the empty text to say it."""
    lists: dict[str, list[Any]] = {field.name: [None] for field in SIGNATURE.inputs}
    lists.update(age=[30], city=["north"], opened=[""], tag=["x"])
    _, problems = columns_from_lists(SIGNATURE, lists)
    assert [str(p) for p in problems] == ["record 0, field 'opened': expected an ISO 8601 date "
                                          "such as 2024-03-15, got empty text; send null when "
                                          "the value is unknown"]
    columns, problems = columns_from_lists(SIGNATURE, lists, text_source=True)
    assert problems == [] and np.isnat(columns["opened"][0])


def test_warn_rules_keep_the_value_and_come_back_per_record() -> None:
    records = [{**BASE, "lines": 14, "tag": None}, BASE, {**BASE, "lines": 14, "age": 12}]
    columns, problems = columns_from_records(SIGNATURE, records)
    assert [(p.row, p.field, p.rule, p.severity) for p in problems] == [
        (2, "age", "min", "error"), (0, "lines", "max", "warn"), (2, "lines", "max", "warn"),
        (0, "tag", "not_null", "warn")]
    assert columns["lines"].tolist() == [14.0, 3.0, 14.0] and np.isnan(columns["age"][2])
    with pytest.raises(InvalidInputError) as caught:
        require_valid(problems)
    assert [(p.row, p.field) for p in caught.value.problems] == [(2, "age")]
    warnings = require_valid(problems[1:])
    assert record_warnings(warnings, 3) == (
        (ContractWarning("lines", "max", "14 is above the maximum 13"),
         ContractWarning("tag", "not_null", "required (null or missing is not allowed)")),
        (), (ContractWarning("lines", "max", "14 is above the maximum 13"),))
    assert record_warnings([], 3) is None


def test_strict_refuses_warn_rules_and_says_why() -> None:
    _, problems = columns_from_records(SIGNATURE, [{**BASE, "lines": 14}], strict=True)
    (problem,) = problems
    assert (problem.rule, problem.severity) == ("max", "error")
    assert str(problem) == ("record 0, field 'lines': 14 is above the maximum 13 (rule 'max' "
                            "only warns, but this server is strict: it refuses warnings)")
    assert problem.to_dict() == {"record": 0, "field": "lines", "rule": "max",
                                 "message": problem.message}


def test_old_signatures_without_severity_warn_on_non_strict_categories() -> None:
    loose = next(f for f in SIGNATURE.inputs if f.name == "loose")
    assert loose.severity("allowed") == "warn" and loose.severity("allowed", strict=True) == "error"
    city = next(f for f in SIGNATURE.inputs if f.name == "city")
    assert city.severity("allowed") == "error"
    assert loose.enforced().allowed is None and loose.enforced(strict=True).allowed == ("a",)


BASE: dict[str, Any] = {"age": 30, "score": 1.0, "term": 12, "city": "north", "code": "28001",
                        "loose": "a", "opened": "2021-01-01", "flag": True, "lines": 3,
                        "tag": "x"}
