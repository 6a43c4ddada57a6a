"""``mlstrata predict``: the command, its JSON report, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ..batch._inputs import KEY, raw_csv


@pytest.fixture
def project(credit_package: Path, tmp_path: Path) -> Path:
    """A copy of the package's project, so the command can resolve ``credit.model@1``."""
    copy = tmp_path / "project"
    shutil.copytree(credit_package.parent.parent, copy)
    return copy


def test_predict_by_model_name_writes_and_reports(cli: Any, project: Path) -> None:
    result = cli("predict", "credit.model@1", "--input", "data/credit.csv", "--output",
                 "out/scores.parquet", "--key", KEY, "--batch-rows", "400", "--threads", "1",
                 "--json", cwd=project)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"] == "credit.model" and report["model_version"] == 1
    assert report["rows_in"] == 1500
    assert report["rows_scored"] + report["rows_rejected"] == 1500
    assert report["rejects"] == "out/scores.rejects.csv"
    assert pq.read_table(project / "out" / "scores.parquet").num_rows == report["rows_scored"]


def test_predict_a_package_path_outside_a_project(cli: Any, credit_package: Path,
                                                  tmp_path: Path) -> None:
    result = cli("predict", credit_package, "-i", raw_csv(credit_package), "-o", "s.csv",
                 "--recipe", "skip", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "scored" in result.out and "rows/s" in result.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.rejects.csv"]


def test_on_invalid_fail_exits_naming_the_row(cli: Any, credit_package: Path,
                                              tmp_path: Path) -> None:
    result = cli("predict", credit_package, "-i", raw_csv(credit_package), "-o", "s.parquet",
                 "--on-invalid", "fail", cwd=tmp_path)
    assert result.code == 2
    assert result.err.startswith("error: invalid input: row ")
    assert len(result.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["-i", "missing.csv", "-o", "s.parquet"], "missing.csv does not exist"),
    (["-i", "in.csv", "-o", "s.txt"], "cannot tell the output format from '.txt'"),
    (["-i", "in.csv", "-o", "s.parquet", "--engine", "dask"], "'dask' is not one of local, spark"),
    (["-i", "in.csv", "-o", "s.parquet", "--on-invalid", "skip"], "is not one of reject, fail"),
])
def test_user_mistakes_are_one_line_and_exit_2(cli: Any, credit_package: Path, tmp_path: Path,
                                               args: list[str], message: str) -> None:
    (tmp_path / "in.csv").write_text(raw_csv(credit_package).read_text())
    result = cli("predict", credit_package, *args, cwd=tmp_path)
    assert result.code == 2
    assert message in " ".join(result.err.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_model_name_needs_a_workspace(cli: Any, tmp_path: Path) -> None:
    result = cli("predict", "credit.model@1", "-i", "x.csv", "-o", "s.parquet", cwd=tmp_path)
    assert result.code == 2
    assert "workspace" in result.err.lower()


def test_help_lists_the_options(cli: Any) -> None:
    result = cli("predict", "--help")
    assert result.code == 0
    for option in ("--input", "--output", "--key", "--on-invalid", "--rejects", "--engine",
                   "--master", "--threads", "--batch-rows", "--json"):
        assert option in result.out
