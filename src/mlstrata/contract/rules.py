"""The rules a contract makes, each evaluable two ways: as a DuckDB predicate and on one value.

A :class:`ColumnRule` gives ``failing_sql`` — a predicate TRUE for the rows that break it, so
``mlstrata.data.validate`` counts every rule over a whole dataset in one pass — and ``message``,
the Python test of a single value that :meth:`Contract.check_record` runs per request. Both sides
live in one class so they cannot drift apart. This module builds SQL text but runs no SQL.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._values import BAD, TYPE_FIX, coerce, show, sql_literal

if TYPE_CHECKING:
    from .model import ColumnSpec

__all__ = ["RULE_KINDS", "SEVERITIES", "ColumnRef", "ColumnRule", "Rule", "Severity", "Violation",
           "column_rules"]

Severity = Literal["error", "warn"]
"""What a broken rule does: ``error`` refuses the record (and fails ``mlstrata validate``),
``warn`` lets it through with a warning (scored, returned with the prediction, counted)."""
SEVERITIES: tuple[Severity, ...] = ("error", "warn")
RULE_KINDS = ("type", "not_null", "min", "max", "allowed", "pattern", "unique")
"""The column rule kinds, as named in a column's ``severity`` mapping and in reports."""


@dataclass(frozen=True)
class Violation:
    """One broken rule in one record: the field, the rule kind, what is wrong and how to fix it."""

    field: str | None
    rule: str
    message: str
    value: Any = None
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (dates and other values become text)."""
        value = self.value if isinstance(self.value, int | float | str | None) else str(self.value)
        return {"field": self.field, "rule": self.rule, "message": self.message, "value": value,
                "severity": self.severity}


@dataclass(frozen=True)
class ColumnRef:
    """How SQL reaches one column: ``raw`` as stored, ``value`` as the contract's type.

    ``source_type`` is the logical type the data holds; when it differs from the contract's type
    ``value`` is a ``TRY_CAST`` of ``raw`` (NULL where the cast fails, which the type rule reports).
    """

    raw: str
    value: str
    source_type: str


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One named, reportable rule of a contract (a column rule, the row count or a custom check)."""

    name: str
    kind: str
    column: str | None
    description: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        """The rule's identity as JSON."""
        return {"name": self.name, "kind": self.kind, "column": self.column,
                "description": self.description, "severity": self.severity}


@dataclass(frozen=True, kw_only=True)
class ColumnRule(Rule):
    """A rule on one column, evaluable as a DuckDB predicate and on one Python value."""

    column: str

    def failing_sql(self, ref: ColumnRef) -> str:
        """A DuckDB predicate TRUE for rows that break the rule (NULL counts as passing)."""
        raise NotImplementedError

    def count_sql(self, ref: ColumnRef) -> str:
        """An aggregate expression counting the failing rows."""
        return f"count(*) FILTER (WHERE {self.failing_sql(ref)})"

    def sample_sql(self, ref: ColumnRef, source: str) -> str:
        """A predicate selecting the failing rows to show as a sample."""
        return self.failing_sql(ref)

    def message(self, value: Any) -> str | None:
        """Why a non-null value of the column's type breaks the rule, or None when it passes."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class _NotNull(ColumnRule):
    def failing_sql(self, ref: ColumnRef) -> str:
        return f"{ref.raw} IS NULL"

    def message(self, value: Any) -> str | None:
        return None


@dataclass(frozen=True, kw_only=True)
class _TypeRule(ColumnRule):
    type: str

    def failing_sql(self, ref: ColumnRef) -> str:
        if ref.value == ref.raw:
            return f"isnan({ref.raw})" if ref.source_type == "float" else "FALSE"
        if not _castable(ref.source_type, self.type):
            return f"{ref.raw} IS NOT NULL"
        failing = f"({ref.raw} IS NOT NULL AND {ref.value} IS NULL)"
        if self.type == "integer":
            failing += f" OR TRY_CAST({ref.raw} AS DOUBLE) <> {ref.value}"
        elif self.type == "float":
            failing += f" OR isnan({ref.value})"
        return f"({failing})"

    def message(self, value: Any) -> str | None:
        if coerce(self.type, value) is not BAD:
            return None
        shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
        return (f"field '{self.column}' must be {self.type}, got {type(value).__name__} {shown}; "
                f"send {TYPE_FIX[self.type]}")


def _castable(source: str, target: str) -> bool:
    return source == "text" or (source, target) in {("float", "integer"), ("date", "timestamp")}


@dataclass(frozen=True, kw_only=True)
class _Bound(ColumnRule):
    bound: Any
    lower: bool

    def failing_sql(self, ref: ColumnRef) -> str:
        return f"{ref.value} {'<' if self.lower else '>'} {sql_literal(self.bound)}"

    def message(self, value: Any) -> str | None:
        if (value < self.bound) if self.lower else (value > self.bound):
            side, op = ("below the minimum", ">=") if self.lower else ("above the maximum", "<=")
            return (f"field '{self.column}' is {value}, {side} {self.bound}; "
                    f"send a value {op} {self.bound}")
        return None


@dataclass(frozen=True, kw_only=True)
class _Allowed(ColumnRule):
    values: tuple[Any, ...]

    @functools.cached_property
    def members(self) -> frozenset[Any]:
        return frozenset(self.values)

    def failing_sql(self, ref: ColumnRef) -> str:
        return f"{ref.value} NOT IN ({', '.join(sql_literal(v) for v in self.values)})"

    def message(self, value: Any) -> str | None:
        if value in self.members:
            return None
        close = difflib.get_close_matches(str(value), [str(v) for v in self.values], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown = show(self.values[:10]) + (", ..." if len(self.values) > 10 else "")
        return (f"field '{self.column}' is {value!r}, not an allowed category; {hint}"
                f"use one of {shown}")


@dataclass(frozen=True, kw_only=True)
class _Pattern(ColumnRule):
    pattern: str

    @functools.cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def failing_sql(self, ref: ColumnRef) -> str:
        return f"NOT regexp_full_match({ref.value}, {sql_literal(self.pattern)})"

    def message(self, value: Any) -> str | None:
        if self.compiled.fullmatch(value):
            return None
        return (f"field '{self.column}' is {value!r}, which does not match {self.pattern}; "
                "send a value matching that pattern")


@dataclass(frozen=True, kw_only=True)
class _Unique(ColumnRule):
    """Uniqueness is a property of a whole table: a single record cannot break it."""

    def failing_sql(self, ref: ColumnRef) -> str:
        raise NotImplementedError("uniqueness has no row predicate; use count_sql")

    def count_sql(self, ref: ColumnRef) -> str:
        return f"count({ref.value}) - count(DISTINCT {ref.value})"

    def sample_sql(self, ref: ColumnRef, source: str) -> str:
        return (f"{ref.value} IN (SELECT {ref.value} FROM {source} GROUP BY ALL "
                "HAVING count(*) > 1)")

    def message(self, value: Any) -> str | None:
        return None


def column_rules(column: str, spec: ColumnSpec) -> list[ColumnRule]:
    """The rules ``spec`` makes for ``column``, the type rule first (records check it first)."""
    def named(kind: str) -> dict[str, Any]:
        return {"name": f"{column}.{kind}", "kind": kind, "column": column,
                "severity": spec.severity_of(kind)}

    made: list[ColumnRule] = [_TypeRule(**named("type"), description=f"is {spec.type}",
                                        type=spec.type)]
    if not spec.nullable:
        made.append(_NotNull(**named("not_null"), description="is never null"))
    for bound, lower in ((spec.min, True), (spec.max, False)):
        if bound is not None:
            made.append(_Bound(**named("min" if lower else "max"),
                               description=f"{'>=' if lower else '<='} {bound}",
                               bound=bound, lower=lower))
    if spec.allowed is not None:
        made.append(_Allowed(**named("allowed"),
                             description=f"one of {len(spec.allowed)} categories",
                             values=tuple(spec.allowed)))
    if spec.pattern is not None:
        made.append(_Pattern(**named("pattern"), description=f"matches {spec.pattern}",
                             pattern=spec.pattern))
    if spec.unique:
        made.append(_Unique(**named("unique"), description="has no duplicate values"))
    return made
