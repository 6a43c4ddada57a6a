"""The data contract: one object, one set of rules, two evaluators (DuckDB and plain Python).

A contract says what a table of the project must look like: column types, nullability, ranges,
allowed categories, regex patterns, uniqueness, row-count bounds, plus the user's own checks as SQL
expressions and ``module:function`` Python functions. It is written as editable YAML::

    version: 1
    dataset: credit
    rows: {min: 1}
    columns:
      age: {type: integer, nullable: false, min: 18, max: 120}
      postal_code: {type: text, pattern: '^[0-9]{5}$'}
      purpose: {type: text, allowed: [car, home, study], strict: true}
    checks:
      - {name: adult, sql: age BETWEEN 18 AND 120}
    python_checks: ['mychecks:income_is_plausible']

Every column rule is a :class:`ColumnRule` with a DuckDB predicate that is TRUE for failing rows
(``mlstrata.data.validate`` counts them over a whole dataset in one pass) and a Python test of a
single value (:meth:`Contract.check_record`, used per request by the serving layer). This module
imports neither DuckDB nor pandas so the serving runtime can load it alone.

Type rules for records (JSON values): an ``int`` (or ``Decimal``) is accepted where a float is
expected, a float with no fractional part where an integer is expected; ``bool`` is never a
number; dates and timestamps may be ISO strings (``2024-01-31``, ``2024-01-31T12:00:00``); NaN
is not a float value.

Custom SQL checks are TRUE for valid rows; a NULL result passes (as in a SQL ``CHECK``). They run
in DuckDB on datasets and in SQLite (stdlib ``sqlite3``) on records, so they must use the SQL both
understand: comparisons, ``BETWEEN``, ``IN``, ``LIKE`` (case-sensitive in both here), ``IS NULL``,
arithmetic, ``CASE``, ``COALESCE``, ``abs``, ``length``, ``lower``/``upper``. Avoid integer
division (``5/2`` is 2 in SQLite, 2.5 in DuckDB; write ``5 * 1.0 / 2``) and engine-only functions.
Patterns use the common subset of Python ``re`` and RE2 (write ``[0-9]``, not ``\\d``), matched
against the whole value.

>>> contract = Contract.model_validate(
...     {"columns": {"age": {"type": "integer", "min": 18}, "city": {"type": "text"}}})
>>> [v.rule for v in contract.check_record({"age": 15, "city": "Madrid"})]
['min']
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import math
import numbers
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._yaml import dump_yaml, read_yaml, validation_message
from .errors import ContractError

__all__ = [
    "CONTRACT_VERSION",
    "ColumnRef",
    "ColumnRule",
    "ColumnSpec",
    "Contract",
    "LogicalType",
    "PythonCheck",
    "Rule",
    "RowBounds",
    "SqlCheck",
    "Violation",
    "load_python_check",
    "quote_sql_identifier",
    "sql_literal",
]

CONTRACT_VERSION: Final = 1
LogicalType = Literal["text", "integer", "float", "boolean", "date", "timestamp"]
Severity = Literal["error", "warning"]
PythonCheck = Callable[[dict[str, Any]], bool]

_SQL_TYPE: dict[str, str] = {"text": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE",
                             "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}
_ORDERED = ("integer", "float", "date", "timestamp")
_TYPE_FIX = {
    "text": "a string (in quotes)",
    "integer": "a whole number",
    "float": "a number",
    "boolean": "true or false",
    "date": "an ISO date like 2024-01-31",
    "timestamp": "an ISO timestamp like 2024-01-31T12:00:00",
}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PYTHON_CHECK = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class _Bad:
    """The marker :func:`_coerce` returns for a value that does not fit the column's type."""


_BAD = _Bad()


def _coerce(kind: str, value: Any) -> Any:
    """``value`` as the Python value of a ``kind`` column, or ``_BAD`` when it does not fit."""
    if kind == "text":
        return value if isinstance(value, str) else _BAD
    if kind == "boolean":
        return value if isinstance(value, bool) else _BAD
    if isinstance(value, bool):
        return _BAD
    if kind == "integer":
        if isinstance(value, numbers.Integral):
            return int(value)
        whole = isinstance(value, float | Decimal) and math.isfinite(value) and value % 1 == 0
        return int(value) if whole else _BAD
    if kind == "float":
        if not isinstance(value, numbers.Real | Decimal):
            return _BAD
        number = float(value)
        return _BAD if math.isnan(number) else number
    if kind == "date":
        return _as_date(value)
    return _as_timestamp(value)


def _as_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return _BAD
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    return _BAD


def _as_timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return _BAD
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime(value.year, value.month, value.day) if isinstance(value, date) else _BAD


def quote_sql_identifier(name: str) -> str:
    """Quote a column name for DuckDB and SQLite alike.

    >>> quote_sql_identifier('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """A SQL literal for a contract value (text, number, boolean, date or timestamp).

    >>> sql_literal("it's"), sql_literal(date(2024, 1, 31)), sql_literal(True)
    ("'it''s'", "DATE '2024-01-31'", 'TRUE')
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _show(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


# -- violations and rules ----------------------------------------------------------------------


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
        if _coerce(self.type, value) is not _BAD:
            return None
        shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
        return (f"field '{self.column}' must be {self.type}, got {type(value).__name__} {shown}; "
                f"send {_TYPE_FIX[self.type]}")


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
        shown = _show(self.values[:10]) + (", ..." if len(self.values) > 10 else "")
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


def _castable(source: str, target: str) -> bool:
    return source == "text" or (source, target) in {("float", "integer"), ("date", "timestamp")}


# -- the YAML model ----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """What one column must hold. Bounds and categories are checked against the column's type."""

    type: LogicalType
    nullable: bool = True
    min: Any = None
    max: Any = None
    allowed: list[Any] | None = None
    strict: bool = True
    pattern: str | None = None
    unique: bool = False
    description: str = ""

    @field_validator("min", "max")
    @classmethod
    def _bound_fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if value is None or kind is None:
            return value
        if kind not in _ORDERED:
            raise ValueError(f"min/max apply to {', '.join(_ORDERED)} columns, not {kind}; "
                             "use allowed or pattern instead")
        return _coerce_setting(kind, value)

    @field_validator("allowed")
    @classmethod
    def _categories_fit_type(cls, values: list[Any] | None, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if values is None or kind is None:
            return values
        if not values:
            raise ValueError("allowed is empty; list the categories or remove the key")
        return [_coerce_setting(kind, v) for v in values]

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        if pattern is not None and info.data.get("type") != "text":
            raise ValueError("pattern applies to text columns only")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression ({exc})") from exc
        return pattern

    @model_validator(mode="after")
    def _min_below_max(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}; swap them")
        return self

    def rules(self, column: str) -> list[ColumnRule]:
        """The rules this spec makes for ``column``, type first."""
        made: list[ColumnRule] = [_TypeRule(name=f"{column}.type", kind="type", column=column,
                                            description=f"is {self.type}", type=self.type)]
        if not self.nullable:
            made.append(_NotNull(name=f"{column}.not_null", kind="not_null", column=column,
                                 description="is never null"))
        for bound, lower in ((self.min, True), (self.max, False)):
            if bound is not None:
                kind = "min" if lower else "max"
                made.append(_Bound(name=f"{column}.{kind}", kind=kind, column=column,
                                   description=f"{'>=' if lower else '<='} {bound}",
                                   bound=bound, lower=lower))
        if self.allowed is not None:
            made.append(_Allowed(
                name=f"{column}.allowed", kind="allowed", column=column,
                description=f"one of {len(self.allowed)} categories"
                + ("" if self.strict else " (not strict: unknown ones warn)"),
                severity="error" if self.strict else "warning",
                values=tuple(self.allowed)))
        if self.pattern is not None:
            made.append(_Pattern(name=f"{column}.pattern", kind="pattern", column=column,
                                 description=f"matches {self.pattern}", pattern=self.pattern))
        if self.unique:
            made.append(_Unique(name=f"{column}.unique", kind="unique", column=column,
                                description="has no duplicate values"))
        return made


def _coerce_setting(kind: str, value: Any) -> Any:
    coerced = _coerce(kind, value)
    if coerced is _BAD:
        raise ValueError(f"{value!r} is not a valid {kind} value; write {_TYPE_FIX[kind]}")
    return coerced


class RowBounds(_Model):
    """How many rows a dataset or batch may have (either bound may be left open)."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RowBounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"rows.min {self.min} is greater than rows.max {self.max}")
        return self


class SqlCheck(_Model):
    """A custom check: a SQL expression TRUE for valid rows (e.g. ``age BETWEEN 18 AND 120``)."""

    name: str = Field(pattern=r"^[\w.-]+$")
    sql: str = Field(min_length=1)
    description: str = ""


@dataclass
class _Compiled:
    """What :meth:`Contract.check_record` precomputes once per contract."""

    fields: list[tuple[str, LogicalType, bool, list[ColumnRule]]]
    check_sql: str | None
    python: list[tuple[str, PythonCheck]] | None = None
    local: threading.local = field(default_factory=threading.local)


class Contract(_Model):
    """A data contract: columns, row bounds and custom checks, loaded from and saved to YAML."""

    version: Literal[1] = CONTRACT_VERSION
    dataset: str = ""
    source: str | None = None
    rows: RowBounds = RowBounds()
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    checks: list[SqlCheck] = Field(default_factory=list)
    python_checks: list[str] = Field(default_factory=list)
    _compiled: _Compiled | None = PrivateAttr(default=None)

    @field_validator("checks")
    @classmethod
    def _checks_compile(cls, checks: list[SqlCheck], info: ValidationInfo) -> list[SqlCheck]:
        names = [check.name for check in checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"check names must be unique; rename {', '.join(duplicates)}")
        columns = list(info.data.get("columns") or {})
        for check in checks:
            _compile_check(check, columns)
        return checks

    @field_validator("python_checks")
    @classmethod
    def _python_check_names(cls, specs: list[str]) -> list[str]:
        for spec in specs:
            if not _PYTHON_CHECK.fullmatch(spec):
                raise ValueError(f"python check {spec!r} must look like 'module:function'")
        return specs

    # -- files ----------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Contract:
        """Read a YAML contract; an error names the file, the line, the key and the fix."""
        data = read_yaml(path, ContractError)
        try:
            return cls.model_validate(data if data is not None else {})
        except ValidationError as exc:
            line = _line_of(path, exc.errors()[0]["loc"])
            where = f"{path}: line {line}" if line else str(path)
            raise ContractError(f"{where}: {validation_message(exc)}") from exc

    def to_yaml(self) -> str:
        """The contract as editable YAML (only the keys that say something), with a header."""
        body: dict[str, Any] = {"version": self.version, "dataset": self.dataset}
        if self.source:
            body["source"] = self.source
        body["rows"] = self.rows.model_dump(exclude_none=True)
        body["columns"] = {name: _spec_yaml(spec) for name, spec in self.columns.items()}
        body["checks"] = [c.model_dump(exclude_defaults=True) for c in self.checks]
        body["python_checks"] = list(self.python_checks)
        return _YAML_HEADER + str(dump_yaml(body))

    # -- views of the rules ---------------------------------------------------------------------

    def column_rules(self) -> list[ColumnRule]:
        """Every column rule, column by column."""
        return [rule for name, spec in self.columns.items() for rule in spec.rules(name)]

    def column_ref(self, column: str, source_type: str) -> ColumnRef:
        """How SQL reads ``column`` when the data holds it as ``source_type``."""
        raw = quote_sql_identifier(column)
        target = self.columns[column].type
        if source_type == target or (source_type, target) == ("integer", "float"):
            return ColumnRef(raw, raw, source_type)
        return ColumnRef(raw, f"TRY_CAST({raw} AS {_SQL_TYPE[target]})", source_type)

    def require_columns(self, available: Iterable[str], where: str) -> None:
        """Raise ``ContractError`` naming each contract column missing from ``available``."""
        present = list(available)
        missing = [name for name in self.columns if name not in present]
        if missing:
            named = ", ".join(f"'{name}'{_did_you_mean(name, present)}" for name in missing)
            raise ContractError(f"{where}: contract column(s) {named} not in the data; fix the "
                                "contract's column names or pass the right data")

    def without_columns(self, names: Iterable[str]) -> Contract:
        """A copy without ``names`` (e.g. the target, absent in requests) and checks using them."""
        dropped = set(names)
        columns = {n: s for n, s in self.columns.items() if n not in dropped}
        checks = [c for c in self.checks if _check_compiles(c, list(columns))]
        return Contract.model_validate({**self.model_dump(exclude={"columns", "checks"}),
                                        "columns": columns, "checks": checks})

    def with_python_checks(self, specs: Sequence[str]) -> Contract:
        """A copy whose Python checks also include ``specs`` (e.g. ``data.checks`` from config)."""
        merged = list(dict.fromkeys([*self.python_checks, *specs]))
        return Contract.model_validate({**self.model_dump(exclude={"python_checks"}),
                                        "python_checks": merged})

    def python_check_functions(self) -> list[tuple[str, PythonCheck]]:
        """The Python checks imported as ``(spec, function)``; import errors are ContractErrors."""
        compiled = self._compile()
        if compiled.python is None:
            compiled.python = [(spec, load_python_check(spec)) for spec in self.python_checks]
        return compiled.python

    # -- records --------------------------------------------------------------------------------

    def check_record(self, record: Mapping[str, Any], *,
                     include_warnings: bool = False) -> list[Violation]:
        """Check one record (e.g. a request's JSON object) against every rule a row can break.

        Returns the violations, each naming the field and the fix; an empty list means valid.
        Fields the contract does not name are ignored; uniqueness needs a whole table.

        >>> contract = Contract.model_validate({
        ...     "columns": {"zip": {"type": "text", "pattern": "^[0-9]{5}$"}},
        ...     "checks": [{"name": "not_zero", "sql": "zip <> '00000'"}]})
        >>> [v.message for v in contract.check_record({"zip": "00000"})]
        ["check 'not_zero' (zip <> '00000') is false for this record; fix the fields it uses"]
        """
        compiled = self._compile()
        found: list[Violation] = []
        typed: dict[str, Any] = {}
        for name, kind, nullable, rules in compiled.fields:
            typed[name] = None
            original = record.get(name, _BAD)
            if original is _BAD:
                found.append(Violation(name, "missing", f"field '{name}' is missing; add it"
                                       + (" (null is allowed)" if nullable else "")))
            elif original is None:
                if not nullable:
                    found.append(Violation(name, "not_null", f"field '{name}' is null but must "
                                           f"have a value; send {_TYPE_FIX[kind]}"))
            elif (value := _coerce(kind, original)) is _BAD:
                found.append(Violation(name, "type", rules[0].message(original) or "", original))
            else:
                typed[name] = value
                found.extend(self._value_violations(rules, value, original, include_warnings))
        found.extend(self._check_violations(compiled, typed))
        found.extend(self._python_violations({**record, **typed}))
        return found

    def check_records(self, records: Iterable[Mapping[str, Any]], *,
                      include_warnings: bool = False) -> list[list[Violation]]:
        """:meth:`check_record` for each record, in order."""
        return [self.check_record(r, include_warnings=include_warnings) for r in records]

    @staticmethod
    def _value_violations(rules: list[ColumnRule], value: Any, original: Any,
                          include_warnings: bool) -> Iterable[Violation]:
        for rule in rules[1:]:
            if rule.severity == "warning" and not include_warnings:
                continue
            message = rule.message(value)
            if message is not None:
                yield Violation(rule.column, rule.kind, message, original, rule.severity)

    def _check_violations(self, compiled: _Compiled, typed: dict[str, Any]) -> list[Violation]:
        if compiled.check_sql is None:
            return []
        con = getattr(compiled.local, "con", None)
        if con is None:
            con = compiled.local.con = _sqlite()
        params = [_sqlite_value(typed[name]) for name in self.columns]
        try:
            results = con.execute(compiled.check_sql, params).fetchone()
        except sqlite3.Error as exc:
            return [Violation(None, "sql", f"custom checks could not be evaluated ({exc}); "
                                           "fix the record's values or the checks")]
        return [
            Violation(None, f"check:{check.name}", f"check '{check.name}' ({check.sql}) is false "
                      "for this record; fix the fields it uses")
            for check, result in zip(self.checks, results, strict=True)
            if result is not None and not result
        ]

    def _python_violations(self, row: dict[str, Any]) -> list[Violation]:
        found = []
        for spec, function in self.python_check_functions():
            try:
                ok = bool(function(row))
                problem = f"check '{spec}' returned False for this record"
            except Exception as exc:  # noqa: BLE001 - a user's check failing is a failed check
                ok, problem = False, f"check '{spec}' raised {type(exc).__name__}: {exc}"
            if not ok:
                found.append(Violation(None, f"python:{spec}", problem + "; fix the record"))
        return found

    def _compile(self) -> _Compiled:
        if self._compiled is None:
            fields = [(name, spec.type, spec.nullable, spec.rules(name))
                      for name, spec in self.columns.items()]
            self._compiled = _Compiled(fields, _record_check_sql(self.checks, list(self.columns)))
        return self._compiled

    def rules(self) -> list[Rule]:
        """Every rule of the contract in report order: rows, columns, SQL checks, Python checks."""
        return [self.rows_rule(), *self.column_rules(), *self.sql_rules(), *self.python_rules()]

    def rows_rule(self) -> Rule:
        """The row-count rule (always present; open bounds always pass)."""
        return Rule(name="rows", kind="rows", column=None, description=_rows_text(self.rows))

    def sql_rules(self) -> list[Rule]:
        """One rule per custom SQL check, in contract order."""
        return [Rule(name=f"check:{c.name}", kind="sql", column=None, description=c.sql)
                for c in self.checks]

    def python_rules(self) -> list[Rule]:
        """One rule per Python check, in contract order."""
        return [Rule(name=f"python:{spec}", kind="python", column=None,
                     description=f"{spec}(row) is True") for spec in self.python_checks]


def _rows_text(rows: RowBounds) -> str:
    if rows.min is None and rows.max is None:
        return "any number of rows"
    return " and ".join(part for part in (
        f">= {rows.min} rows" if rows.min is not None else "",
        f"<= {rows.max} rows" if rows.max is not None else "") if part)


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# -- custom checks -----------------------------------------------------------------------------


def _sqlite() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:", check_same_thread=True)
    con.execute("PRAGMA case_sensitive_like = ON")
    return con


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return int(value) if isinstance(value, bool) else value


def _record_check_sql(checks: Sequence[SqlCheck], columns: Sequence[str]) -> str | None:
    """One SQLite statement evaluating every check over a one-row table of bound values."""
    if not checks:
        return None
    row = ", ".join(f"? AS {quote_sql_identifier(c)}" for c in columns) or "NULL AS _none"
    return f"SELECT {', '.join(f'({c.sql})' for c in checks)} FROM (SELECT {row})"


def _compile_check(check: SqlCheck, columns: Sequence[str]) -> None:
    """Prepare a check in SQLite so a typo or an engine-only function fails at load time."""
    row = ", ".join(f"NULL AS {quote_sql_identifier(c)}" for c in columns) or "NULL AS _none"
    try:
        with contextlib.closing(_sqlite()) as con:
            con.execute(f"SELECT ({check.sql}) FROM (SELECT {row}) LIMIT 0")
    except sqlite3.Error as exc:
        text = str(exc)
        if text.startswith("no such column: "):
            unknown = text.removeprefix("no such column: ")
            raise ValueError(f"check '{check.name}' uses '{unknown}', which is not a contract "
                             f"column{_did_you_mean(unknown, columns)}; fix the name or add the "
                             "column") from exc
        raise ValueError(f"check '{check.name}' ({check.sql}) is not valid SQL for both DuckDB "
                         f"and SQLite ({text}); use comparisons, BETWEEN, IN, LIKE, CASE, "
                         "COALESCE and arithmetic") from exc


def _check_compiles(check: SqlCheck, columns: Sequence[str]) -> bool:
    try:
        _compile_check(check, columns)
    except ValueError:
        return False
    return True


def load_python_check(spec: str) -> PythonCheck:
    """Import a ``module:function`` check; the message names what is missing and how to fix it.

    >>> load_python_check("math:isfinite")(1.0)
    True
    """
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ContractError(
            f"python check '{spec}': cannot import module '{module_name}' ({exc}); put "
            f"{module_name.replace('.', '/')}.py in the project directory or install it"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ContractError(
            f"python check '{spec}': module '{module_name}' has no function '{function_name}'; "
            f"define it there or fix the name in python_checks / data.checks"
        )
    return function  # type: ignore[no-any-return]


# -- YAML helpers ------------------------------------------------------------------------------

_YAML_HEADER = """\
# mlstrata data contract. Edit freely; 'mlstrata validate' checks data against it.
# columns.<name>: type (text|integer|float|boolean|date|timestamp), nullable, min/max,
#   allowed (categories; strict: false makes unknown ones warnings), pattern (regex on the whole
#   value; write [0-9], not \\d), unique. rows: min/max row count.
# checks: [{name, sql}] SQL expressions TRUE for valid rows, in the SQL DuckDB and SQLite share.
# python_checks: ['module:function'] functions taking a row dict and returning True when valid.
"""


def _spec_yaml(spec: ColumnSpec) -> dict[str, Any]:
    body = spec.model_dump(exclude_defaults=True)
    body = {"type": spec.type, "nullable": spec.nullable, **body}
    if spec.allowed is None:
        body.pop("strict", None)
    elif "strict" not in body:
        body["strict"] = True
    return body


def _line_of(path: Path, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node along ``loc`` (a pydantic error location)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            key = next((k for k, v in node.value if k.value == str(part)), None)
            if match is None or key is None:
                break
            line, node = key.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
