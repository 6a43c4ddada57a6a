"""``mlstrata predict``: batch-score a file or a database table with a model package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ..batch.predict import Engine, predict
from ..batch.reading import BATCH_ROWS
from ..batch.scoring import OnInvalid
from ..errors import MlstrataError
from ._common import (
    JsonOption,
    RecipeOption,
    WorkspaceOption,
    emit,
    progress_bar,
    workspace_for_model,
)
from ._options import StrictOption
from ._predlog import LogOption, batch_log

if TYPE_CHECKING:
    from ..runtime.model import LoadedModel
    from ..workspace import Workspace

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``predict`` to ``app``."""
    app.command("predict")(predict_command)


def predict_command(
    model: Annotated[str, typer.Argument(help="A package directory, NAME, NAME@N or NAME@ALIAS "
                                              "(e.g. credit@champion).")],
    input: Annotated[str, typer.Option("--input", "-i", help="CSV, Parquet (file or folder), "
                                       "JSON Lines, SQLite/DuckDB file or postgresql:// URL.")],
    output: Annotated[str, typer.Option("--output", "-o", help="PATH.parquet, PATH.csv, "
                                        "sqlite:///PATH.db?table=NAME or "
                                        "postgresql://.../DB?table=NAME. Replaced atomically.")],
    key: Annotated[list[str] | None, typer.Option(
        "--key", "-k", help="Input column copied to the output (repeat for several).")] = None,
    on_invalid: Annotated[str, typer.Option(
        help="reject: invalid rows go to the rejects file; fail: stop at the first.")] = "reject",
    rejects: Annotated[Path | None, typer.Option(
        help="Rejects CSV (default: <output stem>.rejects.csv, written only if any).")] = None,
    table: Annotated[str | None, typer.Option(help="Table of a database input.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query of a database input.")] = None,
    output_table: Annotated[str | None, typer.Option(
        help="Table of a database output (instead of ?table=).")] = None,
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows per batch.")] = BATCH_ROWS,
    engine: Annotated[str, typer.Option(help="local, or spark (Parquet in and out).")] = "local",
    master: Annotated[str | None, typer.Option(
        help="Spark master URL (default local[*]).")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="onnxruntime threads (default: all cores).")] = None,
    recipe: RecipeOption = "auto",
    strict: StrictOption = False,
    log: LogOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Score every row of the input with MODEL, streaming; write predictions atomically.

    Every scored row is also written to the prediction log (on by default for a model from a
    workspace; --no-log to turn it off; with --engine spark each partition logs its rows).
    """
    mode = cast(OnInvalid, _choice("--on-invalid", on_invalid, ("reject", "fail")))
    run_engine = cast(Engine, _choice("--engine", engine, ("local", "spark")))
    ws = workspace_for_model(model, workspace)
    with batch_log(model, workspace, log) as prediction_log, progress_bar(as_json) as bar:
        task = bar.add_task("scoring", total=None)

        def advance(rows: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            speed = f" ({rows / elapsed:,.0f} rows/s)" if elapsed > 0 else ""
            bar.update(task, completed=rows, description=f"scoring{speed}")

        scored = _river_or(model, ws, run_engine, strict)
        report = predict(scored, input, output, keys=key or (), on_invalid=mode,
                         rejects_path=rejects, batch_rows=batch_rows, engine=run_engine,
                         master=master, threads=threads, output_table=output_table, table=table,
                         query=query, recipe=recipe, workspace=ws, progress=advance,
                         log=prediction_log, strict=strict)
    emit(report, as_json)


def _river_or(model: str, ws: Workspace | None, engine: Engine, strict: bool
              ) -> str | LoadedModel:
    """A River package (an online snapshot) loaded to score here; any other MODEL as given."""
    from ..package.locate import locate_package
    from ..runtime.manifest import load_manifest

    try:
        directory = locate_package(model, ws)
    except MlstrataError:
        return model  # predict says what is wrong with it
    if load_manifest(directory).flavour != "river":
        return model
    if engine != "local":
        raise typer.BadParameter(f"{model} is a River package (an online snapshot); Spark "
                                 "executors run the ONNX runtime only — use --engine local",
                                 param_hint="--engine")
    from ..online.frozen_package import load_river_package

    return load_river_package(directory, strict=strict)


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}",
                                 param_hint=option)
    return value
