"""``mlstrata online``: create an online model, replay a stream through it, show its state."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import JsonOption, WorkspaceOption, emit, emit_saved, open_workspace, progress_bar
from ._options import console

if TYPE_CHECKING:
    from ..online.durability import CheckpointPolicy
    from ..workspace import Workspace

__all__ = ["register"]

online_app = typer.Typer(help="Online models: learn from a stream of events, event by event.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``online`` group to ``app``."""
    app.add_typer(online_app, name="online")


@online_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    contract: Annotated[Path | None, typer.Option(
        "--contract", help="The events' data contract (YAML).")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", metavar="REF",
        help="Take the contract (contracts/NAME.yaml, else inferred) and classes from a "
             "dataset version.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="logistic_regression, linear_regression, hoeffding_adaptive_tree, "
                        "adaptive_random_forest or knn (default: online.model).")] = None,
    warm_start: Annotated[str | None, typer.Option(
        "--warm-start", metavar="DATASET_REF",
        help="Learn this dataset version's rows, in order, before the first event.")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Create an online model from a contract or a dataset, and take its first checkpoint."""
    from ..online.creation import CreateRequest, create_online
    from ..online.status import online_status

    ws = open_workspace(workspace)
    request = CreateRequest(name=name, target=target, model=model, contract=contract,
                            dataset=dataset, warm_start=warm_start)
    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"creating {name}", total=None)
        created = create_online(ws, request, _policy(ws))
    if created.warm is not None and not as_json:
        console.print(f"warm start: {created.warm.learnt} rows learnt, {created.warm.refused} "
                      "refused" + (f" (first: {created.warm.first_refusal})"
                                   if created.warm.first_refusal else ""), highlight=False)
    emit(online_status(ws, name), as_json)


@online_app.command("replay")
def replay(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    file: Annotated[Path, typer.Argument(help="Events in row order: .csv, .parquet or .jsonl.")],
    commit: Annotated[bool, typer.Option(
        "--commit", help="Learn for real: log the events and checkpoint (default: a scratch "
                         "copy, the live state untouched).")] = False,
    metric: Annotated[str | None, typer.Option(
        "--metric", help="accuracy, balanced_accuracy, macro_f1 | mae, rmse, r2 (default: "
                         "online.metric, else accuracy or mae).")] = None,
    every: Annotated[int, typer.Option(
        "--every", min=1, help="Report the metric every N events.")] = 1000,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the JSON and HTML reports (default: reports/).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Predict, then learn, each event of FILE (progressive validation): the metric over time."""
    from ..online.reading import read_records
    from ..online.recovery import open_online, read_spec
    from ..online.replay import replay as run_replay

    ws = open_workspace(workspace)
    chunks = read_records(file, read_spec(ws, name)[1].contract)
    model, recovery = open_online(ws, name, writable=commit, policy=_policy(ws))
    with _sigterm_flag() as stopped, contextlib.closing(model), \
            progress_bar(quiet=as_json) as progress:
        task = progress.add_task(f"replaying {file.name}", total=_row_count(file))
        report = run_replay(model, takewhile(lambda _: not stopped.is_set(), chunks),
                            metric=metric or ws.config.online.metric, every=every,
                            progress=lambda rows: progress.advance(task, rows))
    notes = [*recovery.notes,
             *(["stopped by SIGTERM: the rest of the file was not replayed"]
               if stopped.is_set() else [])]
    emit_saved(replace(report, notes=tuple(notes)), as_json, out or ws.reports_dir,
               f"{name}-replay")


@online_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """The state of an online model: its spec, events logged, last checkpoint."""
    from ..online.status import online_status

    emit(online_status(open_workspace(workspace), name), as_json)


def _policy(ws: Workspace) -> CheckpointPolicy:
    from ..online.durability import CheckpointPolicy

    settings = ws.config.online
    return CheckpointPolicy(settings.checkpoint_events, settings.checkpoint_seconds)


@contextlib.contextmanager
def _sigterm_flag() -> Iterator[threading.Event]:
    """An event set by SIGTERM: the replay stops between two chunks (never inside one, which
    would leave the model out of step with its log) and the model closes with a checkpoint."""
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


def _row_count(file: Path) -> int | None:
    """The number of rows when the file says it cheaply (Parquet), for the progress bar."""
    if file.suffix.lower() not in (".parquet", ".pq") or not file.is_file():
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(file).metadata.num_rows)

