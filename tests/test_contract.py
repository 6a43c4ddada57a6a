"""The contract model and its record-level evaluator (pure Python, no DuckDB)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

import mlstrata.contract
from mlstrata.contract import Contract, load_python_check
from mlstrata.errors import ContractError

SPEC: dict[str, Any] = {
    "dataset": "credit",
    "rows": {"min": 1, "max": 1000},
    "columns": {
        "id": {"type": "integer", "nullable": False, "unique": True},
        "age": {"type": "integer", "nullable": False, "min": 18, "max": 120},
        "income": {"type": "float", "min": 0},
        "zip": {"type": "text", "pattern": "^[0-9]{5}$"},
        "purpose": {"type": "text", "allowed": ["car", "home", "study"]},
        "channel": {"type": "text", "allowed": ["web"], "strict": False},
        "applied": {"type": "date", "min": "2020-01-01"},
        "seen": {"type": "timestamp"},
        "vip": {"type": "boolean"},
    },
    "checks": [{"name": "rich_adults", "sql": "income < 10000 OR age >= 25"}],
}
GOOD: dict[str, Any] = {"id": 1, "age": 30, "income": 1200.5, "zip": "28001", "purpose": "car",
                        "channel": "web", "applied": "2021-03-04", "seen": "2021-03-04T10:00:00",
                        "vip": False}


@pytest.fixture
def contract() -> Contract:
    return Contract.model_validate(SPEC)


def rules_of(contract: Contract, **changes: Any) -> list[tuple[str | None, str]]:
    violations = contract.check_record({**GOOD, **changes})
    return [(v.field, v.rule) for v in violations]


def test_a_good_record_has_no_violations(contract: Contract) -> None:
    assert contract.check_record(GOOD) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"age": 17}, [("age", "min")]),
        ({"age": 121}, [("age", "max")]),
        ({"age": None}, [("age", "not_null")]),
        ({"age": "30"}, [("age", "type")]),
        ({"age": True}, [("age", "type")]),
        ({"age": 30.5}, [("age", "type")]),
        ({"income": -1}, [("income", "min")]),
        ({"income": float("nan")}, [("income", "type")]),
        ({"zip": "2800"}, [("zip", "pattern")]),
        ({"zip": 28001}, [("zip", "type")]),
        ({"purpose": "boat"}, [("purpose", "allowed")]),
        ({"applied": "2019-12-31"}, [("applied", "min")]),
        ({"applied": "04/03/2021"}, [("applied", "type")]),
        ({"applied": datetime(2021, 1, 1, 12)}, [("applied", "type")]),
        ({"seen": "yesterday"}, [("seen", "type")]),
        ({"vip": 1}, [("vip", "type")]),
        ({"income": 20000.0, "age": 20}, [(None, "check:rich_adults")]),
    ],
)
def test_each_rule_fails_on_its_bad_value(
    contract: Contract, changes: dict[str, Any], expected: list[tuple[str | None, str]]
) -> None:
    assert rules_of(contract, **changes) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"income": 5},  # an int is a fine float
        {"age": 30.0},  # an integral float is a fine integer (JSON encoders write 30.0)
        {"income": None, "zip": None, "purpose": None},  # nullable columns
        {"applied": date(2020, 1, 1)},  # the bound itself
        {"seen": "2021-03-04T10:00:00+02:00"},  # aware timestamps are normalised to UTC
        {"seen": datetime(2021, 3, 4)},
        {"channel": "phone"},  # not strict: a warning, not an error
        {"extra": "ignored"},
    ],
)
def test_acceptable_values_pass(contract: Contract, changes: dict[str, Any]) -> None:
    assert rules_of(contract, **changes) == []


def test_messages_name_the_field_and_the_fix(contract: Contract) -> None:
    (low,) = contract.check_record({**GOOD, "age": 15})
    assert low.message == "field 'age' is 15, below the minimum 18; send a value >= 18"
    assert low.value == 15
    (typo,) = contract.check_record({**GOOD, "purpose": "cars"})
    assert "did you mean 'car'?" in typo.message and "'home'" in typo.message
    (bad_date,) = contract.check_record({**GOOD, "applied": "04/03/2021"})
    assert "ISO date like 2024-01-31" in bad_date.message
    assert bad_date.to_dict()["field"] == "applied"


def test_missing_fields_are_violations(contract: Contract) -> None:
    record = {k: v for k, v in GOOD.items() if k not in ("age", "zip")}
    found = {v.field: v.message for v in contract.check_record(record)}
    assert found == {"age": "field 'age' is missing; add it",
                     "zip": "field 'zip' is missing; add it (null is allowed)"}


def test_unknown_category_of_a_non_strict_column_is_only_a_warning(contract: Contract) -> None:
    assert contract.check_record({**GOOD, "channel": "phone"}) == []
    (warning,) = contract.check_record({**GOOD, "channel": "phone"}, include_warnings=True)
    assert (warning.rule, warning.severity) == ("allowed", "warn")
    assert contract.columns["channel"].severity == {"allowed": "warn"}


def test_check_records_keeps_order(contract: Contract) -> None:
    results = contract.check_records([GOOD, {**GOOD, "age": 10}, GOOD])
    assert [len(r) for r in results] == [0, 1, 0]


def test_sql_checks_use_typed_values_and_null_passes() -> None:
    contract = Contract.model_validate({
        "columns": {"applied": {"type": "date"}, "code": {"type": "text"}},
        "checks": [{"name": "recent", "sql": "applied >= '2021-01-01'"},
                   {"name": "prefix", "sql": "code LIKE 'AB%'"}],
    })
    assert contract.check_record({"applied": "2021-06-01", "code": "AB1"}) == []
    assert contract.check_record({"applied": None, "code": None}) == []
    late = contract.check_record({"applied": date(2020, 6, 1), "code": "ab1"})
    assert [v.rule for v in late] == ["check:recent", "check:prefix"]  # LIKE is case-sensitive


def test_python_checks_get_the_typed_record(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "record_checks_a.py").write_text(
        "def recent(row):\n    return row['applied'].year >= 2021\n"
        "def broken(row):\n    raise KeyError('nope')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    contract = Contract.model_validate({
        "columns": {"applied": {"type": "date"}},
        "python_checks": ["record_checks_a:recent", "record_checks_a:broken"],
    })
    found = contract.check_record({"applied": "2020-05-01"})
    assert [v.rule for v in found] == ["python:record_checks_a:recent",
                                       "python:record_checks_a:broken"]
    assert "raised KeyError" in found[1].message


def test_python_check_import_errors_name_module_function_and_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "record_checks_b.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ContractError, match="cannot import module 'no_such_checks'.*put "
                                            "no_such_checks.py in the project directory"):
        load_python_check("no_such_checks:ok")
    with pytest.raises(ContractError, match="module 'record_checks_b' has no function 'ok'"):
        load_python_check("record_checks_b:ok")
    with pytest.raises(ContractError, match="module 'record_checks_b' has no function 'VALUE'"):
        load_python_check("record_checks_b:VALUE")


def test_yaml_round_trip(contract: Contract, tmp_path: Path) -> None:
    path = tmp_path / "credit.yaml"
    path.write_text(contract.to_yaml())
    loaded = Contract.load(path)
    assert loaded == contract
    assert loaded.columns["applied"].min == date(2020, 1, 1)
    assert path.read_text().startswith("# mlstrata data contract")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("columns:\n  age: {type: integer\n", r"line \d+, column \d+"),
        ("columns:\n  age:\n    type: integer\n    min: old\n",
         "line 4: key 'columns.age.min'.*'old' is not a valid integer value"),
        ("columns:\n  zip:\n    type: text\n    min: 3\n",
         "line 4: key 'columns.zip.min'.*min/max apply to integer"),
        ("columns:\n  age:\n    type: integer\n    minimum: 3\n",
         "line 4: key 'columns.age.minimum' is not allowed"),
        ("columns:\n  age:\n    type: number\n", "line 3: key 'columns.age.type'"),
        ("columns:\n  age: {type: integer, min: 5, max: 1}\n", "min 5 is greater than max 1"),
        ("columns:\n  zip: {type: text, pattern: '[0-9'}\n", "invalid regular expression"),
        ("columns:\n  age: {type: integer}\nchecks:\n  - {name: a, sql: agee > 1}\n",
         r"line 3: key 'checks'.*uses 'agee'.*\(did you mean age\?\)"),
        ("columns:\n  age: {type: integer}\nchecks:\n  - {name: a, sql: 'age >'}\n",
         "not valid SQL for both DuckDB and SQLite"),
        ("columns:\n  z: {type: text}\nchecks:\n  - {name: a, sql: \"regexp_matches(z, 'x')\"}\n",
         "no such function: regexp_matches"),
        ("columns:\n  age: {type: integer}\nchecks:\n  - {name: a, sql: age > 1}\n"
         "  - {name: a, sql: age > 2}\n", "check names must be unique; rename a"),
        ("python_checks: [nocolon]\n", "must look like 'module:function'"),
        ("columns:\n  age:\n    type: integer\n    severity: {maximum: warn}\n",
         r"line 2: key 'columns.age'.*severity names unknown rule 'maximum' \(did you mean max"
         r".*\); the rules are type, not_null, min, max, allowed, pattern, unique"),
        ("columns:\n  age: {type: integer, severity: {max: warning}}\n",
         r"severity of max is 'warning' \(did you mean warn\?\); use error or warn"),
        ("columns:\n  age: {type: integer, severity: warn}\n",
         "severity maps rule kinds to error or warn"),
        ("columns:\n  c: {type: text, allowed: [a], strict: true, severity: {allowed: warn}}\n",
         "strict: true contradicts severity allowed: warn; keep only the severity"),
        ("columns:\n  age: {type: integer}\nchecks:\n  - {name: a, sql: age > 1, severity: "
         "soft}\n", r"key 'checks.0.severity'.*use error or warn"),
        ("python_checks: [{function: 'm:f', severity: maybe}]\n", "use error or warn"),
        ("rows: {min: -1}\n", "key 'rows.min'"),
    ],
)
def test_a_bad_contract_is_one_line_naming_file_line_and_key(
        tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(text)
    with pytest.raises(ContractError, match=expected) as caught:
        Contract.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_missing_contract_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="file not found"):
        Contract.load(tmp_path / "nope.yaml")


def test_require_columns_suggests_close_names(contract: Contract) -> None:
    columns = [c for c in GOOD if c != "age"] + ["agee"]
    with pytest.raises(ContractError, match=r"batch.csv: contract column\(s\) 'age' \(did you "
                                            r"mean agee\?\) not in the data"):
        contract.require_columns(columns, "batch.csv")


def test_without_columns_drops_the_column_and_its_checks(contract: Contract) -> None:
    features = contract.without_columns(["income"])
    assert "income" not in features.columns and features.checks == []
    assert features.check_record({k: v for k, v in GOOD.items() if k != "income"}) == []


def test_rules_list_every_rule_once(contract: Contract) -> None:
    names = [rule.name for rule in contract.rules()]
    assert names[0] == "rows" and "id.unique" in names and "check:rich_adults" in names
    assert len(names) == len(set(names))


def test_contract_module_imports_without_duckdb_or_pandas() -> None:
    code = ("import sys, mlstrata.contract; "
            "print(sorted({'duckdb', 'pandas', 'numpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_of_the_package() -> None:
    assert set(mlstrata.contract.__all__) == {
        "BAD", "CONTRACT_VERSION", "RULE_KINDS", "ColumnRef", "ColumnRule", "ColumnSpec",
        "Contract", "LogicalType", "PythonCheck", "PythonCheckSpec", "Rule", "RowBounds",
        "Severity", "SqlCheck", "Violation", "coerce", "did_you_mean", "load_python_check",
        "quote_sql_identifier", "sql_literal"}
    for name in mlstrata.contract.__all__:
        assert getattr(mlstrata.contract, name) is not None


def test_a_used_contract_still_equals_its_twin(contract: Contract) -> None:
    assert contract.check_record(GOOD) == []  # compiles and caches the record checker
    assert contract == Contract.model_validate(SPEC)
    assert contract != contract.without_columns(["income"])


def test_the_record_checker_is_built_once_and_shared(contract: Contract) -> None:
    checker = contract.record_checker()
    assert contract.record_checker() is checker
    assert [v.rule for v in checker.check({**GOOD, "age": 5})] == ["min"]


SEVERITY_YAML = """\
version: 1
dataset: credit
columns:
  lines: {type: integer, nullable: false, min: 0, max: 13, severity: {max: warn, nullable: warn}}
  region: {type: text, allowed: [north, south], severity: {allowed: warn}}
  old_style: {type: text, allowed: [a, b], strict: false}
  code: {type: text, pattern: '^[0-9]{5}$'}
checks:
  - {name: usual, sql: lines < 10, severity: warn}
  - {name: hard, sql: lines >= 0}
python_checks: ['math:isfinite', {function: 'math:isnan', severity: warn}]
"""


def test_severity_yaml_round_trip_and_rules(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(SEVERITY_YAML)
    contract = Contract.load(path)
    lines = contract.columns["lines"]
    assert lines.severity == {"max": "warn", "not_null": "warn"}
    assert (lines.severity_of("max"), lines.severity_of("min")) == ("warn", "error")
    assert not contract.columns["region"].strict and not contract.columns["old_style"].strict
    assert contract.columns["old_style"].severity == {"allowed": "warn"}
    severities = {rule.name: rule.severity for rule in contract.rules()}
    assert severities == {
        "rows": "error", "lines.type": "error", "lines.not_null": "warn", "lines.min": "error",
        "lines.max": "warn", "region.type": "error", "region.allowed": "warn",
        "old_style.type": "error", "old_style.allowed": "warn", "code.type": "error",
        "code.pattern": "error", "check:usual": "warn", "check:hard": "error",
        "python:math:isfinite": "error", "python:math:isnan": "warn"}
    written = contract.to_yaml()
    assert "severity:\n      max: warn\n      not_null: warn" in written
    assert "strict" not in written
    path.write_text(written)
    assert Contract.load(path) == contract


def test_warn_violations_are_reported_only_when_asked() -> None:
    contract = Contract.model_validate({
        "columns": {"lines": {"type": "integer", "max": 13, "severity": {"max": "warn"}},
                    "zip": {"type": "text", "pattern": "^[0-9]{5}$"}},
        "checks": [{"name": "few", "sql": "lines < 10", "severity": "warn"}]})
    record = {"lines": 14, "zip": "2800"}
    assert [v.rule for v in contract.check_record(record)] == ["pattern"]
    found = contract.check_record(record, include_warnings=True)
    assert [(v.rule, v.severity) for v in found] == [
        ("max", "warn"), ("pattern", "error"), ("check:few", "warn")]
