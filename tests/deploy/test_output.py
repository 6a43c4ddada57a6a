"""An artifact directory is written whole or not at all, and never over someone's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstrata.deploy.output import DeployError, staged_directory


def test_a_finished_render_replaces_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_directory(out) as staging:
        (staging / "Dockerfile").write_text("FROM x\n")
    assert (out / "Dockerfile").read_text() == "FROM x\n"
    with staged_directory(out, force=True) as staging:
        (staging / "README.md").write_text("new\n")
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]  # replaced, not merged
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_render_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(RuntimeError), staged_directory(out, force=True) as staging:
        (staging / "half").write_text("x")
        raise RuntimeError("boom")
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_directory_with_files_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(DeployError, match="not empty.*--force"), staged_directory(out):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(DeployError, match="is a file"), staged_directory(tmp_path / "file"):
        pass
    assert (out / "mine.txt").read_text() == "keep"
