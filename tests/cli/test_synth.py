"""The ``mlstrata synth credit`` command, run in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from mlstrata.data.synth import CREDIT_COLUMNS


def test_synth_credit_writes_the_file_and_says_where(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "data" / "credit.parquet"
    result = cli("synth", "credit", "--rows", 300, "--seed", 7, "--out", out)
    assert result.code == 0, result.err
    assert "wrote 300 rows to" in result.out and str(out) in result.out.replace("\n", "")
    relation = duckdb.sql(f"SELECT * FROM '{out}'")
    assert tuple(relation.columns) == CREDIT_COLUMNS
    assert relation.aggregate("count(*)").fetchall() == [(300,)]


def test_synth_credit_is_reproducible_from_the_cli(cli: Any, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        assert cli("synth", "credit", "-n", 50, "--seed", 3, "-o", tmp_path / name).code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_help_describes_the_command_and_its_flags(cli: Any) -> None:
    group = cli("synth", "--help")
    assert group.code == 0 and "credit" in group.out
    command = cli("synth", "credit", "--help")
    assert command.code == 0
    for flag in ("--rows", "--seed", "--out", ".parquet"):
        assert flag in command.out


def test_bad_extension_is_one_line_error_and_writes_nothing(cli: Any, tmp_path: Path) -> None:
    result = cli("synth", "credit", "--rows", 10, "--out", tmp_path / "credit.xlsx")
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert "credit.xlsx" in lines[0] and "'.xlsx'" in lines[0] and ".csv" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_zero_rows_is_a_one_line_error(cli: Any, tmp_path: Path) -> None:
    result = cli("synth", "credit", "--rows", 0, "--out", tmp_path / "credit.csv")
    assert result.code != 0
    assert result.err.strip() == (
        f"error: cannot write {tmp_path / 'credit.csv'}: rows must be at least 1, got 0"
    )
    assert list(tmp_path.iterdir()) == []
