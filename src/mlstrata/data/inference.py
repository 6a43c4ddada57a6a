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
from typing import Any

import duckdb

from ..config import ColumnType
from ..errors import SourceError
from .engine import quote_identifier, quote_literal
from .types import ColumnInfo, columns_of, duckdb_type, logical_type

__all__ = ["NULL_TOKENS", "Evidence", "build_typed_table", "decide_type",
           "is_number_column_with_text"]

NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "#n/a", "nil")
"""Values (compared trimmed and lower-cased) that text sources use for a missing value."""

_INT = r"[+-]?[0-9]+"
_NUM = r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?|[+-]?(?i:inf|infinity)"
_LEADING_ZERO = r"[+-]?0[0-9]+([.][0-9]*)?([eE][+-]?[0-9]+)?"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"

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
    probed = [c for c in columns if c.override or c.inferred]
    if probed:
        row = con.execute(_probe_sql(raw, probed)).fetchone()
        assert row is not None, "an aggregate without GROUP BY returns one row"
        _settle(probed, row, source, locate)
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
        return f"(CASE WHEN lower(trim({q})) IN ({_tokens()}) THEN NULL ELSE {q} END)"

    @property
    def trimmed(self) -> str:
        return f"trim({self.value})" if self.inferred else self.value

    def cast(self, to: ColumnType) -> str:
        """SQL that casts the value to ``to``, NULL where it does not fit exactly."""
        x = self.trimmed
        if to == "text":
            return self.value if self.inferred else f"CAST({x} AS VARCHAR)"
        if to == "integer":
            return (f"(CASE WHEN TRY_CAST({x} AS DOUBLE) = TRY_CAST({x} AS BIGINT) "
                    f"THEN TRY_CAST({x} AS BIGINT) END)")
        return f"TRY_CAST({x} AS {duckdb_type(to)})"

    def output(self) -> str:
        """The SELECT expression of the typed table."""
        final = self.override or self.decided
        if final is not None:
            return self.cast(final)
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


def _probe_sql(raw: str, columns: Sequence[_Column]) -> str:
    """One aggregate query: evidence for inferred columns, first failure for overridden ones."""
    flags, aggregates = ["rowid AS r"], []
    for i, c in enumerate(columns):
        if c.override:
            flags.append(f"{c.value} IS NOT NULL AND {c.cast(c.override)} IS NULL AS bad{i}")
            flags.append(f"CAST({c.value} AS VARCHAR) AS v{i}")
            aggregates += [f"count_if(bad{i})", f"min(r) FILTER (bad{i})",
                           f"arg_min(v{i}, r) FILTER (bad{i})"]
            continue
        v = f"v{i}"
        flags += [
            f"{c.trimmed} AS {v}",
            f"regexp_full_match({v}, {quote_literal(_NUM)}) AND TRY_CAST({v} AS DOUBLE) "
            f"IS NOT NULL AS num{i}",
            f"regexp_full_match({v}, {quote_literal(_INT)}) AS int{i}",
            f"TRY_CAST({v} AS BIGINT) IS NOT NULL AS fits{i}",
        ]
        aggregates += [
            f"count({v})", f"count_if(num{i} AND int{i} AND fits{i})", f"count_if(num{i})",
            f"count_if(num{i} AND regexp_full_match({v}, {quote_literal(_LEADING_ZERO)}))",
            f"count_if(int{i} AND NOT fits{i})",
            f"count_if(lower({v}) IN ('true', 'false'))",
            f"count_if(regexp_full_match({v}, {quote_literal(_DATE)}) "
            f"AND TRY_CAST({v} AS DATE) IS NOT NULL)",
            f"count_if(regexp_full_match({v}, {quote_literal(_TIMESTAMP)}) "
            f"AND TRY_CAST({v} AS TIMESTAMP) IS NOT NULL)",
            f"min(r) FILTER ({v} IS NOT NULL AND NOT num{i})",
            f"arg_min({v}, r) FILTER ({v} IS NOT NULL AND NOT num{i})",
        ]
    return (f"SELECT {', '.join(aggregates)} FROM "
            f"(SELECT {', '.join(flags)} FROM {quote_identifier(raw)})")


def _settle(columns: Sequence[_Column], row: Sequence[Any], source: str,
            locate: Locate) -> None:
    """Decide each inferred column's type and check each override, from the probe's one row."""
    position = 0
    for c in columns:
        if c.override:
            failures, first_row, first_value = row[position:position + 3]
            position += 3
            if failures:
                plural = "s" if failures != 1 else ""
                raise SourceError(
                    f"{source}: column {c.name!r} cannot be read as {c.override}: "
                    f"{first_value!r} at {locate(first_row)} ({failures} failing value{plural}); "
                    f"fix the value or choose another type in the schema for {c.name!r}")
            continue
        ev = Evidence(*row[position:position + 10])
        position += 10
        if is_number_column_with_text(ev):
            raise SourceError(
                f"{source}: column {c.name!r} holds numbers in {ev.numbers} of {ev.values} values "
                f"but {ev.first_non_number!r} at {locate(ev.first_non_number_row or 0)}; "
                f"fix that value, or read the column as text with --schema {c.name}=text")
        c.decided = decide_type(ev)
