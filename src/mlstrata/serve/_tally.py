"""Running totals a request's thread adds to without locks, pushed into prometheus-client later.

Incrementing a prometheus-client value takes a lock and, when several worker processes share
the metrics, a write to a memory-mapped file; a request makes about ten. Here each thread adds
to plain Python numbers that only it writes (:class:`CounterSeries`, :class:`HistogramSeries`),
and :meth:`Tally.flush` adds what changed since the last flush to the prometheus-client values:
before every scrape, and every second in a background thread when several processes share the
metrics (a scrape answered by one worker then shows another's counts at most a second late).
The flusher only reads the totals, so nothing is lost to a race.

A histogram's bucket is found by bisection, and a batch's buckets with numpy, instead of
prometheus-client's Python loop over the bounds; the totals are pushed into the child's bucket
and sum values, which are prometheus-client internals: when a version lacks them the series
observes through the public ``observe``, unbuffered.

>>> from prometheus_client import CollectorRegistry, Histogram
>>> tally = Tally()
>>> h = Histogram("x", "x", buckets=(1, 2), registry=CollectorRegistry())
>>> tally.histogram(h, (1, 2)).observe_all(np.array([0.5, 1.0, 1.5, 3.0, 9.0] * 2))
>>> tally.flush()
>>> [(s.labels.get("le"), s.value) for s in h.collect()[0].samples if s.name == "x_bucket"]
[('1.0', 4.0), ('2.0', 6.0), ('+Inf', 10.0)]
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["CounterSeries", "HistogramSeries", "Tally"]

_S = TypeVar("_S", bound="_Series")

_LOOP_UP_TO = 8
"""Up to this many values are observed one by one (cheaper than numpy's per-call cost)."""


class _Series:
    """Running totals per thread (``size`` numbers each) and what was pushed so far."""

    def __init__(self, size: int) -> None:
        self._local = threading.local()
        self._threads: list[list[float]] = []
        self._pushed = [0.0] * size

    def _totals(self) -> list[float]:
        """This thread's totals, which only this thread writes."""
        try:
            totals: list[float] = self._local.totals
        except AttributeError:
            totals = self._local.totals = [0.0] * len(self._pushed)
            self._threads.append(totals)
        return totals

    def flush(self) -> None:
        """Push the change since the last flush (callers hold the tally's lock)."""
        current = [math.fsum(column) for column in zip(*list(self._threads), strict=True)]
        if not current:
            return
        changes = [now - before for now, before in zip(current, self._pushed, strict=True)]
        self._pushed = current
        self._push(changes)

    def _push(self, changes: list[float]) -> None:
        raise NotImplementedError


class CounterSeries(_Series):
    """A labelled counter child, counted per thread."""

    def __init__(self, child: Any) -> None:
        super().__init__(1)
        self._child = child

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        self._totals()[0] += amount

    def _push(self, changes: list[float]) -> None:
        if changes[0]:
            self._child.inc(changes[0])


class HistogramSeries(_Series):
    """A labelled histogram child with upper ``bounds``, counted per thread."""

    def __init__(self, child: Any, bounds: Sequence[float]) -> None:
        self._bounds = [*map(float, bounds), math.inf]
        super().__init__(1 + len(self._bounds))  # the sum, then one count per bucket
        self._child = child
        self._edges = np.array(self._bounds)
        buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
        if not isinstance(buckets, list) or len(buckets) != len(self._bounds) or total is None:
            buckets = None  # not the internals this relies on: observe through the public API
        self._buffered = buckets is not None
        self._buckets: list[Any] = buckets or []
        self._sum: Any = total

    def observe(self, value: float) -> None:
        """Observe one value."""
        if not self._buffered:
            self._child.observe(value)
            return
        totals = self._totals()
        totals[0] += value
        totals[1 + bisect.bisect_left(self._bounds, value)] += 1

    def observe_all(self, values: np.ndarray[Any, Any]) -> None:
        """Observe every value of ``values`` (finite numbers)."""
        if not self._buffered or len(values) <= _LOOP_UP_TO:
            for value in values.tolist():
                self.observe(value)
            return
        counts = np.bincount(np.searchsorted(self._edges, values, side="left"),
                             minlength=len(self._bounds))
        totals = self._totals()
        totals[0] += float(values.sum())
        for slot in np.flatnonzero(counts).tolist():
            totals[1 + slot] += int(counts[slot])

    def _push(self, changes: list[float]) -> None:
        if changes[0]:
            self._sum.inc(changes[0])
        for bucket, change in zip(self._buckets, changes[1:], strict=True):
            if change:
                bucket.inc(change)


class Tally:
    """Every series of one :class:`~mlstrata.serve.metrics.ServeMetrics`, flushed together."""

    def __init__(self) -> None:
        self._series: list[_Series] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def counter(self, child: Any) -> CounterSeries:
        """A new series for counter ``child``."""
        return self._add(CounterSeries(child))

    def histogram(self, child: Any, bounds: Sequence[float]) -> HistogramSeries:
        """A new series for histogram ``child`` with upper ``bounds``."""
        return self._add(HistogramSeries(child, bounds))

    def _add(self, series: _S) -> _S:
        with self._lock:
            self._series.append(series)
        return series

    def flush(self) -> None:
        """Push every series' change since the last flush into prometheus-client."""
        with self._lock:
            for series in self._series:
                series.flush()

    def flush_every(self, seconds: float, also: Callable[[], None] | None = None) -> None:
        """Flush (then call ``also()``) every ``seconds`` in a daemon thread."""
        def run() -> None:
            while not self._stop.wait(seconds):
                self.flush()
                if also is not None:
                    also()

        threading.Thread(target=run, name="mlstrata-metrics", daemon=True).start()
