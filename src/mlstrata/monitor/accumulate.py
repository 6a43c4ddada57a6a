"""One pass over the log's record batches, accumulating what each window holds.

Per window: rows and requests (a request's first record), the time span, the sources, latency
on a log-spaced histogram (one value per request; percentiles read off it within
:data:`LATENCY_RESOLUTION`), rows with contract warnings and the fields they named, and each
input and prediction counted on the reference's grid or levels (:mod:`.sketch`). Memory is a
few kilobytes per window and column, whatever the number of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .reference import PresenceSketch, Reference
from .sketch import CategoryAccumulator, CategorySketch, NumberAccumulator, NumberSketch

__all__ = ["LATENCY_RESOLUTION", "WindowData", "accumulate"]

_LATENCY_EDGES = np.logspace(-3, 7, 10 * 60 + 1)  # 1 µs to 10,000 s in ms, 60 bins a decade
LATENCY_RESOLUTION = float(_LATENCY_EDGES[1] / _LATENCY_EDGES[0] - 1)
"""Relative width of a latency bin (about 4 %)."""

Sketch = NumberSketch | CategorySketch | PresenceSketch


@dataclass(frozen=True)
class WindowData:
    """What one window of the log held."""

    index: int
    rows: int
    requests: int
    first: np.datetime64
    last: np.datetime64
    sources: dict[str, int]
    latency_ms: dict[str, float | None]
    warned_rows: int
    warnings: dict[str, int]
    inputs: dict[str, Sketch]
    labels: CategorySketch | None
    score: NumberSketch | None


class _Presence:
    """Counts present and missing values of a date input."""

    def __init__(self) -> None:
        self.rows = 0
        self.missing = 0

    def sketch(self) -> PresenceSketch:
        return PresenceSketch(self.rows, self.missing)


class _WindowState:
    """The running counts of one window."""

    def __init__(self, index: int, reference: Reference) -> None:
        self.index = index
        self.rows = 0
        self.requests = 0
        self.first: Any = None
        self.last: Any = None
        self.sources: Counter[str] = Counter()
        self.latency = np.zeros(len(_LATENCY_EDGES) + 1, dtype=np.int64)
        self.warned = 0
        self.warnings: Counter[str] = Counter()
        self.inputs = {name: _accumulator(sketch) for name, sketch in reference.inputs.items()}
        self.labels = (CategoryAccumulator(reference.predictions.labels)
                       if reference.predictions.labels is not None else None)
        self.score = (NumberAccumulator(reference.predictions.score)
                      if reference.predictions.score is not None else None)

    def add(self, batch: Any, names: list[str]) -> None:
        """Count one Arrow record batch whose rows all belong to this window."""
        import pyarrow.compute as pc

        self.rows += batch.num_rows
        times = batch.column("t")
        low, high = pc.min(times).as_py(), pc.max(times).as_py()
        self.first = low if self.first is None else min(self.first, low)
        self.last = high if self.last is None else max(self.last, high)
        self.sources.update(_counts(batch.column("source"))[0])
        firsts = np.asarray(batch.column("record").to_numpy(zero_copy_only=False)) == 0
        self.requests += int(firsts.sum())
        latency = np.asarray(batch.column("latency_ms").to_numpy(zero_copy_only=False),
                             dtype=np.float64)[firsts]
        latency = latency[np.isfinite(latency)]
        self.latency += np.bincount(np.searchsorted(_LATENCY_EDGES, latency),
                                    minlength=len(self.latency))
        warned = np.asarray(batch.column("warning_count").to_numpy(zero_copy_only=False))
        warned_here = int((warned > 0).sum())
        self.warned += warned_here
        if warned_here:
            self.warnings.update(_counts(pc.list_flatten(batch.column("warning_fields")))[0])
        for k, name in enumerate(names):
            _add(self.inputs[name], batch.column(f"i{k}"))
        if self.labels is not None:
            _add(self.labels, batch.column("prediction"))
        if self.score is not None:
            _add(self.score, batch.column("score"))

    def data(self) -> WindowData:
        return WindowData(
            self.index, self.rows, self.requests, np.datetime64(self.first, "us"),
            np.datetime64(self.last, "us"), dict(self.sources.most_common()),
            _percentiles(self.latency), self.warned, dict(self.warnings.most_common()),
            {name: acc.sketch() for name, acc in self.inputs.items()},
            self.labels.sketch() if self.labels is not None else None,
            self.score.sketch() if self.score is not None else None)


def accumulate(batches: Iterable[Any], reference: Reference) -> list[WindowData]:
    """Every window's data, in window order, from the record batches of
    :func:`.logreader.predictions_sql`."""
    import pyarrow as pa

    names = list(reference.inputs)
    states: dict[int, _WindowState] = {}
    for batch in batches:
        if not batch.num_rows:
            continue
        windows = np.asarray(batch.column("w").to_numpy(zero_copy_only=False))
        for window in np.unique(windows):
            part = batch if len(windows) and (windows == window).all() else \
                batch.filter(pa.array(windows == window))
            state = states.get(int(window))
            if state is None:
                state = states[int(window)] = _WindowState(int(window), reference)
            state.add(part, names)
    return [states[w].data() for w in sorted(states)]


def _accumulator(sketch: Sketch) -> NumberAccumulator | CategoryAccumulator | _Presence:
    if isinstance(sketch, NumberSketch):
        return NumberAccumulator(sketch)
    if isinstance(sketch, CategorySketch):
        return CategoryAccumulator(sketch)
    return _Presence()


def _add(accumulator: NumberAccumulator | CategoryAccumulator | _Presence, column: Any) -> None:
    if isinstance(accumulator, NumberAccumulator):
        accumulator.add(np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64))
    elif isinstance(accumulator, CategoryAccumulator):
        counts, missing = _counts(column)
        accumulator.add_counts(counts, missing)
    else:
        accumulator.missing += column.null_count
        accumulator.rows += len(column) - column.null_count


def _counts(column: Any) -> tuple[dict[str, int], int]:
    """The level counts of an Arrow column (text) and its count of nulls."""
    import pyarrow.compute as pc

    found = pc.value_counts(column)
    values = found.field("values").to_pylist()
    counts = found.field("counts").to_pylist()
    return ({str(v): int(c) for v, c in zip(values, counts, strict=True) if v is not None},
            column.null_count)


def _percentiles(histogram: np.ndarray[Any, Any]) -> dict[str, float | None]:
    """p50, p95 and p99 of a latency histogram (the geometric middle of the bin holding each)."""
    total = int(histogram.sum())
    if not total:
        return {"p50": None, "p95": None, "p99": None}
    cumulative = np.cumsum(histogram)
    found: dict[str, float | None] = {}
    for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        index = int(np.searchsorted(cumulative, share * total, side="left"))
        low = _LATENCY_EDGES[max(index - 1, 0)]
        high = _LATENCY_EDGES[min(index, len(_LATENCY_EDGES) - 1)]
        found[name] = float(np.sqrt(low * high))
    return found
