"""The entry point loads only the module of the command being run, and knows every command."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import typer.main

from mlstrata.cli.main import COMMAND_MODULES, build_app
from mlstrata.workspace import Workspace


def _names(app: typer.Typer) -> set[str]:
    click_group = typer.main.get_command(app)
    return set(getattr(click_group, "commands", {}))


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    assert _names(build_app()) == set(COMMAND_MODULES)
    for command in COMMAND_MODULES:
        assert command in _names(build_app(command))


def test_serving_starts_without_the_data_and_training_stack() -> None:
    code = ("import sys\n"
            "from mlstrata.cli.main import main\n"
            "try:\n    main(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
            "import mlstrata.serve.server, mlstrata.serve.app\n"
            "heavy = ('duckdb', 'pyarrow', 'pandas', 'sklearn', 'mlflow', 'jinja2')\n"
            "print([m for m in heavy if m in sys.modules], file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "--grpc-port" in out.stdout
    assert out.stderr.strip() == "[]"


def test_an_unknown_command_still_lists_all_of_them(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("no-such-command")
    assert result.code == 2
    assert "No such command" in result.err


def _broken_listing(self: object, kind: str | None = None) -> None:
    raise KeyError("artifact_kind")


def test_a_bug_is_one_line_naming_command_step_and_the_logged_traceback(
        cli, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(Workspace, "artifacts", _broken_listing)
    result = cli("ls", "dataset", cwd=workspace.root)
    assert result.code == 70
    [line] = result.err.strip().splitlines()
    assert "'mlstrata ls dataset' failed in mlstrata.cli.store.list_artifacts (store.py:" in line
    assert "KeyError: 'artifact_kind'" in line and "This is a bug in mlstrata" in line
    assert "Traceback" not in result.err + result.out
    [log] = (workspace.store / "logs").glob("crash-*.log")
    assert str(log) in line
    text = log.read_text()
    assert "mlstrata ls dataset" in text and "Traceback (most recent call last)" in text
    assert "_broken_listing" in text and "KeyError: 'artifact_kind'" in text


def test_a_bug_outside_a_workspace_logs_to_the_temporary_directory(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(Workspace, "find", classmethod(lambda cls, *a, **k: 1 / 0))
    result = cli("ls", cwd=tmp_path)
    assert result.code == 70 and "ZeroDivisionError" in result.err
    [log] = (tmp_path / "tmp").glob("crash-*.log")
    assert str(log) in result.err
