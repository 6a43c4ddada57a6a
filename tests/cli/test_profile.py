"""The ``mlstrata profile`` command, run in-process against a real workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from mlstrata.workspace import SEALED_KIND, Workspace

from .._factories import make_dataset

DATA = ("SELECT range AS amount, (range % 3)::VARCHAR AS region, range % 2 AS target "
        "FROM range(60)")


def test_profile_writes_json_and_html_and_prints_a_summary(cli: Any, workspace: Workspace) -> None:
    make_dataset(workspace, DATA, name="loans", target="target")
    result = cli("profile", "loans", "-w", workspace.root)
    assert result.code == 0, result.err
    html = workspace.reports_dir / "loans-v1-profile.html"
    report = json.loads((workspace.reports_dir / "loans-v1-profile.json").read_text())
    assert report["rows"] == 60 and report["target"]["task"] == "binary"
    assert "<svg" in html.read_text()
    assert "loans@1: 60 rows × 3 columns" in result.out
    assert "loans-v1-profile.html" in result.out.replace("\n", "")


def test_profile_json_output_is_parseable(cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    make_dataset(workspace, DATA, name="loans", target="target")
    out = tmp_path / "elsewhere"
    result = cli("profile", "loans@1", "--json", "--out", out, "-w", workspace.root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [c["name"] for c in data["columns"]] == ["amount", "region", "target"]
    assert sorted(p.name for p in out.iterdir()) == ["loans-v1-profile.html",
                                                     "loans-v1-profile.json"]
    assert not workspace.reports_dir.exists()


def test_unknown_ref_is_one_line_and_writes_nothing(cli: Any, workspace: Workspace) -> None:
    make_dataset(workspace, DATA, name="loans")
    result = cli("profile", "laons", "-w", workspace.root)
    assert result.code == 2
    assert "no dataset/testset named 'laons' (did you mean loans?)" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not workspace.reports_dir.exists()


def test_sealed_test_set_is_refused(cli: Any, workspace: Workspace, tmp_path: Path) -> None:
    staged = tmp_path / "sealed.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO '{staged}' (FORMAT parquet)")
    workspace.put_file(staged, kind=SEALED_KIND, name="loans-test")
    result = cli("profile", "loans-test", "-w", workspace.root)
    assert result.code == 2
    assert "sealed test set" in result.err
    assert not workspace.reports_dir.exists()


def test_help_describes_the_command(cli: Any) -> None:
    result = cli("profile", "--help")
    assert result.code == 0
    assert "--json" in result.out and "--out" in result.out
