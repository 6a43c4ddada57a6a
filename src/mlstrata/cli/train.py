"""``mlstrata train REF``: cross-validated leaderboard, tuning, ensembles; stores the winner."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._budget import budgeted_process
from ._common import (
    JsonOption,
    TrackingUriOption,
    WorkspaceOption,
    console,
    emit,
    open_workspace,
    progress_bar,
)

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train)


class _Bar:
    """Adapts a Rich progress display to :class:`mlstrata.model.train.Progress`."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None

    def start(self, label: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(label, total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)


def train(
    ref: Annotated[str, typer.Argument(help="Dataset: NAME, NAME@N or an id prefix.")],
    tracking_uri: TrackingUriOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Train the configured candidates on dataset REF and store the best as a model.

    By default runs the budgeted AutoML search (as mlstrata automl) within one absolute time
    budget (model.search.time_budget_seconds, else model.time_budget_seconds, else 60 s);
    when mlstrata.yaml sets model.tune or model.ensembles, cross-validates every candidate,
    tunes the best with Optuna and tries ensembles instead. Prints the leaderboard and writes
    <model>-v<N>-train.json and .html to reports/. Every run is tracked in MLflow.
    """
    with budgeted_process() as begun:  # a time budget covers the whole process, imports included
        from ..model.train import train as run_training
        from ..package.onnx_export import onnx_problem

        ws = open_workspace(workspace)
        with progress_bar(quiet=as_json) as progress:
            result = run_training(ws, ref, tracking_uri=tracking_uri, progress=_Bar(progress),
                                  onnx_check=onnx_problem, budget_started=begun)
        emit(result, as_json)
        if not as_json:
            console.print(f"next: mlstrata evaluate {result.model.ref}", highlight=False)
