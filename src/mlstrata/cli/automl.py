"""``mlstrata automl REF``: budgeted search of families, features and hyper-parameters."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from ._budget import budgeted_process
from ._common import (
    JsonOption,
    TrackingUriOption,
    WorkspaceOption,
    console,
    emit,
    err_console,
    open_workspace,
)

__all__ = ["register"]

_SHOWN = 10


def register(app: typer.Typer) -> None:
    """Add ``automl`` to ``app``."""
    app.command("automl")(automl)


class _LiveBoard:
    """A live leaderboard of the search on stderr: the best trials so far, the trial running
    and the time spent against the budget."""

    def __init__(self, live: Any, budget: float | None, trials: int | None) -> None:
        self._live = live
        self._budget, self._trials = budget, trials
        self._started = time.monotonic()
        self._running, self._folds, self._done = "", 0, 0
        self._board: list[Any] = []
        self._greater = True

    def start(self, label: str, total: int) -> None:
        self._running, self._folds, self._done = label, total, 0
        self._refresh()

    def advance(self) -> None:
        self._done += 1
        self._refresh()

    def trial(self, trial: Any, trials: Sequence[Any]) -> None:
        done = [t for t in trials if t.state == "complete"]
        if len(done) >= 2:
            self._greater = _greater(done)
        self._board = sorted(done, key=lambda t: -t.score if self._greater else t.score)
        self._refresh()

    def _refresh(self) -> None:
        self._live.update(self._render())

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        spent = time.monotonic() - self._started
        limit = (f"{spent:.0f} / {self._budget:g} s" if self._budget is not None
                 else f"{len(self._board)} complete, budget {self._trials} trials")
        grid = Table("#", "trial", "features", "score", "rows", "s",
                     title=f"automl leaderboard — {limit}")
        for rank, t in enumerate(self._board[:_SHOWN], 1):
            grid.add_row(str(rank), t.name, t.features, f"{t.score:.4f}", str(t.rows),
                         f"{t.seconds:.1f}")
        status = f"{self._running}: fold {self._done}/{self._folds}" if self._running else ""
        return Group(grid, status)


def _greater(done: Sequence[Any]) -> bool:
    """Whether higher is better, read from the trial results' metric name."""
    from ..model.metrics import greater_is_better

    result = done[0].result
    return result is None or greater_is_better(next(iter(result.metrics)))


@contextmanager
def _live(quiet: bool, budget: float | None, trials: int | None) -> Iterator[_LiveBoard | None]:
    """The live leaderboard, or None with ``--json`` or when stderr is not a terminal."""
    if quiet or not err_console.is_terminal:
        yield None
        return
    from rich.live import Live

    with Live(console=err_console, refresh_per_second=4, transient=True) as live:
        yield _LiveBoard(live, budget, trials)


def automl(
    ref: Annotated[str, typer.Argument(help="Dataset: NAME, NAME@N or an id prefix.")],
    time_budget: Annotated[float | None, typer.Option(
        "--time-budget", help="Wall-clock seconds for the whole run (search, refit, store); "
        "default model.search.time_budget_seconds, else 60.")] = None,
    trials: Annotated[int | None, typer.Option(
        "--trials", help="Run exactly N trials instead of a time budget: reproducible (same "
        "data and seed, same model).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of folds, samples and search (default model.seed).")] = None,
    tracking_uri: TrackingUriOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Search model families, feature options and hyper-parameters on dataset REF within a
    budget, ensemble the best, and store the winner as a model.

    Cheap configurations first (low-cost starting points, growing samples on large data,
    folds stopped when a trial cannot win), then a greedy ensemble of the out-of-fold
    predictions; only models that export to ONNX with parity can win. Prints a live
    leaderboard, then the final one with the budget asked for and the time spent. Tracked in
    MLflow like train.
    """
    with budgeted_process() as begun:  # the budget covers the whole process, imports included
        from ..model.automl import automl as run_automl
        from ..model.automl import search_config
        from ..package.onnx_export import onnx_problem

        ws = open_workspace(workspace)
        search = search_config(ws, time_budget, trials)
        with _live(as_json, search.time_budget_seconds, search.trials) as board:
            result = run_automl(ws, ref, time_budget=time_budget, trials=trials, seed=seed,
                                tracking_uri=tracking_uri, progress=board,
                                onnx_check=onnx_problem, budget_started=begun)
        emit(result, as_json)
        if not as_json:
            console.print(f"next: mlstrata package {result.model.ref}", highlight=False)
