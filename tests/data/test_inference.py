"""Whole-column type inference: the narrowest type that loses nothing, over every value."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlstrata.data.inference import (
    NULL_TOKENS,
    Evidence,
    build_typed_table,
    decide_type,
    is_number_column_with_text,
)
from mlstrata.errors import SourceError


def _typed(values: list[str | None], *, infer: bool = True, overrides: dict[str, Any] | None = None,
           column_type: str = "VARCHAR") -> tuple[str, list[Any]]:
    """Type a one-column table holding ``values``; return the logical type and the values."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE raw (c {column_type})")
    if values:
        con.executemany("INSERT INTO raw VALUES (?)", [[v] for v in values])
    columns = build_typed_table(con, "raw", "typed", overrides=overrides or {}, infer=infer,
                                source="src.csv", locate=lambda row: f"line {row + 2}")
    return columns[0].type, [r[0] for r in con.execute("SELECT c FROM typed").fetchall()]


@pytest.mark.parametrize(("values", "expected", "typed"), [
    (["1", " 12 ", "-3", "+4"], "integer", [1, 12, -3, 4]),
    (["1.5", "2", "1e3", "-.5"], "float", [1.5, 2.0, 1000.0, -0.5]),
    (["0.5", "0", "10"], "float", [0.5, 0.0, 10.0]),
    (["08001", "28004"], "text", ["08001", "28004"]),
    (["007", "12"], "text", ["007", "12"]),
    (["00.5", "1.5"], "text", ["00.5", "1.5"]),
    (["12345678901234567890123", "1"], "text", ["12345678901234567890123", "1"]),
    (["TRUE", "false", "True"], "boolean", [True, False, True]),
    (["2024-01-31", "2023-12-01"], "date", [dt.date(2024, 1, 31), dt.date(2023, 12, 1)]),
    (["2024-01-31", "2024-02-01T08:15:00"], "timestamp",
     [dt.datetime(2024, 1, 31), dt.datetime(2024, 2, 1, 8, 15)]),
    (["2024-02-30", "2024-02-01"], "text", ["2024-02-30", "2024-02-01"]),
    (["31/01/2024", "01/02/2024"], "text", ["31/01/2024", "01/02/2024"]),
    ([" padded ", "x"], "text", [" padded ", "x"]),
    ([None, "NA"], "text", [None, None]),
])
def test_inferred_types_and_values(values: list[str | None], expected: str,
                                   typed: list[Any]) -> None:
    assert _typed(values) == (expected, typed)


def test_null_tokens_become_null_in_every_column() -> None:
    tokens = ["NA", "n/a", "  ", "NULL", "None", "NaN", "#N/A", "", "nil"]
    assert {t.strip().lower() for t in tokens} <= set(NULL_TOKENS)
    assert _typed([*tokens, "7"]) == ("integer", [None] * len(tokens) + [7])
    assert _typed(["NA", "Madrid"]) == ("text", [None, "Madrid"])


def test_a_number_column_with_stray_text_is_refused() -> None:
    with pytest.raises(SourceError) as caught:
        _typed(["1", "2", "3", "n.a.", "5"])
    assert str(caught.value) == (
        "src.csv: column 'c' holds numbers in 4 of 5 values but 'n.a.' at line 5; fix that "
        "value, or read the column as text with --schema c=text")


def test_mostly_text_column_is_text_and_codes_are_exempt() -> None:
    assert _typed(["12", "12B", "flat 3"])[0] == "text"
    assert _typed(["007", "008", "009", "X10"])[0] == "text"


def test_override_turns_a_switching_column_into_text() -> None:
    assert _typed(["1", "2", "x"], overrides={"c": "text"}) == ("text", ["1", "2", "x"])


def test_integer_override_refuses_fractions() -> None:
    with pytest.raises(SourceError, match=r"cannot be read as integer: '2.5' at line 3"):
        _typed(["1", "2.5"], overrides={"c": "integer"})


def test_typed_columns_keep_types_and_map_to_logical_ones() -> None:
    assert _typed([], infer=False, column_type="DECIMAL(8, 2)")[0] == "float"
    assert _typed([], infer=False, column_type="INTEGER[]")[0] == "text"
    con = duckdb.connect()
    con.execute("CREATE TABLE raw AS SELECT TIMESTAMPTZ '2024-01-01 10:00:00+02' AS t, "
                "{'k': 1} AS s, 'NA' AS v")
    columns = build_typed_table(con, "raw", "typed", overrides={}, infer=False, source="db",
                                locate=str)
    assert [(c.type, c.engine_type) for c in columns] == [
        ("timestamp", "TIMESTAMP"), ("text", "VARCHAR"), ("text", "VARCHAR")]
    assert con.execute("SELECT * FROM typed").fetchall() == [
        (dt.datetime(2024, 1, 1, 8, 0), "{'k': 1}", "NA")]


def test_decide_type_prefers_the_narrowest_exact_type() -> None:
    assert decide_type(Evidence(values=0)) == "text"
    assert decide_type(Evidence(values=2, integers=2, numbers=2, oversized=0)) == "integer"
    assert decide_type(Evidence(values=2, integers=2, numbers=2, oversized=1)) == "text"
    assert decide_type(Evidence(values=2, dates=1, timestamps=1)) == "timestamp"
    assert not is_number_column_with_text(Evidence(values=4, numbers=3, leading_zeros=1))


_BIGINT = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(_BIGINT, min_size=1, max_size=20))
def test_integers_round_trip(values: list[int]) -> None:
    assert _typed([str(v) for v in values]) == ("integer", values)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_floats_round_trip(values: list[float]) -> None:
    kind, typed = _typed([repr(v) for v in values])
    assert kind in ("float", "integer")
    assert all(math.isclose(a, b, rel_tol=0, abs_tol=0) for a, b in zip(typed, values,
                                                                         strict=True))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.from_regex(r"0[0-9]{1,8}", fullmatch=True), min_size=1, max_size=10),
       st.lists(st.from_regex(r"[1-9][0-9]{0,8}", fullmatch=True), max_size=10))
def test_codes_with_leading_zeros_stay_text(codes: list[str], numbers: list[str]) -> None:
    assert _typed(codes + numbers) == ("text", codes + numbers)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12), min_size=1,
                max_size=10))
def test_inference_never_changes_a_value_it_keeps_as_text(values: list[str]) -> None:
    try:
        kind, typed = _typed(values)
    except SourceError:
        return  # a number column with stray text is refused, not altered
    if kind == "text":
        # DuckDB's trim() removes spaces only, unlike str.strip() (which also drops \x1f...).
        nulls = [v.strip(" ").lower() in NULL_TOKENS for v in values]
        assert typed == [None if null else v for v, null in zip(values, nulls, strict=True)]
