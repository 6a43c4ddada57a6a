"""Distribution sketches: what the reference keeps of a column, and what a window accumulates.

A **number** is summarised on a fine grid of the reference's percentiles (1st to 99th, the
observed values at those ranks, deduplicated, so a count with four values has four edges): the
rows in each right-closed bin ``(e[k-1], e[k]]``, the mean of the values in the two open tail bins,
and the mean, standard deviation, minimum and maximum. The population-stability bins are the
deciles — a subset of the grid, so the same counts give both. A window's values are counted on
the *reference's* grid, which is all the drift statistics need (:mod:`.stats`): PSI on the
deciles, the Kolmogorov-Smirnov distance at every grid edge, and the Wasserstein distance
between the two CDFs (linear inside a bin, exact tail masses and means outside the grid).

A **category** keeps the counts of its :data:`MAX_LEVELS` most frequent levels, the rows in the
rarer ones (``other``) and how many distinct levels there were; a window counts the reference's
levels and, when the reference knew every level, the levels it never saw (new categories).

Both keep the rows and the missing values (nulls) apart: a missing value is in no bin.

>>> sketch = NumberSketch.from_values(np.arange(1000.0))
>>> len(sketch.edges), len(sketch.bin_edges), sketch.rows
(99, 9, 1000)
>>> acc = NumberAccumulator(sketch)
>>> acc.add(np.array([5.0, np.nan, 2000.0]))
>>> current = acc.sketch()
>>> current.rows, current.missing, current.counts[0], current.counts[-1]
(2, 1, 1, 1)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "GRID_PERCENTILES",
    "MAX_LEVELS",
    "MAX_NEW_LEVELS",
    "PSI_BINS",
    "CategoryAccumulator",
    "CategorySketch",
    "NumberAccumulator",
    "NumberSketch",
]

GRID_PERCENTILES = tuple(range(1, 100))
"""The ranks of the fine grid's edges (percent)."""
PSI_BINS = 10
"""Population-stability bins of a number: the deciles of the reference (fewer when tied)."""
MAX_LEVELS = 100
"""Levels of a category the reference counts one by one; rarer ones are pooled as ``other``."""
MAX_NEW_LEVELS = 1000
"""New levels a window counts one by one; beyond that they are pooled (a runaway identifier)."""

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class NumberSketch:
    """A number's distribution on a fine quantile grid (see the module docstring)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    bin_edges: tuple[float, ...]
    tail_means: tuple[float | None, float | None]
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    rows: int
    missing: int

    @classmethod
    def from_values(cls, values: Array) -> NumberSketch:
        """The reference sketch of ``values`` (floats, NaN for missing)."""
        values = np.asarray(values, dtype=np.float64)
        present = values[np.isfinite(values)]
        missing = int(len(values) - len(present))
        if not len(present):
            return cls((), (0,), (), (None, None), None, None, None, None, 0, missing)
        ranks = np.percentile(present, GRID_PERCENTILES, method="inverted_cdf")
        edges = np.unique(ranks)
        deciles = np.unique(ranks[[p - 1 for p in range(10, 100, 10)]])
        accumulator = NumberAccumulator.on_grid(edges, deciles)
        accumulator.add(present)
        return accumulator.sketch(missing=missing)

    @property
    def grid(self) -> Array:
        """The fine grid's edges as an array."""
        return np.asarray(self.edges, dtype=np.float64)

    def bin_counts(self) -> Array:
        """Rows per population-stability bin (the fine counts merged at the decile edges)."""
        counts = np.asarray(self.counts, dtype=np.float64)
        if not self.edges:
            return counts
        uppers = np.r_[self.grid, np.inf]
        coarse = np.searchsorted(np.asarray(self.bin_edges), uppers, side="left")
        return np.bincount(coarse, weights=counts, minlength=len(self.bin_edges) + 1)

    def bin_labels(self) -> list[str]:
        """A readable label per population-stability bin (``≤ 3``, ``3 – 7``, ``> 7``)."""
        edges = [f"{e:.4g}" for e in self.bin_edges]
        if not edges:
            return ["all"]
        middle = [f"{low} – {high}" for low, high in zip(edges, edges[1:], strict=False)]
        return [f"≤ {edges[0]}", *middle, f"> {edges[-1]}"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the reference file's entry for a number)."""
        return {"kind": "number", "rows": self.rows, "missing": self.missing,
                "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "bins": {"edges": list(self.bin_edges),
                         "counts": [int(c) for c in self.bin_counts()]},
                "grid": {"edges": list(self.edges), "counts": list(self.counts),
                         "tail_means": list(self.tail_means)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumberSketch:
        """Read the form written by :meth:`to_dict`."""
        grid, bins = data["grid"], data["bins"]
        low, high = grid["tail_means"]
        return cls(tuple(float(e) for e in grid["edges"]), tuple(int(c) for c in grid["counts"]),
                   tuple(float(e) for e in bins["edges"]), (_opt(low), _opt(high)),
                   _opt(data.get("mean")), _opt(data.get("std")), _opt(data.get("min")),
                   _opt(data.get("max")), int(data["rows"]), int(data["missing"]))


class NumberAccumulator:
    """Counts a stream of numbers on a reference's grid; :meth:`sketch` gives the result."""

    def __init__(self, reference: NumberSketch) -> None:
        self._edges = reference.grid
        self._bins = reference.bin_edges
        bins = len(self._edges) + 1
        self._counts = np.zeros(bins, dtype=np.int64)
        self._tail_sums = np.zeros(2, dtype=np.float64)
        self._sum = 0.0
        self._squares = 0.0
        self._min = np.inf
        self._max = -np.inf
        self._missing = 0

    @classmethod
    def on_grid(cls, edges: Array, bin_edges: Array) -> NumberAccumulator:
        """An accumulator on explicit edges (used to build a reference)."""
        empty = NumberSketch(tuple(float(e) for e in edges), (0,) * (len(edges) + 1),
                             tuple(float(e) for e in bin_edges), (None, None), None, None,
                             None, None, 0, 0)
        return cls(empty)

    def add(self, values: Array) -> None:
        """Count ``values`` (floats; NaN or infinite count as missing)."""
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        self._missing += int(len(values) - finite.sum())
        present = values[finite]
        if not len(present):
            return
        index = np.searchsorted(self._edges, present, side="left")
        self._counts += np.bincount(index, minlength=len(self._counts))
        self._tail_sums[0] += float(present[index == 0].sum())
        self._tail_sums[1] += float(present[index == len(self._edges)].sum())
        self._sum += float(present.sum())
        self._squares += float(np.square(present).sum())
        self._min = min(self._min, float(present.min()))
        self._max = max(self._max, float(present.max()))

    def add_missing(self, rows: int) -> None:
        """Count ``rows`` missing values (a field absent from the log)."""
        self._missing += rows

    def sketch(self, missing: int | None = None) -> NumberSketch:
        """What has been counted so far."""
        rows = int(self._counts.sum())
        counts = tuple(int(c) for c in self._counts)
        lost = self._missing if missing is None else missing
        if not rows:
            return NumberSketch(tuple(float(e) for e in self._edges), counts, self._bins,
                                (None, None), None, None, None, None, 0, lost)
        mean = self._sum / rows
        variance = max(self._squares / rows - mean * mean, 0.0)
        tails = (self._tail_sums[0] / counts[0] if counts[0] else None,
                 self._tail_sums[1] / counts[-1] if counts[-1] else None)
        return NumberSketch(tuple(float(e) for e in self._edges), counts, self._bins,
                            (_opt(tails[0]), _opt(tails[1])), mean,
                            float(np.sqrt(variance * rows / max(rows - 1, 1))),
                            self._min, self._max, rows, lost)


@dataclass(frozen=True)
class CategorySketch:
    """A category's level counts (see the module docstring)."""

    levels: dict[str, int]
    other: int
    distinct: int
    rows: int
    missing: int
    new_levels: dict[str, int] = field(default_factory=dict)
    new_other: int = 0

    @property
    def complete(self) -> bool:
        """Whether every level seen is counted by name (so an unlisted level is new)."""
        return self.other == 0

    @classmethod
    def from_values(cls, values: Iterable[Any]) -> CategorySketch:
        """The reference sketch of ``values`` (None for missing; others as their text)."""
        counter: Counter[str] = Counter()
        missing = 0
        for value in values:
            if value is None:
                missing += 1
            else:
                counter[str(value)] += 1
        return cls.from_counts(counter, missing)

    @classmethod
    def from_counts(cls, counter: Mapping[str, int], missing: int) -> CategorySketch:
        """Keep the :data:`MAX_LEVELS` most frequent levels of ``counter`` (ties by name)."""
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        top = dict(ranked[:MAX_LEVELS])
        rest = sum(count for _, count in ranked[MAX_LEVELS:])
        return cls(top, rest, len(counter), sum(counter.values()), missing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the reference file's entry for a category)."""
        body: dict[str, Any] = {"kind": "category", "rows": self.rows, "missing": self.missing,
                                "distinct": self.distinct, "levels": dict(self.levels),
                                "other": self.other}
        if self.new_levels or self.new_other:
            body.update(new_levels=dict(self.new_levels), new_other=self.new_other)
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategorySketch:
        """Read the form written by :meth:`to_dict`."""
        return cls({str(k): int(v) for k, v in data["levels"].items()}, int(data["other"]),
                   int(data["distinct"]), int(data["rows"]), int(data["missing"]),
                   {str(k): int(v) for k, v in (data.get("new_levels") or {}).items()},
                   int(data.get("new_other") or 0))


class CategoryAccumulator:
    """Counts a stream of levels against a reference's levels; :meth:`sketch` gives the result."""

    def __init__(self, reference: CategorySketch) -> None:
        self._known = reference.levels
        self._complete = reference.complete
        self._counts: Counter[str] = Counter()
        self._new: Counter[str] = Counter()
        self._other = 0
        self._new_other = 0
        self._missing = 0

    def add_counts(self, counts: Mapping[str, int], missing: int = 0) -> None:
        """Count ``counts[level]`` rows of each level and ``missing`` missing values."""
        self._missing += missing
        for level, count in counts.items():
            if level in self._known:
                self._counts[level] += count
            elif not self._complete:
                self._other += count
            elif level in self._new or len(self._new) < MAX_NEW_LEVELS:
                self._new[level] += count
            else:
                self._new_other += count

    def sketch(self) -> CategorySketch:
        """What has been counted so far."""
        levels = {level: self._counts.get(level, 0) for level in self._known}
        rows = sum(levels.values()) + self._other + sum(self._new.values()) + self._new_other
        distinct = sum(1 for c in levels.values() if c) + len(self._new) + (self._other > 0)
        return CategorySketch(levels, self._other, distinct, rows, self._missing,
                              dict(self._new.most_common()), self._new_other)


def _opt(value: Any) -> float | None:
    """``value`` as a float, or None (missing or not finite)."""
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None
