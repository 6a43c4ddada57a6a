"""``mlstrata package MODEL --wheel``: where the wheel goes, which package it wraps, errors."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

_WHEEL = "credit_model-1-py3-none-any.whl"


@pytest.fixture
def project(credit_package: Path, tmp_path: Path) -> Path:
    """A copy of the fixture project (the command may write into it)."""
    return shutil.copytree(credit_package.parent.parent, tmp_path / "project")


def test_wheel_of_a_model_ref_reuses_its_package_and_says_where(cli, project: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    manifest = (project / "packages" / "credit.model-1" / "manifest.json").read_bytes()
    result = cli("package", "credit.model", "--wheel", "--dist", tmp_path / "dist", cwd=project)
    assert result.code == 0, result.err
    assert f"wheel:    {tmp_path / 'dist' / _WHEEL}" in result.out
    assert "from credit_model import predict" in result.out
    assert (tmp_path / "dist" / _WHEEL).is_file()
    assert (project / "packages" / "credit.model-1" / "manifest.json").read_bytes() == manifest


def test_default_dist_is_the_current_directory_and_json_names_it(cli, project: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("package", "credit@1", "--wheel", "--json", cwd=project)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["wheel"] == str(project / "dist" / _WHEEL)
    assert data["package"] == str(project / "packages" / "credit.model-1")
    assert data["import"] == "credit_model" and data["requires"] == ["numpy>=1.26",
                                                                     "onnxruntime>=1.18"]


def test_a_package_path_needs_no_workspace(cli, credit_package: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("package", credit_package, "--wheel", "--dist", "out", cwd=tmp_path)
    assert result.code == 0, result.err
    with zipfile.ZipFile(tmp_path / "out" / _WHEEL) as archive:
        assert "credit_model/model/model.onnx" in archive.namelist()


def test_a_model_without_a_package_is_packaged_first(cli, project: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.rmtree(project / "packages")
    result = cli("package", "credit.model", "--wheel", "--dist", tmp_path / "dist", cwd=project)
    assert result.code == 0, result.err
    assert (project / "packages" / "credit.model-1" / "model.onnx").is_file()
    assert (tmp_path / "dist" / _WHEEL).is_file()


def test_a_directory_that_is_no_package_is_one_line_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    result = cli("package", "./empty", "--wheel", cwd=tmp_path)
    assert result.code == 2
    assert "empty: no manifest.json; this is not an mlstrata package" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "dist").exists()


def test_an_unknown_model_is_one_line_exit_2(cli, project: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("package", "credit.modle", "--wheel", cwd=project)
    assert result.code == 2
    assert "credit.modle" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (project / "dist").exists()


def test_an_unwritable_dist_is_one_line_exit_2(cli, credit_package: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file").write_text("in the way")
    result = cli("package", credit_package, "--wheel", "--dist", "file/dist", cwd=tmp_path)
    assert result.code == 2
    assert "file/dist: cannot write the wheel there (Not a directory)" in result.err
    assert len(result.err.strip().splitlines()) == 1
