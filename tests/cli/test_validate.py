"""The ``mlstrata contract infer`` and ``mlstrata validate`` commands, run in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlstrata.workspace import Workspace

from .._factories import make_dataset

DATA = """
SELECT range + 1 AS customer_id, 18 + range % 60 AS age,
       lpad(((range * 7919) % 100000)::VARCHAR, 5, '0') AS postal_code,
       ['car', 'home', 'study'][1 + range % 3] AS purpose
FROM range(90)
"""
HEADER = "customer_id,age,postal_code,purpose\n"


def infer(cli: Any, ws: Workspace) -> Path:
    make_dataset(ws, DATA, name="credit")
    result = cli("contract", "infer", "credit", "-w", ws.root)
    assert result.code == 0, result.err
    path = ws.root / "contracts" / "credit.yaml"
    assert str(path) in result.out.replace("\n", "")
    return path


def test_contract_infer_writes_an_editable_yaml(cli: Any, workspace: Workspace,
                                                tmp_path: Path) -> None:
    path = infer(cli, workspace)
    text = path.read_text()
    assert "pattern: ^[0-9]{5}$" in text and "- study" in text
    result = cli("contract", "infer", "credit", "--json", "--out", tmp_path / "c.yaml",
                 "-w", workspace.root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["path"] == str(tmp_path / "c.yaml")
    assert data["contract"]["columns"]["customer_id"]["unique"] is True


def test_contract_infer_refuses_to_overwrite_edits(cli: Any, workspace: Workspace) -> None:
    path = infer(cli, workspace)
    result = cli("contract", "infer", "credit", "-w", workspace.root)
    assert result.code == 2
    assert f"{path}: a contract already exists" in result.err.replace("\n", "")
    assert cli("contract", "infer", "credit", "--force", "-w", workspace.root).code == 0


def test_validate_a_good_dataset_exits_0_and_saves_reports(cli: Any,
                                                           workspace: Workspace) -> None:
    infer(cli, workspace)
    result = cli("validate", "credit", "-w", workspace.root)
    assert result.code == 0, result.err
    assert "PASSED credit@1: 90 rows" in result.out
    saved = json.loads((workspace.reports_dir / "credit-v1-validate.json").read_text())
    assert saved["passed"] and saved["rows"] == 90
    assert (workspace.reports_dir / "credit-v1-validate.html").is_file()
    assert "credit-v1-validate.html" in result.out.replace("\n", "")


def test_validate_prints_failing_rules_and_verbose_prints_every_rule(
        cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    contract = infer(cli, workspace)
    batch = tmp_path / "batch.csv"
    batch.write_text(HEADER + "1,30,28001,car\n2,31,2800,boat\n")
    brief = cli("validate", batch, "--contract", contract, "-w", workspace.root)
    assert brief.code == 1, brief.err
    assert "purpose.allowed" in brief.out and "customer_id.type" not in brief.out
    assert "rules passed" in brief.out and "--verbose lists them" in brief.out.replace("\n", " ")
    verbose = cli("validate", batch, "--contract", contract, "--verbose", "-w", workspace.root)
    assert verbose.code == 1, verbose.err
    assert "purpose.allowed" in verbose.out and "customer_id.type" in verbose.out
    saved = json.loads((workspace.reports_dir / "batch-validate.json").read_text())
    assert "customer_id.type" in [rule["name"] for rule in saved["rules"]]
    assert "customer_id.type" in cli("validate", batch, "--contract", contract, "--json",
                                     "-w", workspace.root).out


def test_a_batch_with_only_warnings_exits_0_listing_them(cli: Any, workspace: Workspace,
                                                         tmp_path: Path) -> None:
    """Inferred ranges and category sets warn: an age past the observed range and an unseen
    purpose are listed, and the batch still passes (exit 0)."""
    contract = infer(cli, workspace)
    assert "severity:" in contract.read_text() and "max: warn" in contract.read_text()
    batch = tmp_path / "batch.csv"
    batch.write_text(HEADER + "1,30,28001,car\n2,99,28002,boat\n")
    result = cli("validate", batch, "--contract", contract, "-w", workspace.root)
    assert result.code == 0, result.out
    out = result.out.replace("\n", " ")
    assert "PASSED" in out and "age.max" in out and "purpose.allowed" in out
    assert "2 warning(s), not failing validation" in out
    saved = json.loads((workspace.reports_dir / "batch-validate.json").read_text())
    assert (saved["passed"], saved["rules_failed"], saved["warnings"]) == (True, 0, 2)


def test_validate_a_bad_batch_exits_1_naming_rule_count_and_rows(
        cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    infer(cli, workspace)
    batch = tmp_path / "batch.csv"
    batch.write_text(HEADER + "1,30,28001,car\n2,5,2800,boat\n3,6,28003,home\n")
    result = cli("validate", batch, "-w", workspace.root)
    assert result.code == 2 and "needs a contract; pass --contract" in result.err
    result = cli("validate", batch, "--contract", workspace.root / "contracts" / "credit.yaml",
                 "-w", workspace.root)
    assert result.code == 1, result.err
    out = result.out
    assert "FAILED" in out and "age.min" in out and "row 2: age='5'" in out
    assert "row 2: purpose='boat'" in out and "postal_code.pattern" in out
    saved = json.loads((workspace.reports_dir / "batch-validate.json").read_text())
    age_min = next(r for r in saved["rules"] if r["name"] == "age.min")
    assert age_min["failing"] == 2 and [r["row"] for r in age_min["sample"]] == [2, 3]


def test_validate_json_is_parseable(cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    infer(cli, workspace)
    result = cli("validate", "credit", "--json", "--out", tmp_path, "-w", workspace.root)
    assert result.code == 0, result.err
    assert json.loads(result.out)["rules_failed"] == 0
    assert "report:" in result.err and (tmp_path / "credit-v1-validate.html").is_file()


def test_a_contract_that_does_not_parse_is_one_line_with_file_and_line(
        cli: Any, workspace: Workspace) -> None:
    path = infer(cli, workspace)
    path.write_text("columns:\n  age: {type: integer\n")
    result = cli("validate", "credit", "-w", workspace.root)
    assert result.code == 2
    assert f"{path}: YAML syntax error at line 3" in result.err.replace("\n", "")
    assert len(result.err.strip().splitlines()) == 1
    assert not workspace.reports_dir.exists()


def test_an_unknown_contract_column_is_a_user_error(cli: Any, workspace: Workspace) -> None:
    path = infer(cli, workspace)
    path.write_text(path.read_text().replace("  purpose:", "  purpos:"))
    result = cli("validate", "credit", "-w", workspace.root)
    assert result.code == 2
    assert "'purpos' (did you mean purpose?) not in the data" in result.err.replace("\n", "")
    assert not workspace.reports_dir.exists()


def test_validate_without_a_contract_says_to_infer_one(cli: Any, workspace: Workspace) -> None:
    make_dataset(workspace, DATA, name="credit")
    result = cli("validate", "credit", "-w", workspace.root)
    assert result.code == 2
    assert "run 'mlstrata contract infer credit' first" in result.err.replace("\n", "")


def test_help_texts(cli: Any) -> None:
    assert "--contract" in cli("validate", "--help").out
    assert "--verbose" in cli("validate", "--help").out
    assert "infer" in cli("contract", "--help").out


def test_a_batch_missing_a_contract_column_is_one_line_naming_file_column_and_match(
        cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    contract = infer(cli, workspace)
    batch = tmp_path / "batch.csv"
    batch.write_text("customer_id,age,postcode,purpose\n1,30,28001,car\n")
    result = cli("validate", batch, "--contract", contract, "-w", workspace.root)
    assert result.code == 2
    err = result.err.replace("\n", "")
    assert f"{batch}: contract column(s) 'postal_code' (did you mean postcode?) not in the data" \
        in err
    assert "schema" not in err and not workspace.reports_dir.exists()
