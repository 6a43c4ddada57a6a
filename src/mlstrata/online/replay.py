"""Replaying a stream through a model: predict, then learn, event after event.

Progressive validation: each event is predicted by the model as it stood *before* learning it,
so the metric is an honest estimate of live performance with no held-out set. The metric is
reported over the whole replay and over each block of ``every`` events (its course in time).
Events the contract refuses are counted, the first few with their reason, and skipped.

Whether the live model changes is the caller's choice: a replay through a model opened with
its durability (``--commit``) logs every accepted event and checkpoints as it goes; one through
a scratch copy leaves the live state untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..contract import did_you_mean
from ..errors import ConfigError
from .events import EventRefusedError
from .learner import OnlineModel, Prediction
from .report import MetricPoint, ReplayReport

__all__ = ["METRICS", "default_metric", "replay"]

METRICS = {"classification": ("accuracy", "balanced_accuracy", "macro_f1"),
           "regression": ("mae", "rmse", "r2")}
_RIVER_METRIC = {"accuracy": "Accuracy", "balanced_accuracy": "BalancedAccuracy",
                 "macro_f1": "MacroF1", "mae": "MAE", "rmse": "RMSE", "r2": "R2"}
_LISTED_REFUSALS = 10


def default_metric(task: str) -> str:
    """The metric a replay reports unless told: accuracy, or the mean absolute error."""
    return METRICS[task][0]


def replay(model: OnlineModel, chunks: Iterable[list[dict[str, Any]]], *,
           metric: str | None = None, every: int = 1000,
           progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Predict-then-learn every row of ``chunks`` in order and report the metric over time.

    ``progress`` is called with the number of rows of each chunk once it is done.
    """
    name = metric or default_metric(model.spec.task)
    tracker = _Tracker(name, model.spec.task, every)
    refusals: list[str] = []
    refused = 0
    started, first = time.perf_counter(), model.seq + 1
    for chunk in chunks:
        events = []
        for number, row in enumerate(chunk, start=tracker.rows + 1):
            try:
                events.append(model.checker.learn_event(row))
            except EventRefusedError as exc:
                refused += 1
                if len(refusals) < _LISTED_REFUSALS:
                    refusals.append(f"row {number}: {exc}")
        model.learn_events(events, observe=tracker.observe)
        tracker.rows += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return ReplayReport(
        model=model.spec.name, metric=name, every=every, rows=tracker.rows, learnt=tracker.seen,
        refused=refused, refusals=refusals, points=tracker.finish(),
        overall=tracker.overall.get() if tracker.seen else None,
        seconds=time.perf_counter() - started,
        events=(first, model.seq) if model.durability is not None and model.seq >= first
        else None)


class _Tracker:
    """The metric over every event and over the current block of ``every`` events."""

    def __init__(self, name: str, task: str, every: int) -> None:
        self.make = _metric_factory(name, task)
        self.every = every
        self.overall = self.make()
        self.block = self.make()
        self.points: list[MetricPoint] = []
        self.seen = self.rows = 0

    def observe(self, label: Any, prediction: Prediction) -> None:
        self.overall.update(label, prediction.answer)
        self.block.update(label, prediction.answer)
        self.seen += 1
        if self.seen % self.every == 0:
            self._point()

    def _point(self) -> None:
        self.points.append(MetricPoint(self.seen, float(self.overall.get()),
                                       float(self.block.get())))
        self.block = self.make()

    def finish(self) -> list[MetricPoint]:
        if self.seen % self.every:
            self._point()
        return self.points


def _metric_factory(name: str, task: str) -> Callable[[], Any]:
    """A maker of fresh River metrics named ``name`` (a ``ConfigError`` naming the choices)."""
    from river import metrics

    if name not in METRICS[task]:
        raise ConfigError(f"metric {name!r} is not one for {task}"
                          f"{did_you_mean(name, METRICS[task])}; use one of "
                          f"{', '.join(METRICS[task])}")
    kind: Callable[[], Any] = getattr(metrics, _RIVER_METRIC[name])
    return kind

