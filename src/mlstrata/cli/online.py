"""``mlstrata online``: create an online model, replay a stream through it, show its state."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ._common import JsonOption, WorkspaceOption, emit, emit_saved, open_workspace, progress_bar
from ._options import console, err_console
from ._predlog import LogOption, batch_log

if TYPE_CHECKING:
    from ..online.durability import CheckpointPolicy
    from ..online.guard import GuardedModel
    from ..online.learner import OnlineModel
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
    """Create an online model from a contract or a dataset, and take its first checkpoint;
    identifiers, hashed or masked PII and text with too many categories are left out of its
    features, each listed with the reason (online.keep keeps one)."""
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
    guard: Annotated[bool | None, typer.Option(
        "--guard/--no-guard", help="Run the guard against poisoned streams (rollback + "
                                   "quarantine; default: online.guard.enabled).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Predict, then learn, each event of FILE (progressive validation): the metric over time."""
    from ..online.reading import read_records
    from ..online.recovery import open_online, read_spec
    from ..online.replay import replay as run_replay

    ws = open_workspace(workspace)
    chunks = read_records(file, read_spec(ws, name)[1].contract)
    if guard if guard is not None else ws.config.online.guard.enabled:
        from ..online.guard import open_guarded

        guarded, recovery = open_guarded(ws, name, writable=commit, policy=_policy(ws))
        model: OnlineModel = cast("OnlineModel", guarded)  # the same calls (duck-typed)
    else:
        guarded, (model, recovery) = None, open_online(ws, name, writable=commit,
                                                      policy=_policy(ws))
    with _sigterm_flag() as stopped, contextlib.closing(model), \
            progress_bar(quiet=as_json) as progress:
        task = progress.add_task(f"replaying {file.name}", total=_row_count(file))
        report = run_replay(model, takewhile(lambda _: not stopped.is_set(), chunks),
                            metric=metric or ws.config.online.metric, every=every,
                            progress=lambda rows: progress.advance(task, rows))
    notes = [*recovery.notes,
             *(["stopped by SIGTERM: the rest of the file was not replayed"]
               if stopped.is_set() else []),
             *([_guard_note(guarded)] if guarded is not None else [])]
    emit_saved(replace(report, notes=tuple(notes)), as_json, out or ws.reports_dir,
               f"{name}-replay")


@online_app.command("quarantine")
def quarantine(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    release: Annotated[str | None, typer.Option(
        "--release", metavar="ID|all",
        help="Un-quarantine and learn again (rebuilds from an older checkpoint).")] = None,
    drop: Annotated[str | None, typer.Option(
        "--drop", metavar="ID|all",
        help="Confirm: never learn these events (they stay in the event log).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """List the events the guard quarantined; release or drop them."""
    import json

    from ..errors import ConfigError
    from ..online.guard import decide
    from ..online.quarantine import Quarantine, quarantine_path
    from ..online.recovery import read_spec

    ws = open_workspace(workspace)
    spec = read_spec(ws, name)[1]
    if release is not None and drop is not None:
        raise ConfigError("give --release or --drop, not both")
    if release is not None or drop is not None:
        action, which = ("release", release) if release is not None else ("drop", drop)
        assert which is not None
        decided = decide(ws, name, which, action, _policy(ws))
        if not as_json:
            console.print(f"{action}: {len(decided)} entr{'y' if len(decided) == 1 else 'ies'}"
                          + (" (model rebuilt from an older checkpoint)"
                             if action == "release" and decided else ""), highlight=False)
    entries = [e.to_dict() for e in Quarantine.load(quarantine_path(ws, spec.name)).entries]
    if as_json:
        console.print_json(json.dumps({"model": spec.name, "entries": entries}))
        return
    if not entries:
        console.print(f"{spec.name}: nothing quarantined", highlight=False)
    for e in entries:
        console.print(f"{e['id']:>3}  events {e['first']}..{e['last']} ({e['events']})  "
                      f"{e['status']:<11}  {e['at']}  {e['reason']}", highlight=False)


def _guard_note(guarded: GuardedModel) -> str:
    counters = guarded.counters()
    ranges = ", ".join(f"{first}..{last}" for first, last in guarded.quarantine.skipped())
    return (f"guard: {int(counters['rollbacks'])} rollback(s), "
            f"{int(counters['quarantined_events'])} events quarantined"
            + (f" ({ranges})" if ranges else "") + f", {int(counters['changes_detected'])} "
            "change(s) seen by ADWIN")


@online_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """The state of an online model: its spec, events logged, last checkpoint, quarantine."""
    from ..online.status import online_status

    emit(online_status(open_workspace(workspace), name), as_json)


@online_app.command("snapshot")
def snapshot(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    dataset: Annotated[str | None, typer.Option(
        "--dataset", metavar="REF",
        help="The labelled dataset version the snapshot is evaluated, tested and monitored "
             "against (default: the one the model was created or warm-started from).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Freeze the online model as it stands now (last checkpoint + logged events, quarantine
    skipped) as model NAME@N with a River package: then evaluate, test, register and monitor
    it like any model. A running server is not disturbed."""
    from ..online.snapshot import snapshot_online

    ws = open_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"snapshot of {name}", total=None)
        result = snapshot_online(ws, name, dataset)
    emit(result, as_json)


@online_app.command("consume")
def consume(
    name: Annotated[str, typer.Argument(help="The online model's name.")],
    redis_url: Annotated[str, typer.Option(
        "--redis", metavar="URL", help="The Redis server, e.g. redis://127.0.0.1:6379/0.")],
    stream: Annotated[str, typer.Option("--stream", help="The stream to learn from.")],
    group: Annotated[str | None, typer.Option(
        "--group", help="The consumer group (created if missing; default mlstrata.NAME). "
                        "A group belongs to one model.")] = None,
    consumer: Annotated[str, typer.Option(
        "--consumer", help="This consumer's name in the group.")] = "mlstrata",
    dead_letter: Annotated[str | None, typer.Option(
        "--dead-letter", metavar="STREAM",
        help="Where refused and malformed entries go (default STREAM.dead-letter).")] = None,
    event_field: Annotated[str, typer.Option(
        "--field", help="The entry field holding the event's JSON object.")] = "event",
    batch: Annotated[int, typer.Option(
        "--batch", min=1, help="Entries read, learnt (one fsync) and acknowledged at once.")
    ] = 100,
    block: Annotated[int, typer.Option(
        "--block", min=1, metavar="MS", help="How long one read waits for new entries.")] = 1000,
    max_events: Annotated[int | None, typer.Option(
        "--max-events", min=1, help="Stop after this many entries (default: until SIGTERM or "
                                    "SIGINT).")] = None,
    guard: Annotated[bool | None, typer.Option(
        "--guard/--no-guard", help="Run the guard against poisoned streams (rollback + "
                                   "quarantine; default: online.guard.enabled).")] = None,
    log: LogOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Learn from a Redis stream through a consumer group; an entry is acknowledged only once
    its event is durable, refused and malformed ones go to a dead-letter stream."""
    from ..online.consumer import ConsumerSettings, StreamConsumer, connect, open_model
    from ..online.recovery import read_spec

    ws = open_workspace(workspace)
    read_spec(ws, name)  # an unknown model is said before Redis is asked anything
    settings = ConsumerSettings(url=redis_url, stream=stream, group=group or f"mlstrata.{name}",
                                consumer=consumer, dead_letter=dead_letter or "",
                                field=event_field, batch=batch, block_ms=block,
                                max_events=max_events)
    client = connect(redis_url)
    model, notes, guarded = open_model(ws, name, _policy(ws), guard)
    with contextlib.closing(model), batch_log(name, ws.root, log) as predictions, \
            _stop_signals() as stopped:
        worker = StreamConsumer.for_workspace(ws, model, client, settings, predictions)
        worker.stop = stopped
        worker.report.notes.extend(notes)
        if not as_json:
            err_console.print(f"consuming {stream} (group {settings.group}) into {name}; "
                              "SIGTERM or Ctrl-C stops after the batch in hand", highlight=False)
        report = worker.run(None if as_json else
                            lambda r: err_console.print(r.summary(), highlight=False))
    if guarded is not None:
        report.notes.append(_guard_note(guarded))
    emit(report, as_json)


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


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (a consumer finishes its batch, then stops)."""
    stopped = threading.Event()
    handler = lambda signum, frame: stopped.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stopped
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _row_count(file: Path) -> int | None:
    """The number of rows when the file says it cheaply (Parquet), for the progress bar."""
    if file.suffix.lower() not in (".parquet", ".pq") or not file.is_file():
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(file).metadata.num_rows)

