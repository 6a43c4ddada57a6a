"""The ``mlstrata`` entry point: builds the Typer app and turns user errors into one red line."""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import MlstrataError
from ._crash import CRASH_EXIT_CODE, report_crash
from ._options import err_console

__all__ = ["COMMAND_MODULES", "build_app", "main"]

# Each command (or command group) → the module of mlstrata.cli whose register() adds it.
COMMAND_MODULES = {
    "init": "store", "ls": "store", "show": "store",
    "ingest": "ingest", "profile": "profile",
    "contract": "validate", "validate": "validate",
    "clean": "wrangle", "split": "wrangle",
    "synth": "synth",
    "train": "train", "automl": "automl", "evaluate": "evaluate", "test": "evaluate",
    "package": "package", "models": "models", "run": "run",
    "serve": "serve", "predict": "predict", "precompute": "precompute", "lookup": "precompute",
    "monitor": "monitor",
    "trace": "trace", "feedback": "feedback",
    "deploy": "deploy",
    "online": "online",
    "retrain": "retrain",
}


def build_app(command: str | None = None) -> typer.Typer:
    """The Typer app: every command, or only the module that defines ``command``.

    Loading one module keeps a command's start-up to what it needs — ``mlstrata serve PATH``
    must not import the data and training stack (cold start and memory are serving targets).
    """
    app = typer.Typer(
        name="mlstrata",
        help="Take a tabular ML project through the data, model and code strata.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)  # keep command dispatch even when only one command is loaded
    modules = ([COMMAND_MODULES[command]] if command in COMMAND_MODULES
               else list(dict.fromkeys(COMMAND_MODULES.values())))
    for module in modules:
        importlib.import_module(f"{__package__}.{module}").register(app)
    return app


def _root() -> None:
    """Take a tabular ML project through the data, model and code strata."""


def __getattr__(name: str) -> typer.Typer:
    """``app``: the full Typer app, built on first use."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an ``MlstrataError`` prints one line on stderr and exits with its code.

    Typer handles usage errors itself (one line, exit 2); anything else is a bug: one line that
    says so and where its traceback was logged (:mod:`._crash`), exit 70.
    """
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else None
    try:
        build_app(command)(args=args)
    except MlstrataError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - a bug: one line and a logged traceback
        err_console.print(f"[bold red]bug:[/] {report_crash(args, exc)}", highlight=False,
                          soft_wrap=True)
        sys.exit(CRASH_EXIT_CODE)
