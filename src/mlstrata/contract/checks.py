"""Checking one record at a time: column rules, SQL checks in SQLite, ``module:function`` checks.

:class:`RecordChecker` is what a contract compiles into for per-record use
(``Contract.check_record``): the column rules in order, one SQLite statement that evaluates
every custom SQL check over a one-row table of bound values (stdlib ``sqlite3``, one in-memory
connection per thread), and the imported Python checks. Whole datasets are checked in DuckDB by
``mlstrata.data.validate`` instead; this module runs no DuckDB. The serving runtime applies the
column rules a package's ``signature.json`` carries, without pydantic
(``mlstrata.runtime.inputs``).
"""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ContractError
from ._values import BAD, TYPE_FIX, coerce, did_you_mean, quote_sql_identifier
from .rules import ColumnRule, Violation, column_rules

if TYPE_CHECKING:
    from .model import Contract, SqlCheck

__all__ = ["PythonCheck", "RecordChecker", "check_compiles", "compile_check",
           "load_python_check"]

PythonCheck = Callable[[dict[str, Any]], bool]


class RecordChecker:
    """A contract compiled for checking records (e.g. requests) one at a time; thread-safe."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._fields = [(name, spec.type, spec.nullable, column_rules(name, spec))
                        for name, spec in contract.columns.items()]
        self._check_sql = _record_check_sql(contract.checks, list(contract.columns))
        self._python: list[tuple[str, PythonCheck]] | None = None
        self._local = threading.local()

    def python_functions(self) -> list[tuple[str, PythonCheck]]:
        """The Python checks imported as ``(spec, function)``; import errors are ContractErrors."""
        if self._python is None:
            self._python = [(check.function, load_python_check(check.function))
                            for check in self.contract.python_checks]
        return self._python

    def check(self, record: Mapping[str, Any], include_warnings: bool = False) -> list[Violation]:
        """Every violation of ``record``: fields in contract order, then SQL and Python checks.

        Rules whose severity is ``warn`` are reported only with ``include_warnings``.
        """
        found: list[Violation] = []
        typed: dict[str, Any] = {}
        for name, kind, nullable, rules in self._fields:
            typed[name] = None
            original = record.get(name, BAD)
            severity = {rule.kind: rule.severity for rule in rules}
            if original is BAD:
                found.append(Violation(name, "missing", f"field '{name}' is missing; add it"
                                       + (" (null is allowed)" if nullable else "")))
            elif original is None:
                if not nullable:
                    found.append(Violation(name, "not_null", f"field '{name}' is null but must "
                                           f"have a value; send {TYPE_FIX[kind]}", None,
                                           severity["not_null"]))
            elif (value := coerce(kind, original)) is BAD:
                found.append(Violation(name, "type", rules[0].message(original) or "", original,
                                       severity["type"]))
            else:
                typed[name] = value
                found.extend(_value_violations(rules, value, original))
        found.extend(self._sql_violations(typed))
        found.extend(self._python_violations({**record, **typed}))
        return found if include_warnings else [v for v in found if v.severity == "error"]

    def _sql_violations(self, typed: dict[str, Any]) -> list[Violation]:
        if self._check_sql is None:
            return []
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = _sqlite()
        params = [_sqlite_value(typed[name]) for name in self.contract.columns]
        try:
            results = con.execute(self._check_sql, params).fetchone()
        except sqlite3.Error as exc:
            return [Violation(None, "sql", f"custom checks could not be evaluated ({exc}); "
                                           "fix the record's values or the checks")]
        return [
            Violation(None, f"check:{check.name}", f"check '{check.name}' ({check.sql}) is false "
                      "for this record; fix the fields it uses", severity=check.severity)
            for check, result in zip(self.contract.checks, results, strict=True)
            if result is not None and not result
        ]

    def _python_violations(self, row: dict[str, Any]) -> list[Violation]:
        found = []
        levels = [check.severity for check in self.contract.python_checks]
        for (spec, function), severity in zip(self.python_functions(), levels, strict=True):
            try:
                ok = bool(function(row))
                problem = f"check '{spec}' returned False for this record"
            except Exception as exc:  # noqa: BLE001 - a user's check failing is a failed check
                ok, problem = False, f"check '{spec}' raised {type(exc).__name__}: {exc}"
            if not ok:
                found.append(Violation(None, f"python:{spec}", problem + "; fix the record",
                                       severity=severity))
        return found


def _value_violations(rules: list[ColumnRule], value: Any,
                      original: Any) -> Iterable[Violation]:
    for rule in rules[1:]:
        message = rule.message(value)
        if message is not None:
            yield Violation(rule.column, rule.kind, message, original, rule.severity)


# -- SQL checks in SQLite ----------------------------------------------------------------------


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


def _one_row(columns: Sequence[str], value: str) -> str:
    return ", ".join(f"{value} AS {quote_sql_identifier(c)}" for c in columns) or "NULL AS _none"


def _record_check_sql(checks: Sequence[SqlCheck], columns: Sequence[str]) -> str | None:
    """One SQLite statement evaluating every check over a one-row table of bound values."""
    if not checks:
        return None
    return (f"SELECT {', '.join(f'({c.sql})' for c in checks)} "
            f"FROM (SELECT {_one_row(columns, '?')})")


def compile_check(check: SqlCheck, columns: Sequence[str]) -> None:
    """Prepare a check in SQLite so a typo or an engine-only function fails at load time.

    Raises ``ValueError`` (pydantic turns it into the contract's validation error).
    """
    try:
        with contextlib.closing(_sqlite()) as con:
            con.execute(f"SELECT ({check.sql}) FROM (SELECT {_one_row(columns, 'NULL')}) LIMIT 0")
    except sqlite3.Error as exc:
        text = str(exc)
        if text.startswith("no such column: "):
            unknown = text.removeprefix("no such column: ")
            raise ValueError(f"check '{check.name}' uses '{unknown}', which is not a contract "
                             f"column{did_you_mean(unknown, columns)}; fix the name or add the "
                             "column") from exc
        raise ValueError(f"check '{check.name}' ({check.sql}) is not valid SQL for both DuckDB "
                         f"and SQLite ({text}); use comparisons, BETWEEN, IN, LIKE, CASE, "
                         "COALESCE and arithmetic") from exc


def check_compiles(check: SqlCheck, columns: Sequence[str]) -> bool:
    """True when :func:`compile_check` accepts ``check`` over ``columns``."""
    try:
        compile_check(check, columns)
    except ValueError:
        return False
    return True


# -- Python checks -----------------------------------------------------------------------------


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
