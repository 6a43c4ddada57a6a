"""The two paths that apply the contract's rules — value by value for requests, vectorized for
typed batches — find the same problems with the same messages."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mlstrata.runtime.inputs import check_rules, columns_from_lists, columns_from_records
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
     InputField("flag", "boolean", True)),
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


@given(RECORDS)
def test_per_value_and_vectorized_checks_agree(records: list[dict[str, Any]]) -> None:
    _, per_value = columns_from_records(SIGNATURE, records)
    vectorized = check_rules(SIGNATURE, _typed(records))
    assert sorted(map(str, per_value)) == sorted(map(str, vectorized))


@given(RECORDS)
def test_valid_values_convert_to_the_typed_columns(records: list[dict[str, Any]]) -> None:
    columns, problems = columns_from_records(SIGNATURE, records)
    bad = {(p.row, p.field) for p in problems}
    expected = _typed(records)
    for name, column in columns.items():
        for row in range(len(records)):
            if (row, name) not in bad:
                assert str(column[row]) == str(expected[name][row])


def test_text_sources_accept_numbers_and_empty_cells() -> None:
    lists = {"age": ["42"], "score": [""], "term": ["12"], "city": ["north"], "code": [""],
             "loose": ["z"], "opened": [""], "flag": ["true"]}
    columns, problems = columns_from_lists(SIGNATURE, lists, text_source=True)
    assert problems == []
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
    lists.update(age=[30], city=["north"], opened=[""])
    _, problems = columns_from_lists(SIGNATURE, lists)
    assert [str(p) for p in problems] == ["record 0, field 'opened': expected an ISO 8601 date "
                                          "such as 2024-03-15, got empty text; send null when "
                                          "the value is unknown"]
    columns, problems = columns_from_lists(SIGNATURE, lists, text_source=True)
    assert problems == [] and np.isnat(columns["opened"][0])
