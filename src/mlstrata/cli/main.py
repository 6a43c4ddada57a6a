"""The ``mlstrata`` entry point: builds the Typer app and turns user errors into one red line."""

from __future__ import annotations

import sys

import typer

from ..errors import MlstrataError
from . import (
    evaluate,
    ingest,
    models,
    package,
    precompute,
    predict,
    profile,
    run,
    serve,
    store,
    synth,
    train,
    validate,
    wrangle,
)
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
ingest.register(app)
profile.register(app)
wrangle.register(app)
validate.register(app)
synth.register(app)
evaluate.register(app)
models.register(app)
package.register(app)
precompute.register(app)
predict.register(app)
run.register(app)
serve.register(app)
train.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; an ``MlstrataError`` prints one line on stderr and exits with its code.

    Typer handles usage errors itself (one line, exit 2); anything else is a bug and keeps its
    traceback.
    """
    try:
        app(args=argv)
    except MlstrataError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
