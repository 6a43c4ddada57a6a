"""The contract as a pydantic model: columns, row bounds and custom checks, to and from YAML.

Settings are validated when a contract loads, so a bad contract fails at once with the line and
the fix: bounds and categories must fit the column's type, patterns must compile, SQL checks must
prepare in SQLite over the contract's columns, Python checks must read ``module:function``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .._yaml import dump_yaml, load_yaml_model
from ..errors import ContractError
from ._values import (
    BAD,
    ORDERED,
    SQL_TYPE,
    TYPE_FIX,
    LogicalType,
    coerce,
    did_you_mean,
    quote_sql_identifier,
)
from .checks import PythonCheck, RecordChecker, check_compiles, compile_check
from .rules import (
    RULE_KINDS,
    SEVERITIES,
    ColumnRef,
    ColumnRule,
    Rule,
    Severity,
    Violation,
    column_rules,
)

__all__ = ["CONTRACT_VERSION", "ColumnSpec", "Contract", "PythonCheckSpec", "RowBounds",
           "SqlCheck"]

CONTRACT_VERSION: Final = 1
_PYTHON_CHECK = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_KIND_ALIASES = {"nullable": "not_null"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """What one column must hold. Bounds and categories are checked against the column's type.

    ``severity`` names the rule kinds that only warn (``{min: warn, max: warn}``); every other
    rule is an error. ``strict: false`` is the older spelling of ``severity: {allowed: warn}``
    (the two are kept in agreement).

    >>> spec = ColumnSpec.model_validate({"type": "integer", "max": 13,
    ...                                   "severity": {"max": "warn"}})
    >>> spec.severity_of("max"), spec.severity_of("type")
    ('warn', 'error')
    """

    type: LogicalType
    nullable: bool = True
    min: Any = None
    max: Any = None
    allowed: list[Any] | None = None
    strict: bool = True
    pattern: str | None = None
    unique: bool = False
    description: str = ""
    severity: dict[str, Severity] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _severities(cls, data: Any) -> Any:
        """Check the ``severity`` mapping's names and keep ``strict`` in agreement with it."""
        if not isinstance(data, dict):
            return data
        severity = _severity_mapping(data.get("severity"))
        strict = data.get("strict")
        if isinstance(strict, bool) and "allowed" in severity \
                and strict != (severity["allowed"] == "error"):
            raise ValueError(f"strict: {str(strict).lower()} contradicts severity allowed: "
                             f"{severity['allowed']}; keep only the severity")
        if strict is False:
            severity.setdefault("allowed", "warn")
        return {**data, "severity": severity,
                "strict": severity.get("allowed", "error") == "error"}

    def severity_of(self, kind: str) -> Severity:
        """What breaking the rule ``kind`` (``min``, ``allowed``, ...) does: error or warn."""
        return self.severity.get(kind, "error")

    @field_validator("min", "max")
    @classmethod
    def _bound_fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if value is None or kind is None:
            return value
        if kind not in ORDERED:
            raise ValueError(f"min/max apply to {', '.join(ORDERED)} columns, not {kind}; "
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
        return column_rules(column, self)


def _severity_mapping(given: Any) -> dict[str, Severity]:
    """A column's ``severity`` setting checked: known rule kinds, each ``error`` or ``warn``."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise ValueError("severity maps rule kinds to error or warn, e.g. "
                         "{min: warn, max: warn}")
    severity: dict[str, Severity] = {}
    for kind, level in given.items():
        name = _KIND_ALIASES.get(str(kind), str(kind))
        if name not in RULE_KINDS:
            raise ValueError(f"severity names unknown rule {str(kind)!r}"
                             f"{did_you_mean(str(kind), [*RULE_KINDS, *_KIND_ALIASES])}; the "
                             f"rules are {', '.join(RULE_KINDS)}")
        severity[name] = _severity_level(level, f"severity of {kind}")
    return severity


def _severity_level(level: Any, where: str) -> Severity:
    if level not in SEVERITIES:
        raise ValueError(f"{where} is {level!r}{did_you_mean(str(level), list(SEVERITIES))}; "
                         "use error or warn")
    return level  # type: ignore[no-any-return]


def _coerce_setting(kind: str, value: Any) -> Any:
    coerced = coerce(kind, value)
    if coerced is BAD:
        raise ValueError(f"{value!r} is not a valid {kind} value; write {TYPE_FIX[kind]}")
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

    def describe(self) -> str:
        """The bounds in words, e.g. ``>= 1 rows``."""
        if self.min is None and self.max is None:
            return "any number of rows"
        return " and ".join(part for part in (
            f">= {self.min} rows" if self.min is not None else "",
            f"<= {self.max} rows" if self.max is not None else "") if part)


class SqlCheck(_Model):
    """A custom check: a SQL expression TRUE for valid rows (e.g. ``age BETWEEN 18 AND 120``)."""

    name: str = Field(pattern=r"^[\w.-]+$")
    sql: str = Field(min_length=1)
    description: str = ""
    severity: Severity = "error"

    @field_validator("severity", mode="before")
    @classmethod
    def _level(cls, level: Any) -> Severity:
        return _severity_level(level, "severity")


class PythonCheckSpec(_Model):
    """A ``module:function`` check and what its failure does; written in YAML as the plain
    ``'module:function'`` text (an error) or ``{function: 'module:function', severity: warn}``."""

    function: str
    severity: Severity = "error"

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"function": data} if isinstance(data, str) else data

    @field_validator("function")
    @classmethod
    def _module_function(cls, spec: str) -> str:
        if not _PYTHON_CHECK.fullmatch(spec):
            raise ValueError(f"python check {spec!r} must look like 'module:function'")
        return spec

    @field_validator("severity", mode="before")
    @classmethod
    def _level(cls, level: Any) -> Severity:
        return _severity_level(level, "severity")

    def to_yaml(self) -> str | dict[str, str]:
        """The plain text for an error check, else the mapping."""
        return self.function if self.severity == "error" else self.model_dump()


class Contract(_Model):
    """A data contract: columns, row bounds and custom checks, loaded from and saved to YAML."""

    version: Literal[1] = CONTRACT_VERSION
    dataset: str = ""
    source: str | None = None
    rows: RowBounds = RowBounds()
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    checks: list[SqlCheck] = Field(default_factory=list)
    python_checks: list[PythonCheckSpec] = Field(default_factory=list)
    _checker: RecordChecker | None = PrivateAttr(default=None)

    @field_validator("checks")
    @classmethod
    def _checks_compile(cls, checks: list[SqlCheck], info: ValidationInfo) -> list[SqlCheck]:
        names = [check.name for check in checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"check names must be unique; rename {', '.join(duplicates)}")
        columns = list(info.data.get("columns") or {})
        for check in checks:
            compile_check(check, columns)
        return checks

    def __eq__(self, other: object) -> bool:
        """Equal settings make equal contracts (the compiled record checker is only a cache)."""
        if not isinstance(other, Contract):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # columns is a dict: a contract is unhashable

    # -- files ----------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Contract:
        """Read a YAML contract; an error names the file, the line, the key and the fix."""
        return load_yaml_model(path, cls, ContractError, with_line=True)

    def to_yaml(self) -> str:
        """The contract as editable YAML (only the keys that say something), with a header."""
        body: dict[str, Any] = {"version": self.version, "dataset": self.dataset}
        if self.source:
            body["source"] = self.source
        body["rows"] = self.rows.model_dump(exclude_none=True)
        body["columns"] = {name: _spec_yaml(spec) for name, spec in self.columns.items()}
        body["checks"] = [c.model_dump(exclude_defaults=True) for c in self.checks]
        body["python_checks"] = [check.to_yaml() for check in self.python_checks]
        return _YAML_HEADER + str(dump_yaml(body))

    # -- derived contracts ----------------------------------------------------------------------

    def require_columns(self, available: Iterable[str], where: str) -> None:
        """Raise ``ContractError`` naming each contract column missing from ``available``."""
        present = list(available)
        missing = [name for name in self.columns if name not in present]
        if missing:
            named = ", ".join(f"'{name}'{did_you_mean(name, present)}" for name in missing)
            raise ContractError(f"{where}: contract column(s) {named} not in the data; fix the "
                                "contract's column names or pass the right data")

    def without_columns(self, names: Iterable[str]) -> Contract:
        """A copy without ``names`` (e.g. the target, absent in requests) and checks using them."""
        dropped = set(names)
        columns = {n: s for n, s in self.columns.items() if n not in dropped}
        checks = [c for c in self.checks if check_compiles(c, list(columns))]
        return Contract.model_validate({**self.model_dump(exclude={"columns", "checks"}),
                                        "columns": columns, "checks": checks})

    def with_python_checks(self, specs: Sequence[str]) -> Contract:
        """A copy whose Python checks also include ``specs`` (e.g. ``data.checks`` from config)."""
        known = {check.function for check in self.python_checks}
        merged = [*self.python_checks,
                  *(PythonCheckSpec(function=s) for s in dict.fromkeys(specs) if s not in known)]
        return Contract.model_validate({**self.model_dump(exclude={"python_checks"}),
                                        "python_checks": [c.model_dump() for c in merged]})

    # -- records --------------------------------------------------------------------------------

    def record_checker(self) -> RecordChecker:
        """The contract compiled for per-record checks (built once, then reused)."""
        if self._checker is None:
            self._checker = RecordChecker(self)
        return self._checker

    def python_check_functions(self) -> list[tuple[str, PythonCheck]]:
        """The Python checks imported as ``(spec, function)``; import errors are ContractErrors."""
        return self.record_checker().python_functions()

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
        return self.record_checker().check(record, include_warnings)

    def check_records(self, records: Iterable[Mapping[str, Any]], *,
                      include_warnings: bool = False) -> list[list[Violation]]:
        """:meth:`check_record` for each record, in order."""
        checker = self.record_checker()
        return [checker.check(r, include_warnings) for r in records]

    # -- views of the rules (what mlstrata.data.validate evaluates in DuckDB) -------------------

    def column_ref(self, column: str, source_type: str) -> ColumnRef:
        """How SQL reads ``column`` when the data holds it as ``source_type``."""
        raw = quote_sql_identifier(column)
        target = self.columns[column].type
        if source_type == target or (source_type, target) == ("integer", "float"):
            return ColumnRef(raw, raw, source_type)
        return ColumnRef(raw, f"TRY_CAST({raw} AS {SQL_TYPE[target]})", source_type)

    def rules(self) -> list[Rule]:
        """Every rule of the contract in report order: rows, columns, SQL checks, Python checks."""
        return [self.rows_rule(), *self.column_rules(), *self.sql_rules(), *self.python_rules()]

    def rows_rule(self) -> Rule:
        """The row-count rule (always present; open bounds always pass)."""
        return Rule(name="rows", kind="rows", column=None, description=self.rows.describe())

    def column_rules(self) -> list[ColumnRule]:
        """Every column rule, column by column."""
        return [rule for name, spec in self.columns.items() for rule in spec.rules(name)]

    def sql_rules(self) -> list[Rule]:
        """One rule per custom SQL check, in contract order."""
        return [Rule(name=f"check:{c.name}", kind="sql", column=None, description=c.sql,
                     severity=c.severity) for c in self.checks]

    def python_rules(self) -> list[Rule]:
        """One rule per Python check, in contract order."""
        return [Rule(name=f"python:{c.function}", kind="python", column=None,
                     description=f"{c.function}(row) is True", severity=c.severity)
                for c in self.python_checks]


_YAML_HEADER = """\
# mlstrata data contract. Edit freely; 'mlstrata validate' checks data against it.
# columns.<name>: type (text|integer|float|boolean|date|timestamp), nullable, min/max,
#   allowed (categories), pattern (regex on the whole value; write [0-9], not \\d), unique,
#   severity: {rule: warn} names the rules that only warn (of type, not_null, min, max, allowed,
#   pattern, unique; rules not named are errors): a warning is reported and scored, an error
#   refused.
# rows: min/max row count.
# checks: [{name, sql, severity}] SQL expressions TRUE for valid rows, in the SQL DuckDB and
#   SQLite share. python_checks: ['module:function'] or {function, severity}: functions taking a
#   row dict and returning True when valid.
"""


def _spec_yaml(spec: ColumnSpec) -> dict[str, Any]:
    """Only the settings that say something; ``strict`` is said by ``severity``."""
    body = spec.model_dump(exclude_defaults=True, exclude={"strict", "severity"})
    body = {"type": spec.type, "nullable": spec.nullable, **body}
    warned = {kind: level for kind, level in spec.severity.items() if level == "warn"}
    if warned:
        body["severity"] = warned
    return body
