"""``mlstrata precompute`` stores a prediction per key in a database; ``mlstrata lookup`` reads one.

The precompute serving pattern: score every entity in a batch run, and let applications read
the stored row instead of calling the model.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Literal

import typer

from ._common import (
    JsonOption,
    RecipeOption,
    WorkspaceOption,
    console,
    emit,
    err_console,
    progress_bar,
    workspace_for_model,
)
from ._options import StrictOption
from ._predlog import LogOption, batch_log

__all__ = ["register"]

DbOption = Annotated[str, typer.Option(
    "--db", help="sqlite:///path.db, a file path (SQLite) or postgresql://user@host:port/db.",
    show_default=False)]
TableOption = Annotated[str, typer.Option(
    "--table", help="Predictions table: letters, digits and _, at most 40 characters.")]


def register(app: typer.Typer) -> None:
    """Add ``precompute`` and ``lookup`` to ``app``."""
    app.command("precompute")(precompute)
    app.command("lookup")(lookup)


def precompute(
    model: Annotated[str, typer.Argument(
        help="Package directory, NAME, NAME@N or NAME@ALIAS (registry).")],
    source: Annotated[str, typer.Option(
        "--input", "-i", help="CSV, Parquet, JSON Lines, SQLite/DuckDB file or postgresql:// URL.",
        show_default=False)],
    key: Annotated[str, typer.Option(
        "--key", "-k", help="Input column identifying each entity (text, integer or date).",
        show_default=False)],
    db: DbOption,
    table: TableOption = "predictions",
    input_table: Annotated[str | None, typer.Option(
        "--input-table", help="Table of a database --input to read.")] = None,
    query: Annotated[str | None, typer.Option(
        "--query", help="SQL query selecting the rows of a database --input.")] = None,
    batch_rows: Annotated[int, typer.Option(
        "--batch-rows", min=1, help="Rows scored and stored per batch (bounds memory).")
    ] = 100_000,
    on_invalid: Annotated[Literal["reject", "fail"], typer.Option(
        "--on-invalid", help="Rows breaking the contract: 'reject' (count and skip) or 'fail'.")
    ] = "reject",
    recipe: RecipeOption = "auto",
    strict: StrictOption = False,
    log: LogOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Score every row of --input with MODEL and store one prediction per --key in --db.

    The rows go to a staging table that replaces --table in one transaction: a crash leaves the
    previous predictions complete, and readers never see a half-written table. Every stored
    prediction is also written to the prediction log (a model from a workspace; --no-log to
    turn it off).
    """
    from ..batch.precompute import precompute as run_precompute
    from ..package.locate import locate_package

    ws = workspace_for_model(model, workspace)
    package = locate_package(model, ws)
    with batch_log(model, workspace, log) as prediction_log, \
            progress_bar(quiet=as_json) as progress:
        task = progress.add_task("precompute", total=None)
        started = time.perf_counter()

        def advance(rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=rows,
                            description=f"precompute {rows:,} rows · {rate:,.0f} rows/s")

        report = run_precompute(package, source, key=key, db_url=db, table=table,
                                batch_rows=batch_rows, on_invalid=on_invalid,
                                input_table=input_table, query=query, recipe=recipe,
                                workspace=ws, progress=advance, log=prediction_log,
                                strict=strict)
    emit(report, as_json)


def lookup(
    key: Annotated[str, typer.Argument(help="The entity key to look up.")],
    db: DbOption,
    table: TableOption = "predictions",
    as_json: JsonOption = False,
) -> None:
    """Print the stored prediction for KEY, the model that made it and how old it is.

    Exits 1 when the key is not in the table.
    """
    from ..serve.precomputed import lookup as find

    found = find(db, key, table)
    if found is None:
        err_console.print(f"[bold red]not found:[/] key '{key}' is not in table '{table}'",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for name, value in found.items():
        console.print(f"[bold]{name}[/]: {value}", highlight=False, soft_wrap=True)
