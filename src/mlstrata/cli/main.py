"""The ``mlstrata`` entry point: builds the Typer app and turns user errors into one red line."""

from __future__ import annotations

import sys

import click
import typer

from ..errors import MlstrataError
from . import profile, store, synth, validate, wrangle
from ._common import err_console

__all__ = ["app", "main"]

app = typer.Typer(
    name="mlstrata",
    help="Take a tabular ML project through the data, model and code strata.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
store.register(app)
profile.register(app)
wrangle.register(app)
validate.register(app)
synth.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an ``MlstrataError`` prints one line on stderr and exits with its code."""
    try:
        result = app(args=argv, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("[red]aborted[/]")
        sys.exit(130)
    except MlstrataError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
