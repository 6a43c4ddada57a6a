"""Whole-column type inference and casting of a freshly read source table.

Text sources (CSV, JSON, xlsx, SQLite) are first read with every column as text; one aggregate SQL
pass then counts, for every column, how many values are integers, numbers, booleans, ISO dates and
timestamps — over the *whole* column, not a sample — and :func:`decide_type` picks the narrowest
type that holds every value without losing information:

>>> decide_type(Evidence(values=3, integers=3, numbers=3))
'integer'
>>> decide_type(Evidence(values=3, integers=3, numbers=3, leading_zeros=1))  # '007' is a code
'text'
>>> decide_type(Evidence(values=2, integers=1, numbers=2))
'float'

Common null tokens (``''``, ``NA``, ``N/A``, ``null``, ``NaN``...) become NULL. A column that is
mostly numbers with a few stray words is refused rather than silently read as text (see
:func:`is_number_column_with_text`). Typed sources (Parquet, DuckDB, PostgreSQL) keep their
types, mapped onto the logical ones. Explicit overrides beat inference for both; a value an
override cannot hold is an error naming the column, the place and the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches

import duckdb

from ..config import ColumnType
from ..errors import SourceError
from .engine import quote_identifier, quote_literal
from .types import ColumnInfo, columns_of, duckdb_type, logical_type

__all__ = ["DATE_PATTERN", "INTEGER_PATTERN", "LEADING_ZERO_PATTERN", "NULL_TOKENS",
           "NULL_TOKEN_MAX_LENGTH", "NUMBER_PATTERN", "TIMESTAMP_PATTERN", "Evidence",
           "build_typed_table", "decide_type", "is_number_column_with_text"]

NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "#n/a", "nil")
"""Values (compared trimmed and lower-cased) that text sources use for a missing value."""
NULL_TOKEN_MAX_LENGTH = max(len(token) for token in NULL_TOKENS)

INTEGER_PATTERN = r"[+-]?[0-9]+"
NUMBER_PATTERN = r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?|[+-]?(?i:inf|infinity)"
LEADING_ZERO_PATTERN = r"[+-]?0[0-9]+([.][0-9]*)?([eE][+-]?[0-9]+)?"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
TIMESTAMP_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"

Locate = Callable[[int], str]
"""Turns a 0-based data row into a place a user can find (``line 12``, ``row 12 of sheet 'x'``)."""


@dataclass(frozen=True)
class Evidence:
    """What the whole-column pass counted among a column's non-null values."""

    values: int
    integers: int = 0
    numbers: int = 0
    leading_zeros: int = 0
    oversized: int = 0
    booleans: int = 0
    dates: int = 0
    timestamps: int = 0
    first_non_number_row: int | None = None
    first_non_number: str | None = None


def decide_type(ev: Evidence) -> ColumnType:
    """The narrowest logical type that holds every value of the column exactly."""
    if ev.values == 0:
        return "text"
    if ev.booleans == ev.values:
        return "boolean"
    if ev.numbers == ev.values and not ev.leading_zeros and not ev.oversized:
        return "integer" if ev.integers == ev.values else "float"
    if ev.dates == ev.values:
        return "date"
    if ev.dates + ev.timestamps == ev.values:
        return "timestamp"
    return "text"


def is_number_column_with_text(ev: Evidence) -> bool:
    """Whether most values are plain numbers but some are not — a column that switched to text.

    Codes (leading zeros) and numbers too large for an integer are legitimately text and exempt.

    >>> is_number_column_with_text(Evidence(values=10, integers=9, numbers=9))
    True
    >>> is_number_column_with_text(Evidence(values=10, integers=2, numbers=2))
    False
    """
    return (not ev.leading_zeros and not ev.oversized
            and ev.values > ev.numbers and ev.numbers * 2 > ev.values)


def build_typed_table(con: duckdb.DuckDBPyConnection, raw: str, target: str, *,
                      overrides: Mapping[str, ColumnType], infer: bool, source: str,
                      locate: Locate) -> list[ColumnInfo]:
    """Create table ``target`` from table ``raw`` with inferred or overridden types.

    ``infer`` is true for text sources: their text columns are cleaned of null tokens and typed
    by :func:`decide_type`. ``source`` names the source in error messages. Rows keep their order.
    """
    relation = con.table(quote_identifier(raw))
    names, engine_types = list(relation.columns), [str(t) for t in relation.types]
    _check_overrides(overrides, names, source)
    columns = [_Column(name, engine, infer and engine == "VARCHAR", overrides.get(name))
               for name, engine in zip(names, engine_types, strict=True)]
    for c in columns:
        if c.override:
            _check_override(con, raw, c, c.override, source, locate)
        elif c.inferred:
            c.decided = _infer(con, raw, c, source, locate)
    select = ", ".join(f"{c.output()} AS {quote_identifier(c.name)}" for c in columns)
    con.execute(f"CREATE TABLE {quote_identifier(target)} AS SELECT {select} "
                f"FROM {quote_identifier(raw)}")
    return columns_of(con.table(quote_identifier(target)))


@dataclass
class _Column:
    """One column on its way from the raw table to the typed one."""

    name: str
    engine: str
    inferred: bool
    override: ColumnType | None
    decided: ColumnType | None = None

    @property
    def value(self) -> str:
        """The raw value, with null tokens as NULL when the column is text to infer."""
        q = quote_identifier(self.name)
        if not self.inferred:
            return q
        return (f"(CASE WHEN length(trim({q})) <= {NULL_TOKEN_MAX_LENGTH} AND lower(trim({q})) IN "
                f"({_tokens()}) THEN NULL ELSE {q} END)")

    @property
    def trimmed(self) -> str:
        """The value trimmed (for inferred text columns), ready to cast."""
        return f"trim({self.value})" if self.inferred else self.value

    def cast(self, to: ColumnType, *, checked: bool = True) -> str:
        """SQL that casts the value to ``to``, NULL where it does not fit exactly (``checked``
        false skips the exactness test, for types inference has already proven)."""
        x = self.trimmed
        if to == "text":
            return self.value if self.inferred else f"CAST({x} AS VARCHAR)"
        if to == "integer" and checked:
            return (f"(CASE WHEN TRY_CAST({x} AS DOUBLE) = TRY_CAST({x} AS BIGINT) "
                    f"THEN TRY_CAST({x} AS BIGINT) END)")
        return f"TRY_CAST({x} AS {duckdb_type(to)})"

    def output(self) -> str:
        """The SELECT expression of the typed table."""
        if self.override:
            return self.cast(self.override)
        if self.decided:
            return self.cast(self.decided, checked=False)
        if self.engine.startswith("TIMESTAMP WITH TIME ZONE"):
            return f"timezone('UTC', {self.value})"
        if logical_type(self.engine) == "text" and self.engine != "VARCHAR":
            return f"CAST({self.value} AS VARCHAR)"
        return self.value


def _tokens() -> str:
    return ", ".join(quote_literal(token) for token in NULL_TOKENS)


def _check_overrides(overrides: Mapping[str, ColumnType], names: Sequence[str],
                     source: str) -> None:
    for name in overrides:
        if name not in names:
            near = get_close_matches(name, names, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"columns are: {', '.join(names)}"
            raise SourceError(f"{source}: the schema names column {name!r}, which the source "
                              f"does not have; {hint}")


def _check_override(con: duckdb.DuckDBPyConnection, raw: str, c: _Column, to: ColumnType,
                    source: str, locate: Locate) -> None:
    """Refuse an override that some value cannot take, naming the first such value."""
    bad = f"{c.value} IS NOT NULL AND {c.cast(to)} IS NULL"
    failures, first_row, first_value = con.execute(
        f"SELECT count(*), min(rowid), arg_min(CAST({c.value} AS VARCHAR), rowid) "
        f"FROM {quote_identifier(raw)} WHERE {bad}").fetchall()[0]
    if failures:
        plural = "s" if failures != 1 else ""
        raise SourceError(
            f"{source}: column {c.name!r} cannot be read as {to}: {first_value!r} at "
            f"{locate(first_row)} ({failures} failing value{plural}); fix the value or choose "
            f"another type in the schema for {c.name!r}")


def _infer(con: duckdb.DuckDBPyConnection, raw: str, c: _Column, source: str,
           locate: Locate) -> ColumnType:
    """Type a text column from one aggregate pass over all of its values."""
    ev = Evidence(*con.execute(_evidence_sql(raw, c.name)).fetchall()[0])
    if is_number_column_with_text(ev):
        raise SourceError(
            f"{source}: column {c.name!r} holds numbers in {ev.numbers} of {ev.values} values "
            f"but {ev.first_non_number!r} at {locate(ev.first_non_number_row or 0)}; "
            f"fix that value, or read the column as text with --schema {c.name}=text")
    return decide_type(ev)


def _evidence_sql(raw: str, name: str) -> str:
    """The aggregate query whose one row is a column's :class:`Evidence`.

    Layered so each value is trimmed and null-checked once, and guarded with CASE so the costly
    casts and patterns run only on values that can match (DuckDB evaluates CASE branches lazily).
    """
    flags = [
        "CASE WHEN TRY_CAST(v AS DOUBLE) IS NOT NULL "
        f"THEN regexp_full_match(v, {quote_literal(NUMBER_PATTERN)}) ELSE false END AS num",
        f"CASE WHEN v[5] = '-' THEN (regexp_full_match(v, {quote_literal(DATE_PATTERN)}) "
        "AND TRY_CAST(v AS DATE) IS NOT NULL) ELSE false END AS is_date",
        f"CASE WHEN v[5] = '-' THEN (regexp_full_match(v, {quote_literal(TIMESTAMP_PATTERN)}) "
        "AND TRY_CAST(v AS TIMESTAMP) IS NOT NULL) ELSE false END AS is_ts",
    ]
    number_flags = [
        f"CASE WHEN num THEN regexp_full_match(v, {quote_literal(INTEGER_PATTERN)}) "
        "ELSE false END AS int",
        f"CASE WHEN num THEN regexp_full_match(v, {quote_literal(LEADING_ZERO_PATTERN)}) "
        "ELSE false END AS zero",
    ]
    evidence = [  # in the order of Evidence's fields
        "count(v)", "count_if(fits)", "count_if(num)", "count_if(zero)",
        "count_if(int AND NOT fits)", "count_if(lower(v) IN ('true', 'false'))",
        "count_if(is_date)", "count_if(is_ts)", "min(r) FILTER (v IS NOT NULL AND NOT num)",
        "arg_min(v, r) FILTER (v IS NOT NULL AND NOT num)",
    ]
    return (
        f"SELECT {', '.join(evidence)} FROM ("
        f"SELECT *, CASE WHEN int THEN TRY_CAST(v AS BIGINT) IS NOT NULL ELSE false END AS fits "
        f"FROM (SELECT *, {', '.join(number_flags)} "
        f"FROM (SELECT r, v, {', '.join(flags)} "
        f"FROM (SELECT r, {_without_tokens('t')} AS v "
        f"FROM (SELECT rowid AS r, trim({quote_identifier(name)}) AS t "
        f"FROM {quote_identifier(raw)})))))")


def _without_tokens(trimmed: str) -> str:
    """SQL: the trimmed value, or NULL when it is a null token (short values only are checked)."""
    return (f"CASE WHEN length({trimmed}) <= {NULL_TOKEN_MAX_LENGTH} AND lower({trimmed}) IN "
            f"({_tokens()}) THEN NULL ELSE {trimmed} END")
