"""Adaptive batching: requests that arrive together are scored in one onnxruntime call.

The first request to reach the scorer yields to the event loop once, so that the requests
already read in the same loop iteration can join it, then scores all of them in one call (up
to ``max_rows`` rows; more make further calls) and hands each request exactly its rows. There is
no timer: a lone request waits for nobody (one loop turn, microseconds), and under load one call
serves many requests, which is where the per-call cost of a graph — and of building its input
tensors — is paid once instead of per request: the idea of Triton's dynamic batching and
BentoML's adaptive batching, without their wait window. Scoring stays on the event loop, which
on one core is where it is cheapest (no thread hand-offs); a request larger than ``max_rows``
rows is scored in a worker thread so that it does not stall the loop.

Only requests for the same loaded model are merged (a model swapped in by a reload starts its
own batch). A record the model answers NaN or infinity for fails only the request that sent it
(:class:`~mlstrata.runtime.outputs.NonFinitePredictionError`, its records renumbered from that
request's first); the other requests of the batch get their predictions.

>>> import asyncio, numpy as np
>>> from mlstrata.runtime.model import Predictions
>>> class Doubler:
...     calls = 0
...     def score(self, columns):
...         Doubler.calls += 1
...         return Predictions(values=columns["x"] * 2)
>>> async def three_requests():
...     scorer, model = BatchScorer(), Doubler()
...     jobs = [scorer.score(model, {"x": np.array([float(i)])}, 1) for i in range(3)]
...     return [p.values.tolist() for p in await asyncio.gather(*jobs)]
>>> asyncio.run(three_requests()), Doubler.calls  # three requests at once: one call
([[0.0], [2.0], [4.0]], 1)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..runtime.inputs import Columns, FieldProblem
from ..runtime.model import Predictions
from ..runtime.outputs import NonFinitePredictionError

__all__ = ["BatchScorer", "Scorable"]

DEFAULT_MAX_ROWS = 256
_log = logging.getLogger("mlstrata.serve")


class Scorable(Protocol):
    """What the batcher calls: a loaded model's ``score`` of typed, checked columns."""

    def score(self, columns: Columns) -> Predictions:
        """Predictions for every row of ``columns``."""


@dataclass(frozen=True)
class _Job:
    model: Scorable
    columns: Columns
    rows: int
    future: asyncio.Future[Predictions]


class BatchScorer:
    """Scores checked columns, merging the requests that reach it in the same loop turn.

    ``on_scored(model, predictions)``, when given, sees every onnxruntime call that answered
    (the serving metrics count records per call and the predictions' distribution).
    """

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS,
                 on_scored: Callable[[Any, Predictions], None] | None = None) -> None:
        self._max_rows = max_rows
        self._on_scored = on_scored
        self._queue: list[_Job] = []
        self._busy = False

    async def score(self, model: Scorable, columns: Columns, rows: int) -> Predictions:
        """``model``'s predictions for ``columns`` (``rows`` rows), batched with others."""
        if rows > self._max_rows:
            predictions = await asyncio.to_thread(model.score, columns)
            self._report(model, predictions)
            return predictions
        job = _Job(model, columns, rows, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if not self._busy:
            self._busy = True
            try:
                await asyncio.sleep(0)  # let the requests already read join this batch
                while self._queue:
                    self._score(self._next_batch())
            finally:
                self._busy = False
        return await job.future

    def _score(self, jobs: list[_Job]) -> None:
        merged = jobs[0].columns if len(jobs) == 1 else _concatenate(jobs)
        try:
            predictions = jobs[0].model.score(merged)
        except NonFinitePredictionError as exc:
            if exc.predictions is None or len(jobs) == 1:
                _settle_all(jobs, exc)
            else:
                _hand_back(jobs, exc.predictions, exc.problems)
            return
        except Exception as exc:  # noqa: BLE001 — handed to every request of the batch
            _settle_all(jobs, exc)
            return
        _hand_back(jobs, predictions, [])
        self._report(jobs[0].model, predictions)

    def _report(self, model: Scorable, predictions: Predictions) -> None:
        """Hand an answered call to ``on_scored``; a failing hook is logged, never a request's
        failure."""
        if self._on_scored is None:
            return
        try:
            self._on_scored(model, predictions)
        except Exception:  # noqa: BLE001 — observing must never fail scoring
            _log.exception("counting an onnxruntime call's predictions failed")

    def _next_batch(self) -> list[_Job]:
        """The queued jobs for the first job's model, up to ``max_rows`` rows (at least one)."""
        first = self._queue[0]
        batch, rest, rows = [first], [], first.rows
        for job in self._queue[1:]:
            if job.model is first.model and rows + job.rows <= self._max_rows:
                batch.append(job)
                rows += job.rows
            else:
                rest.append(job)
        self._queue = rest
        return batch


def _concatenate(jobs: list[_Job]) -> Columns:
    return {name: np.concatenate([job.columns[name] for job in jobs])
            for name in jobs[0].columns}


def _hand_back(jobs: list[_Job], predictions: Predictions,
               unscorable: list[FieldProblem]) -> None:
    """Each job's rows of ``predictions``, or the error naming its records that are
    ``unscorable`` (renumbered from the job's first row)."""
    start = 0
    for job in jobs:
        part = predictions.rows(start, start + job.rows)
        problems = [dataclasses.replace(p, row=p.row - start) for p in unscorable
                    if start <= p.row < start + job.rows]
        if problems:
            _settle(job, exception=NonFinitePredictionError(problems, part))
        else:
            _settle(job, result=part)
        start += job.rows


def _settle_all(jobs: list[_Job], exception: BaseException) -> None:
    for job in jobs:
        _settle(job, exception=exception)


def _settle(job: _Job, *, result: Predictions | None = None,
            exception: BaseException | None = None) -> None:
    """Complete a job's future unless its request is gone (cancelled by a disconnect)."""
    if job.future.done():
        return
    if exception is not None:
        job.future.set_exception(exception)
    else:
        job.future.set_result(result)  # type: ignore[arg-type]
