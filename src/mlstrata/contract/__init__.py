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
      purpose: {type: text, allowed: [car, home, study]}
      num_credit_lines: {type: integer, min: 0, max: 13, severity: {max: warn}}
    checks:
      - {name: adult, sql: age BETWEEN 18 AND 120}
      - {name: usual_income, sql: income < 500000, severity: warn}
    python_checks: ['mychecks:income_is_plausible']

Every rule is an ``error`` (the record is refused, ``mlstrata validate`` fails) unless its
``severity`` is ``warn``: then a record breaking it is still scored, and the warning travels with
the prediction (serving, batch, precompute) and in validation reports.

Every column rule is a :class:`ColumnRule` with a DuckDB predicate that is TRUE for failing rows
(``mlstrata.data.validate`` counts them over a whole dataset in one pass) and a Python test of a
single value (:meth:`Contract.check_record`, used per request by the serving layer).

What this package is: the model and its YAML (``model``), the rules and their SQL/Python
evaluation (``rules``), per-record checking with SQL checks in SQLite and ``module:function``
Python checks (``checks``). What it is not: a dataset validator — it runs no DuckDB and imports
neither DuckDB nor pandas nor numpy, so the serving runtime can load it alone; whole datasets
are validated by ``mlstrata.data.validate`` and contracts inferred by
``mlstrata.data.contract_infer``.

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

from ._values import BAD, LogicalType, coerce, did_you_mean, quote_sql_identifier, sql_literal
from .checks import PythonCheck, load_python_check
from .model import CONTRACT_VERSION, ColumnSpec, Contract, PythonCheckSpec, RowBounds, SqlCheck
from .rules import RULE_KINDS, ColumnRef, ColumnRule, Rule, Severity, Violation

__all__ = [
    "BAD",
    "CONTRACT_VERSION",
    "RULE_KINDS",
    "ColumnRef",
    "ColumnRule",
    "ColumnSpec",
    "Contract",
    "LogicalType",
    "PythonCheck",
    "PythonCheckSpec",
    "Rule",
    "RowBounds",
    "Severity",
    "SqlCheck",
    "Violation",
    "coerce",
    "did_you_mean",
    "load_python_check",
    "quote_sql_identifier",
    "sql_literal",
]
