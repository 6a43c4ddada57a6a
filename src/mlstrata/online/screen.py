"""A fast first look at an event: does it surely pass every column rule of the contract?

The contract's record evaluator (:class:`mlstrata.contract.checks.RecordChecker`) is the
authority on an event, and it builds a :class:`~mlstrata.contract.Violation` list with
messages for every event, valid or not — a few microseconds a field, as much as River's own
work on a small logistic regression. Most events of a live stream are valid, so
:class:`Screen` answers the cheaper question first: ``passes(record)`` is True only when every
column of the contract is present and breaks none of its rules — ``error`` *and* ``warn`` —
with plain JSON values (``float``/``int`` for a float column, ``int`` for an integer,
``bool``, ``str``; dates through the contract's own coercion), a finite number in every float
column. Anything else — a missing field, a null where none is allowed, a ``Decimal``, a value
out of range, an error while comparing — answers False, and the caller asks the evaluator,
which decides and explains. So the screen never changes a verdict, it only skips building an
empty list; ``tests/online/test_screen.py`` proves it against the evaluator on generated
contracts and records (a passing record has no violation at all).

A contract with SQL or Python checks has no screen (:meth:`Screen.of` returns None): those
need the evaluator for every event.

>>> from mlstrata.contract import Contract
>>> screen = Screen.of(Contract.model_validate({"columns": {
...     "age": {"type": "integer", "min": 18}, "town": {"type": "text", "nullable": True}}}))
>>> screen.passes({"age": 40, "town": None}), screen.passes({"age": 15, "town": "Vigo"})
(True, False)
>>> screen.passes({"age": 40.0, "town": "Vigo"})  # the evaluator accepts 40.0: it decides
False
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..contract import BAD, coerce

if TYPE_CHECKING:
    from ..contract import Contract
    from ..contract.model import ColumnSpec

__all__ = ["Screen"]

_MISSING = object()
_INT64 = 1 << 63


@dataclass(frozen=True)
class _Column:
    """One column's rules, compiled: how to read a value, its bounds, categories, pattern."""

    name: str
    nullable: bool
    read: Callable[[Any], Any]
    low: Any
    high: Any
    members: frozenset[Any] | None
    pattern: re.Pattern[str] | None


class Screen:
    """The columns of a contract compiled for :meth:`passes` (see the module docstring)."""

    def __init__(self, columns: list[_Column]) -> None:
        self._columns = columns

    @classmethod
    def of(cls, contract: Contract) -> Screen | None:
        """The screen of ``contract``, or None when it has SQL or Python checks."""
        if contract.checks or contract.python_checks:
            return None
        return cls([_compile(name, spec) for name, spec in contract.columns.items()])

    def passes(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` surely breaks no rule of any column (False: ask the evaluator)."""
        try:
            for column in self._columns:
                original = record.get(column.name, _MISSING)
                if original is None:
                    if column.nullable:
                        continue
                    return False
                value = column.read(original)
                if value is BAD or not _within(column, value):
                    return False
        except (TypeError, ValueError, ArithmeticError):
            return False
        return True


def _within(column: _Column, value: Any) -> bool:
    if column.low is not None and value < column.low:
        return False
    if column.high is not None and value > column.high:
        return False
    if column.members is not None and value not in column.members:
        return False
    return column.pattern is None or column.pattern.fullmatch(value) is not None


def _compile(name: str, spec: ColumnSpec) -> _Column:
    return _Column(name, spec.nullable, _READERS.get(spec.type, _coercing(spec.type)),
                   spec.min, spec.max,
                   frozenset(spec.allowed) if spec.allowed is not None else None,
                   re.compile(spec.pattern) if spec.pattern is not None else None)


def _float(value: Any) -> Any:
    """A float column's value: a finite float, or an int within 64 bits, as a float."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else BAD  # NaN and ±inf: ask the evaluator
    if kind is int and -_INT64 <= value < _INT64:
        return float(value)
    return BAD


def _exactly(kind: type) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        return value if type(value) is kind else BAD
    return read


def _coercing(kind: str) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        return coerce(kind, value)
    return read


_READERS: dict[str, Callable[[Any], Any]] = {
    "float": _float, "integer": _exactly(int), "boolean": _exactly(bool), "text": _exactly(str),
}
