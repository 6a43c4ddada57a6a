"""Validating datasets and batch files against a contract; both evaluators agree."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from mlstrata.contract import Contract
from mlstrata.data.contract_infer import infer_contract_for
from mlstrata.data.validate import ValidationReport, validate, validate_target
from mlstrata.errors import ContractError, SourceError
from mlstrata.workspace import Workspace
from tests._factories import make_dataset

CREDIT_SQL = """
SELECT range + 1 AS customer_id,
       18 + range % 60 AS age,
       1000.0 + range * 12.5 AS income,
       lpad(((range * 7919) % 100000)::VARCHAR, 5, '0') AS postal_code,
       ['car', 'home', 'study'][1 + range % 3] AS purpose
FROM range(100)
"""
BATCH_HEADER = "customer_id,age,income,postal_code,purpose\n"


def weekday_application(row: dict[str, Any]) -> bool:
    """A Python check used by the agreement property: it needs real ``date`` objects."""
    return row["applied"] is None or row["applied"].weekday() < 5


def write_contract(ws: Workspace, body: dict[str, Any], name: str = "credit") -> Path:
    path = ws.root / "contracts" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(Contract.model_validate(body).to_yaml())
    return path


def result(report: ValidationReport, name: str) -> Any:
    (found,) = [r for r in report.results if r.rule.name == name]
    return found


@pytest.fixture
def credit(workspace: Workspace) -> Path:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    return infer_contract_for(workspace, "credit")[1]


def test_a_dataset_passes_its_inferred_contract(workspace: Workspace, credit: Path) -> None:
    report = validate_target(workspace, "credit")
    assert report.passed and report.rows == 100
    assert report.contract == "contracts/credit.yaml" and report.target == "credit@1"
    assert all(r.passed for r in report.results)
    data = json.loads(report.to_json())
    assert data["passed"] and data["rules_failed"] == 0
    assert "PASSED" in report.to_html()


def test_a_bad_batch_file_fails_with_counts_and_sample_rows(
        workspace: Workspace, credit: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text(BATCH_HEADER + "1,30,1500.5,02800,car\n2,10,1500,2800,boat\n"
                     "3,abc,-5,28001,home\n4,11,,28002,study\n")
    report = validate_target(workspace, str(batch), credit)
    assert not report.passed and report.rows == 4
    age_min = result(report, "age.min")
    assert age_min.failing == 2
    assert [(row["row"], row["age"]) for row in age_min.sample] == [(2, "10"), (4, "11")]
    age_type = result(report, "age.type")
    assert (age_type.failing, age_type.sample[0]["age"]) == (1, "abc")
    assert result(report, "postal_code.pattern").failing == 1  # '02800' keeps its leading zero
    assert result(report, "purpose.allowed").sample[0]["purpose"] == "boat"
    assert result(report, "income.min").failing == 1
    assert result(report, "income.not_null").failing == 1
    assert result(report, "customer_id.unique").passed
    console = Console(record=True, width=120)
    report.render_terminal(console)
    text = console.export_text()
    assert "FAILED" in text and "row 2: age='10'" in text
    data = json.loads(report.to_json())  # inferred ranges and categories only warn
    assert (data["rules_failed"], data["warnings"]) == (3, 3)
    assert {r["name"]: r["severity"] for r in data["rules"] if not r["passed"]} == {
        "age.min": "warn", "age.type": "error", "income.min": "warn",
        "income.not_null": "error", "postal_code.pattern": "error", "purpose.allowed": "warn"}
    html = report.to_html()
    assert "Failing rows: age.min" in html and "boat" in html


def rendered(report: ValidationReport, verbose: bool = False) -> str:
    console = Console(record=True, width=200)
    report.render_terminal(console, verbose=verbose)
    return console.export_text()


def test_the_terminal_lists_the_failing_rules_and_counts_the_passing_ones(
        workspace: Workspace, credit: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text(BATCH_HEADER + "1,30,1500.5,28001,car\n2,10,1500,28002,boat\n")
    report = validate_target(workspace, str(batch), credit)
    failing = {r.rule.name for r in report.failed}
    assert failing == {"age.min", "purpose.allowed"}
    passing = [r for r in report.results if r.passed]
    brief = rendered(report)
    assert all(f"│ {name} " in brief for name in failing)
    assert not [r.rule.name for r in passing if f"│ {r.rule.name} " in brief]
    kinds = Counter(r.rule.kind for r in passing)
    assert f"{len(passing)} of {len(report.results)} rules passed (" in brief
    assert f" {kinds['type']} type, {kinds['not_null']} not_null, " in brief
    assert "--verbose lists them" in brief
    assert "row 2: age='10'" in brief
    verbose = rendered(report, verbose=True)
    assert all(f"│ {r.rule.name} " in verbose for r in report.results)
    assert "rules passed" not in verbose
    assert len(json.loads(report.to_json())["rules"]) == len(report.results)


def test_a_passing_dataset_is_two_lines_in_the_terminal(workspace: Workspace,
                                                        credit: Path) -> None:
    report = validate_target(workspace, "credit")
    lines = rendered(report).strip().splitlines()
    assert lines[0].startswith("PASSED credit@1: 100 rows")
    assert lines[1].startswith(f"{len(report.results)} of {len(report.results)} rules passed")
    assert len(lines) == 2
    assert rendered(report, verbose=True).count("pass") >= len(report.results)


def test_markup_in_data_is_printed_verbatim(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT '[/bold] [red]x' AS code", name="codes")
    write_contract(workspace, {"columns": {"code": {"type": "text", "pattern": "^[a-z]$"}}},
                   "codes")
    console = Console(record=True, width=120)
    validate_target(workspace, "codes").render_terminal(console)
    assert "row 1: code='[/bold] [red]x'" in console.export_text()


def test_sql_checks_count_failures_over_a_dataset(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS id, range % 30 AS age FROM range(60)", name="people")
    write_contract(workspace, {
        "columns": {"id": {"type": "integer", "unique": True}, "age": {"type": "integer"}},
        "checks": [{"name": "adult", "sql": "age BETWEEN 18 AND 120"}]}, name="people")
    report = validate_target(workspace, "people")
    adult = result(report, "check:adult")
    assert adult.failing == 36 and [r["row"] for r in adult.sample] == [1, 2, 3, 4, 5]
    assert not report.passed


def test_duplicates_break_uniqueness(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range % 8 AS id FROM range(10)", name="ids")
    write_contract(workspace, {"columns": {"id": {"type": "integer", "unique": True}}}, "ids")
    unique = result(validate_target(workspace, "ids"), "id.unique")
    assert unique.failing == 2
    assert [r["id"] for r in unique.sample] == [0, 1, 0, 1]


def test_row_bounds_and_extra_columns(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS a, range AS b FROM range(5)", name="small")
    write_contract(workspace, {"rows": {"max": 3}, "columns": {"a": {"type": "integer"}}},
                   "small")
    report = validate_target(workspace, "small")
    rows = result(report, "rows")
    assert (rows.failing, rows.note) == (1, "5 rows") and not report.passed
    assert report.extra_columns == ["b"]


def test_non_strict_categories_only_warn(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT 'new' AS kind FROM range(3)", name="kinds")
    write_contract(workspace, {"columns": {"kind": {"type": "text", "allowed": ["old"],
                                                     "strict": False}}}, "kinds")
    report = validate_target(workspace, "kinds")
    assert report.passed and result(report, "kind.allowed").failing == 3
    assert json.loads(report.to_json())["warnings"] == 1


def test_rules_of_severity_warn_fail_without_failing_validation(workspace: Workspace) -> None:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    (workspace.root / "warn_checks_v.py").write_text(
        "def modest(row):\n    return row['income'] < 2000\n")
    write_contract(workspace, {
        "columns": {"age": {"type": "integer", "min": 18, "max": 50,
                            "severity": {"max": "warn"}},
                    "purpose": {"type": "text", "allowed": ["car", "home"],
                                "severity": {"allowed": "warn"}}},
        "checks": [{"name": "young", "sql": "age < 70", "severity": "warn"},
                   {"name": "adult", "sql": "age >= 18"}],
        "python_checks": [{"function": "warn_checks_v:modest", "severity": "warn"}]})
    report = validate_target(workspace, "credit")
    assert report.passed
    warned = {r.rule.name: r.failing for r in report.failed}
    assert warned == {"age.max": 34, "purpose.allowed": 33, "check:young": 8,
                      "python:warn_checks_v:modest": 20}
    assert not any(r.blocking for r in report.results)
    data = json.loads(report.to_json())
    assert (data["passed"], data["rules_failed"], data["warnings"]) == (True, 0, 4)
    text = rendered(report)
    assert text.startswith("PASSED") and "│ warn     │ warn" in text
    assert ("4 warning(s), not failing validation (severity warn): age.max, purpose.allowed, "
            "check:young, python:warn_checks_v:modest") in text
    assert "WARN" in report.to_html()


def test_python_checks_from_the_project_config(workspace: Workspace) -> None:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    (workspace.root / "project_checks_v.py").write_text(
        "def cheap(row):\n    return row['income'] < 2000\n"
        "def broken(row):\n    return row['missing']\n")
    config = workspace.root / "mlstrata.yaml"
    config.write_text(config.read_text().replace(
        "checks: []", "checks: ['project_checks_v:cheap', 'project_checks_v:broken']"))
    write_contract(workspace, {"columns": {"income": {"type": "float"}}})
    report = validate_target(Workspace(workspace.root), "credit")
    cheap = result(report, "python:project_checks_v:cheap")
    assert cheap.failing == 20 and cheap.sample[0]["row"] == 81
    broken = result(report, "python:project_checks_v:broken")
    assert broken.failing == 100 and broken.note.startswith("raised KeyError")


def test_a_python_check_that_cannot_be_imported(workspace: Workspace, credit: Path) -> None:
    text = credit.read_text().replace("python_checks: []", "python_checks: ['nowhere_v:check']")
    credit.write_text(text)
    with pytest.raises(ContractError, match="cannot import module 'nowhere_v'"):
        validate_target(workspace, "credit")


def test_an_unknown_contract_column_names_the_close_match(workspace: Workspace) -> None:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    write_contract(workspace, {"columns": {"agee": {"type": "integer"}}})
    with pytest.raises(ContractError, match=r"credit@1: contract column\(s\) 'agee' \(did you "
                                            r"mean age\?\) not in the data"):
        validate_target(workspace, "credit")


def test_a_check_duckdb_cannot_run_is_a_contract_error(workspace: Workspace) -> None:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    write_contract(workspace, {"columns": {"age": {"type": "integer"}},
                               "checks": [{"name": "odd", "sql": "likelihood(age > 1, 0.5)"}]})
    with pytest.raises(ContractError, match="check 'odd' .* does not run in DuckDB"):
        validate_target(workspace, "credit")


def test_missing_default_contract_says_what_to_run(workspace: Workspace) -> None:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    with pytest.raises(ContractError, match="run 'mlstrata contract infer credit' first"):
        validate_target(workspace, "credit")


def test_a_file_needs_a_contract_and_a_missing_file_is_named(
        workspace: Workspace, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text(BATCH_HEADER + "1,30,1.0,28001,car\n")
    with pytest.raises(ContractError, match="validating a file needs a contract; pass --contract"):
        validate_target(workspace, str(batch))
    with pytest.raises(SourceError, match="nope.csv: no such file"):
        validate_target(workspace, str(tmp_path / "nope.csv"))



def test_a_batch_file_missing_a_contract_column_gets_the_contracts_error(
        workspace: Workspace, credit: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text("customer_id,agee,income,postal_code\n1,30,1.5,28001\n")
    with pytest.raises(ContractError) as caught:
        validate_target(workspace, str(batch), credit)
    assert str(caught.value) == (
        f"{batch}: contract column(s) 'age' (did you mean agee?), 'purpose' not in the data; "
        "fix the contract's column names or pass the right data")
    assert not list((workspace.store / "tmp").glob("stage-*"))  # nothing left half-written


def test_a_batch_file_unreadable_either_way_keeps_the_loaders_error(
        workspace: Workspace, credit: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text(BATCH_HEADER + "1,30,1.5,28001,car\n2,31,1.5\n")
    with pytest.raises(SourceError, match="batch.csv"):
        validate_target(workspace, str(batch), credit)

# -- the two evaluators agree ------------------------------------------------------------------

AGREEMENT = Contract.model_validate({
    "columns": {
        "age": {"type": "integer", "nullable": False, "min": 18, "max": 120},
        "income": {"type": "float", "min": 0, "max": 100000},
        "zip": {"type": "text", "pattern": "^[0-9]{5}$"},
        "purpose": {"type": "text", "allowed": ["car", "home"]},
        "applied": {"type": "date", "min": "2020-01-01"},
        "vip": {"type": "boolean", "nullable": False},
    },
    "checks": [
        {"name": "young_rich", "sql": "age >= 30 OR income < 50000"},
        {"name": "vip_zip", "sql": "NOT vip OR zip LIKE '28%'"},
        {"name": "recent", "sql": "applied < '2025-01-01'"},
        {"name": "ratio", "sql": "CASE WHEN age > 0 THEN income * 1.0 / age ELSE 0 END < 3000"},
    ],
    "python_checks": ["tests.data.test_validate:weekday_application"],
})
ROW = st.fixed_dictionaries({
    "age": st.none() | st.integers(0, 200),
    "income": st.none() | st.floats(-1000, 200000, allow_nan=False),
    "zip": st.none() | st.sampled_from(["28001", "2800", "08001"])
    | st.text(alphabet="0123456789ab", max_size=6),
    "purpose": st.none() | st.sampled_from(["car", "home", "boat", "Car"]),
    "applied": st.none() | st.dates(date(2018, 1, 1), date(2027, 1, 1)),
    "vip": st.none() | st.booleans(),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=12))
def test_record_and_dataset_evaluators_agree(rows: list[dict[str, Any]]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (age BIGINT, income DOUBLE, zip VARCHAR, purpose VARCHAR, "
                "applied DATE, vip BOOLEAN)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
                    [[row[c] for c in AGREEMENT.columns] for row in rows])
    report = validate(con, con.table("t"), AGREEMENT, "t")
    by_record: dict[str, set[int]] = {}
    for number, violations in enumerate(AGREEMENT.check_records(rows), start=1):
        for v in violations:
            name = f"{v.field}.{v.rule}" if v.field else v.rule
            by_record.setdefault(name, set()).add(number)
    dataset_counts = Counter({r.rule.name: r.failing for r in report.results if r.failing})
    assert dataset_counts == Counter({name: len(rows) for name, rows in by_record.items()})
    for r in report.results:
        assert {row["row"] for row in r.sample} <= by_record.get(r.rule.name, set())
