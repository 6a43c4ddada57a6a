"""``mlstrata package``: output, JSON, and one-line errors that leave nothing behind."""

from __future__ import annotations

import json

from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

from mlstrata.workspace import Workspace

from ._pipelines import stored_model
from .test_onnx_export import _NoConverter


def test_package_prints_path_files_parity_and_size(cli, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    stored_model(workspace, LogisticRegression(max_iter=500), rows=300)
    result = cli("package", "credit-model", "--no-zip", cwd=workspace.root)
    assert result.code == 0, result.err
    assert "packages/credit-model-1" in result.out and "model.onnx" in result.out
    assert "parity:" in result.out and "size:" in result.out
    assert not (workspace.root / "packages" / "credit-model-1.zip").exists()


def test_package_json(cli, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    stored_model(workspace, LogisticRegression(max_iter=500), rows=300)
    out = workspace.root / "dist" / "pkg"
    result = cli("package", "credit-model", "--out", out, "--json", cwd=workspace.root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["path"] == str(out) and data["zip"] == str(out) + ".zip"
    assert data["parity"]["passed"] and "manifest.json" not in data["files"]


def test_unknown_model_is_one_line_exit_2(cli, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    stored_model(workspace, LogisticRegression(max_iter=500), rows=300)
    result = cli("package", "credit-modle", cwd=workspace.root)
    assert result.code == 2
    assert "no model named 'credit-modle'" in result.err and "credit-model" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_unconvertible_model_is_one_line_exit_2_nothing_written(cli, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    stored_model(workspace, _NoConverter(), rows=200)
    result = cli("package", "credit-model", cwd=workspace.root)
    assert result.code == 2
    assert "cannot convert _NoConverter to ONNX" in result.err
    assert not (workspace.root / "packages").exists()


def test_pmml_is_written_with_its_measured_parity(cli, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    stored_model(workspace, LogisticRegression(max_iter=500), rows=300)
    result = cli("package", "credit-model", "--pmml", "--no-zip", "--json", cwd=workspace.root)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert "model.pmml" in data["files"]
    assert data["pmml_parity"]["max_abs_diff"] <= 1e-6 and data["pmml_parity"]["passed"]
    assert data["pmml_parity"]["rows"] == data["parity"]["rows"]


def test_pmml_that_cannot_be_written_is_one_clear_line(cli, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    """QDA converts to ONNX but has no PMML converter: say so, write nothing."""
    stored_model(workspace, QuadraticDiscriminantAnalysis(reg_param=0.1), rows=300)
    result = cli("package", "credit-model", "--pmml", cwd=workspace.root)
    assert result.code == 2
    assert "cannot be expressed in PMML" in result.err and "without --pmml" in result.err
    assert "QuadraticDiscriminantAnalysis" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (workspace.root / "packages").exists()
