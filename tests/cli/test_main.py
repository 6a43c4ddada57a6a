"""The entry point loads only the module of the command being run, and knows every command."""

from __future__ import annotations

import subprocess
import sys

import typer.main

from mlstrata.cli.main import COMMAND_MODULES, build_app


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
