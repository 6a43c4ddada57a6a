"""Turn request values into typed columns and check them against the model's signature.

Typed columns are float64 with NaN for numbers and booleans, object arrays with None for text,
datetime64[s] with NaT for dates. The contract's rules (required fields, ``allowed`` categories,
``min``/``max`` ranges, ``pattern``) are applied on two paths:

- :func:`columns_from_records` / :func:`columns_from_lists` convert JSON-like values (a list of
  records, or one list of values per field) and check each value's type and rules as it goes —
  one pass, cheap for the few records a live request carries;
- :func:`check_rules` checks typed columns that arrive already typed (Arrow batches),
  vectorized with numpy — cheap for 100,000 rows at a time.

Both produce the same messages from the same helpers; a property test keeps them in agreement.

Problems are :class:`FieldProblem` (row, field, message, rule, severity). A problem of severity
``error`` makes its value missing in its column; one of severity ``warn`` (a rule the contract
marks ``warn``: an observed range, a category set) keeps the value, which is scored.
``strict=True`` (``mlstrata serve --strict``) makes every rule an error. :func:`require_valid`
turns the errors into an :class:`InvalidInputError` whose one-line message names the record and
the field, and returns the warnings; :func:`record_warnings` groups them per record as
:class:`ContractWarning` (field, rule, message), which travel with the predictions. Batch scoring
keeps the per-row problems and rejects only the rows an error names.

>>> from mlstrata.runtime.signature import InputField, Signature
>>> sig = Signature("m@1", "binary", "y", (InputField("age", "integer", False, min=18),
...                 InputField("city", "text", True, allowed=("a", "b"), strict=True)), (),
...                 (("age", "double"), ("city", "string")), ())
>>> columns, problems = columns_from_records(sig, [{"age": 30, "city": "a"}, {"age": "x"}])
>>> [str(p) for p in problems]
["record 1, field 'age': expected an integer, got text 'x'; send it unquoted", "record 1, \
field 'city': missing; send null when the value is unknown"]
>>> _, problems = columns_from_records(sig, [{"age": 12, "city": "c"}])
>>> [str(p) for p in problems]
["record 0, field 'age': 12 is below the minimum 18", "record 0, field 'city': 'c' is not an \
allowed value (allowed: ['a', 'b'])"]
>>> typed = {"age": np.array([12.0, 40.0]), "city": np.array(["c", None], dtype=object)}
>>> [str(p) for p in check_rules(sig, typed)]
["record 0, field 'age': 12 is below the minimum 18", "record 0, field 'city': 'c' is not an \
allowed value (allowed: ['a', 'b'])"]
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, MlstrataError
from .dates import parse_date
from .signature import InputField, Severity, Signature

__all__ = [
    "Columns",
    "ContractWarning",
    "FieldProblem",
    "InvalidInputError",
    "RecordWarnings",
    "check_rules",
    "columns_from_lists",
    "columns_from_records",
    "record_warnings",
    "require_valid",
    "text_missing",
]

Columns = dict[str, np.ndarray[Any, Any]]
_SHOWN_PROBLEMS = 3
_WHOLE_DIGITS_UP_TO = 1e16
_MISSING = object()


@dataclass(frozen=True)
class FieldProblem:
    """One value against a rule: the record (row) index, the field, what is wrong with it, the
    rule's kind (``type``, ``missing``, ``not_null``, ``min``, ``max``, ``allowed``, ``pattern``;
    ``""`` when no single rule is to blame) and its severity (``warn``: scored anyway)."""

    row: int
    field: str
    message: str
    rule: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"record {self.row}, field {self.field!r}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON: ``{"record", "field", "rule", "message"}``."""
        return {"record": self.row, "field": self.field, "rule": self.rule,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class ContractWarning:
    """A rule of severity ``warn`` that a scored record breaks: field, rule kind, message."""

    field: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """``{"field", "rule", "message"}``, as responses, batch outputs and the log hold it."""
        return {"field": self.field, "rule": self.rule, "message": self.message}


RecordWarnings = tuple[tuple[ContractWarning, ...], ...]
"""The warnings of each record of a request or batch, in record order."""


class InvalidInputError(MlstrataError):
    """The input does not match the model's signature; ``problems`` lists every bad value."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:_SHOWN_PROBLEMS])
        more = len(self.problems) - _SHOWN_PROBLEMS
        super().__init__(shown + (f" (and {more} more)" if more > 0 else ""))


def require_valid(problems: Sequence[FieldProblem]) -> list[FieldProblem]:
    """Raise :class:`InvalidInputError` when any problem is an error; else the warnings."""
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise InvalidInputError(sorted(errors, key=lambda p: (p.row, p.field)))
    return [p for p in problems if p.severity == "warn"]


def record_warnings(problems: Sequence[FieldProblem], rows: int) -> RecordWarnings | None:
    """The warn problems grouped per record (``rows`` records), or None when there are none.

    >>> problem = FieldProblem(1, "lines", "14 is above the maximum 13", "max", "warn")
    >>> record_warnings([problem], 2)
    ((), (ContractWarning(field='lines', rule='max', message='14 is above the maximum 13'),))
    """
    warned = [p for p in problems if p.severity == "warn"]
    if not warned:
        return None
    per_record: list[list[ContractWarning]] = [[] for _ in range(rows)]
    for p in sorted(warned, key=lambda p: p.row):
        per_record[p.row].append(ContractWarning(p.field, p.rule, p.message))
    return tuple(tuple(found) for found in per_record)


def columns_from_records(
    signature: Signature, records: Sequence[Mapping[str, Any]], *, strict: bool = False
) -> tuple[Columns, list[FieldProblem]]:
    """Typed columns from a list of records (extra keys are ignored) and every bad value.

    A field absent from a record is a problem even when nullable: clients send ``null`` for an
    unknown value, so a misspelt key is never silently scored as missing. ``strict`` makes warn
    rules errors.
    """
    problems: list[FieldProblem] = []
    for row, record in enumerate(records):
        if not isinstance(record, Mapping):
            problems.append(FieldProblem(row, "*", "expected an object with the fields "
                                         f"{signature.input_names}, got {_describe(record)}"))
    if problems:
        return {}, problems
    lists = {f.name: [r.get(f.name, _MISSING) for r in records] for f in signature.inputs}
    return columns_from_lists(signature, lists, strict=strict)


def columns_from_lists(
    signature: Signature, lists: Mapping[str, Sequence[Any]], *, text_source: bool = False,
    strict: bool = False,
) -> tuple[Columns, list[FieldProblem]]:
    """Typed columns from one sequence of values per field (all the same length), bad values.

    Each value's type and rules are checked; a value breaking an error rule is missing in its
    column, one breaking only warn rules keeps its value (``strict``: every rule is an error).

    ``text_source`` accepts numbers written as text and an empty cell as a missing value (CSV
    cells, OIP ``BYTES`` elements); JSON numbers must be numbers, JSON dates ISO 8601 text
    (null when unknown).
    """
    absent = [f.name for f in signature.inputs if f.name not in lists]
    if absent:
        return {}, [FieldProblem(0, name, "missing; every record needs it (send null when the "
                                 "value is unknown)", "missing") for name in absent]
    lengths = {len(values) for values in lists.values()}
    if len(lengths) > 1:
        sizes = {name: len(values) for name, values in lists.items()}
        return {}, [FieldProblem(0, "*", f"fields have different lengths {sizes}; send one "
                                 "value per record in every field")]
    columns: Columns = {}
    problems: list[FieldProblem] = []
    for check in _field_checks(signature):
        columns[check.field.name], found = check.convert(lists[check.field.name], text_source,
                                                         strict)
        problems += found
    return columns, problems


def check_rules(signature: Signature, columns: Columns, *,
                only: Collection[str] | None = None, strict: bool = False) -> list[FieldProblem]:
    """Every value that breaks a rule of its field (nullability, allowed, range, pattern).

    ``only`` names the fields to check (default: all); ``columns`` needs just those. Batch
    scoring uses it to check a text column's distinct values once each, then its other fields.
    Each problem carries its rule's severity (``strict``: all errors).
    """
    problems: list[FieldProblem] = []
    for check in _field_checks(signature):
        field = check.field
        if (only is not None and field.name not in only) or not check.has_rules:
            continue
        values = columns[field.name]
        missing = _missing_mask(field, values)
        if not field.nullable:
            problems += [_problem(field, row, _REQUIRED, "not_null", strict)
                         for row in np.flatnonzero(missing).tolist()]
        present = ~missing
        problems += _range_problems(field, values, present, strict)
        if field.allowed is not None:
            problems += _allowed_problems(field, values, present, strict)
        if check.matches is not None:
            problems += _pattern_problems(field, check.matches, values, present, strict)
    return problems


def _problem(field: InputField, row: int, message: str, rule: str,
             strict: bool) -> FieldProblem:
    """A problem of ``field``'s rule ``rule``, with its severity; a warn rule refused because of
    ``strict`` says so."""
    severity = field.severity(rule)
    if strict and severity == "warn":
        return FieldProblem(row, field.name, f"{message} (rule '{rule}' only warns, but this "
                            "server is strict: it refuses warnings)", rule, "error")
    return FieldProblem(row, field.name, message, rule, severity)


_NONE = np.array(None, dtype=object)
_REQUIRED = "required (null or missing is not allowed)"
_ABSENT = "missing; send null when the value is unknown"
_CHECKS: dict[int, tuple[Signature, list[_FieldCheck]]] = {}
_MAX_CACHED_SIGNATURES = 64


def _field_checks(signature: Signature) -> list[_FieldCheck]:
    """The compiled per-field checks of ``signature`` (built once per signature object)."""
    cached = _CHECKS.get(id(signature))
    if cached is None or cached[0] is not signature:
        if len(_CHECKS) >= _MAX_CACHED_SIGNATURES:  # a server reloading versions for weeks
            _CHECKS.clear()
        cached = (signature, [_FieldCheck(field) for field in signature.inputs])
        _CHECKS[id(signature)] = cached
    return cached[1]


class _PatternVerdicts(dict[str, bool]):
    """Whether each text seen so far matches a pattern, remembered (bounded): values recur
    across requests and batches (postal codes, product codes), the regex runs once per value."""

    _LIMIT = 1_000_000

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self._regex = re.compile(pattern)

    def __missing__(self, text: str) -> bool:
        if len(self) >= self._LIMIT:
            self.clear()
        verdict = self[text] = self._regex.fullmatch(text) is not None
        return verdict


class _BadValue(Exception):
    """A value that cannot be read as its field's type (internal: becomes a FieldProblem);
    ``rule`` is ``type``, or ``missing`` for an absent field."""

    def __init__(self, message: str, rule: str = "type") -> None:
        super().__init__(message)
        self.rule = rule


class _FieldCheck:
    """One field's type conversion and rules, compiled once, applied value by value."""

    def __init__(self, field: InputField) -> None:
        self.field = field
        ranged = field.is_numeric or field.is_date
        self.low = self._limit(field.min) if ranged else None
        self.high = self._limit(field.max) if ranged else None
        self.allowed: frozenset[Any] | None = None
        if field.allowed is not None:
            self.allowed = frozenset(float(a) if field.is_numeric else str(a)
                                     for a in field.allowed)
        self.matches = (_PatternVerdicts(str(field.pattern))
                        if field.pattern is not None and field.logical_type == "text" else None)
        self.parse = _number if field.is_numeric else _date if field.is_date else _text
        self.has_rules = not field.nullable or any(
            rule is not None for rule in (self.low, self.high, self.allowed, self.matches))

    def _limit(self, bound: Any) -> Any:
        """A range bound in the column's type (None when unset)."""
        if bound is None:
            return None
        return np.datetime64(str(bound), "s") if self.field.is_date else float(bound)

    def convert(self, values: Sequence[Any], text_source: bool,
                strict: bool = False) -> tuple[np.ndarray[Any, Any], list[FieldProblem]]:
        """The typed column for ``values`` and the problems of the values that fail a rule.

        A value failing an error rule is missing in the column; one failing only warn rules
        keeps its value.
        """
        field = self.field
        dtype = np.float64 if field.is_numeric else "datetime64[s]" if field.is_date else object
        out: np.ndarray[Any, Any] = np.empty(len(values), dtype=dtype)
        empty = None if dtype is object else np.nan if field.is_numeric else "NaT"
        problems: list[FieldProblem] = []
        for row, value in enumerate(values):
            try:
                typed: Any = self.parse(field, value, text_source)
            except _BadValue as exc:
                problems.append(_problem(field, row, str(exc), exc.rule, strict))
                out[row] = empty
                continue
            failed = self.failures(typed)
            if failed is None:
                out[row] = typed
                continue
            found = [_problem(field, row, message, rule, strict) for rule, message in failed]
            problems += found
            valid = all(p.severity == "warn" for p in found)
            out[row] = typed if valid else empty
        return out, problems

    def failures(self, typed: Any) -> list[tuple[str, str]] | None:
        """The rules a typed value breaks as ``(rule, message)``, or None (the usual case)."""
        if typed is None or typed != typed:  # None, NaN and NaT are missing
            return None if self.field.nullable else [("not_null", _REQUIRED)]
        failed = None
        if self.low is not None and typed < self.low:
            failed = [("min", _out_of_range(typed, "below the minimum", self.field.min))]
        if self.high is not None and typed > self.high:
            failed = (failed or []) + [("max", _out_of_range(typed, "above the maximum",
                                                              self.field.max))]
        if self.allowed is not None and typed not in self.allowed:
            failed = (failed or []) + [("allowed", _not_allowed(self.field, typed))]
        if self.matches is not None and not self.matches[typed]:
            failed = (failed or []) + [("pattern", _no_match(self.field, typed))]
        return failed


def _number(field: InputField, value: Any, text_source: bool) -> float:
    if value is _MISSING:
        raise _BadValue(_ABSENT, "missing")
    if value is None:
        return math.nan
    if isinstance(value, bool):
        if field.logical_type == "boolean":
            return float(value)
        raise _BadValue(f"expected a number, got {_describe(value)}")
    if isinstance(value, str) and text_source:
        value = _number_from_text(field, value)
    if not isinstance(value, (int, float)):
        raise _BadValue(f"expected {_expected(field)}, got {_describe(value)}; send it unquoted")
    number = float(value)
    if field.logical_type == "integer" and math.isfinite(number) and not number.is_integer():
        raise _BadValue(f"expected an integer, got {value!r}")
    if field.logical_type == "boolean" and not math.isnan(number) and number not in (0.0, 1.0):
        raise _BadValue(f"expected true or false, got {value!r}")
    return number


def _number_from_text(field: InputField, text: str) -> float | bool | str:
    stripped = text.strip()
    if not stripped:
        return math.nan
    if field.logical_type == "boolean" and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    try:
        return float(stripped)
    except ValueError:
        return text


def _date(field: InputField, value: Any, text_source: bool) -> np.datetime64:
    if value is _MISSING:
        raise _BadValue(_ABSENT, "missing")
    if value is not None and not isinstance(value, str):
        raise _BadValue(f"expected an ISO 8601 {field.logical_type} such as 2024-03-15, got "
                        f"{_describe(value)}")
    if isinstance(value, str) and not text_source and not value.strip():
        raise _BadValue(f"expected an ISO 8601 {field.logical_type} such as 2024-03-15, got "
                        "empty text; send null when the value is unknown")
    try:
        return parse_date(value)
    except DataError as exc:
        raise _BadValue(str(exc)) from exc


def _text(field: InputField, value: Any, text_source: bool) -> str | None:
    if value is _MISSING:
        raise _BadValue(_ABSENT, "missing")
    if value is None or (text_source and value == ""):
        return None
    if not isinstance(value, str):
        raise _BadValue(f"expected text, got {_describe(value)}; send it as a JSON string")
    return value


def _out_of_range(value: Any, word: str, bound: Any) -> str:
    return f"{_show(value)} is {word} {bound}"


def _not_allowed(field: InputField, value: Any) -> str:
    allowed = list(field.allowed or ())
    more = " ..." if len(allowed) > 20 else ""
    return f"{_show(value)} is not an allowed value (allowed: {allowed[:20]}{more})"


def _no_match(field: InputField, value: Any) -> str:
    return f"{_show(value)} does not match the pattern {field.pattern}"


def _expected(field: InputField) -> str:
    return {"integer": "an integer", "boolean": "true or false"}.get(field.logical_type,
                                                                     "a number")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if value is None:
        return "null"
    return {"list": "a list", "dict": "an object"}.get(type(value).__name__,
                                                       type(value).__name__)


def _missing_mask(field: InputField, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    mask: np.ndarray[Any, Any]
    if field.is_numeric:
        mask = np.isnan(values)
    elif field.is_date:
        mask = np.isnat(values)
    else:
        mask = text_missing(values)
    return mask


def text_missing(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Where an object array of text holds None (vectorized: no Python loop)."""
    mask: np.ndarray[Any, Any] = np.equal(values, _NONE)
    return mask


def _range_problems(field: InputField, values: np.ndarray[Any, Any],
                    present: np.ndarray[Any, Any], strict: bool) -> list[FieldProblem]:
    if not (field.is_numeric or field.is_date):
        return []
    problems: list[FieldProblem] = []
    for bound, compare, word, rule in ((field.min, np.less, "below the minimum", "min"),
                                       (field.max, np.greater, "above the maximum", "max")):
        if bound is None:
            continue
        limit = np.datetime64(str(bound), "s") if field.is_date else float(bound)
        with np.errstate(invalid="ignore"):
            bad = present & compare(values, limit)
        problems += _problems(field, np.flatnonzero(bad), values,
                              lambda v, w=word, b=bound: _out_of_range(v, w, b), rule, strict)
    return problems


def _allowed_problems(field: InputField, values: np.ndarray[Any, Any],
                      present: np.ndarray[Any, Any], strict: bool) -> list[FieldProblem]:
    allowed = field.allowed or ()
    if field.is_numeric:
        known = np.isin(values, np.asarray([float(a) for a in allowed], dtype=np.float64))
    else:
        members = {str(a) for a in allowed}
        known = np.fromiter(map(members.__contains__, values.tolist()), dtype=bool,
                            count=len(values))
    return _problems(field, np.flatnonzero(present & ~known), values,
                     lambda v: _not_allowed(field, v), "allowed", strict)


def _pattern_problems(field: InputField, matches: _PatternVerdicts,
                      values: np.ndarray[Any, Any], present: np.ndarray[Any, Any],
                      strict: bool) -> list[FieldProblem]:
    texts = values[present].tolist()
    matched = np.fromiter(map(matches.__getitem__, texts), dtype=bool, count=len(texts))
    return _problems(field, np.flatnonzero(present)[~matched], values,
                     lambda v: _no_match(field, v), "pattern", strict)


def _problems(field: InputField, rows: np.ndarray[Any, Any], values: np.ndarray[Any, Any],
              message: Any, rule: str, strict: bool) -> list[FieldProblem]:
    return [_problem(field, row, message(values[row]), rule, strict) for row in rows.tolist()]


def _show(value: Any) -> str:
    """A value as a message shows it: ``30`` for 30.0, ``1e+300`` (not 301 digits) for 1e300."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _WHOLE_DIGITS_UP_TO:
        return str(int(value))
    if isinstance(value, np.floating):
        return _show(float(value))
    if isinstance(value, np.datetime64):
        return str(value)
    return repr(value)
