"""Log the rows a batch run scored: ``mlstrata predict`` and ``precompute`` with ``--log``.

Each scored batch becomes one item of the prediction log (:mod:`mlstrata.predlog`): the run
id is the request id, each row's ``record`` its position among the rows read (from 0, across
batches), its key the first ``--key`` column, and its latency the batch's scoring time. A
batch run waits for room in the log's queue instead of dropping (``block``): nothing scored
goes unlogged, and memory stays bounded by the queue.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..predlog import PredictionLog
from ..runtime.inputs import record_warnings
from ..runtime.model import LoadedModel
from .scoring import ScoredBatch

__all__ = ["logged_batches"]


def logged_batches(scored: Iterable[ScoredBatch], log: PredictionLog | None,
                   model: LoadedModel, *, run_id: str, source: str,
                   key: str | None = None) -> Iterator[ScoredBatch]:
    """``scored``, each batch's scored rows logged to ``log`` (unchanged when it is None)."""
    if log is None:
        yield from scored
        return
    first = 0
    clock = time.perf_counter()
    for batch in scored:
        elapsed_ms = (time.perf_counter() - clock) * 1000
        _log_batch(log, model, batch, run_id, source, key, first, elapsed_ms)
        first += batch.rows_in
        yield batch
        clock = time.perf_counter()


def _log_batch(log: PredictionLog, model: LoadedModel, batch: ScoredBatch, run_id: str,
               source: str, key: str | None, first: int, elapsed_ms: float) -> None:
    detail = batch.detail
    if detail is None or detail.predictions is None or not len(detail.rows):
        return
    rows = detail.rows
    columns = {name: values[rows] for name, values in detail.columns.items()}
    position = {int(row): index for index, row in enumerate(rows.tolist())}
    warned = [dataclasses.replace(p, row=position[p.row]) for p in detail.warned
              if p.row in position]
    predictions = detail.predictions.with_warnings(record_warnings(warned, len(rows)))
    keys: Any = None
    if key is not None and key in batch.scored.column_names:
        keys = batch.scored.column(key).to_pylist()
    log.log_predictions(model, request_id=run_id, source=source, columns=columns,
                        predictions=predictions, latency_ms=elapsed_ms, keys=keys,
                        positions=(rows + first).tolist(), block=True, remember=False)

