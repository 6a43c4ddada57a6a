"""Drift statistics between a reference and a window, computed from their sketches.

Every test here is a *two-sample* test: the reference is itself a sample (the training rows, or
the validation rows for predictions), so its own noise counts — a small reference does not turn
every window into a false alarm.

- :func:`psi` — population stability index on shared bins, ``Σ (c - r) ln(c / r)`` over the
  bin shares, empty shares floored at :data:`PSI_FLOOR`. Rule of thumb: < 0.1 stable, 0.1-0.2
  moderate, > 0.2 a real shift.
- :func:`chi_square` — the chi-square test of homogeneity of two count vectors (levels of a
  category, or a missing/present split); returns the statistic and its p-value.
- :func:`ks_grid` — the Kolmogorov-Smirnov distance between two CDFs known at the grid edges,
  with the two-sample p-value (effective size ``n·m / (n + m)``; ``scipy.special`` only:
  importing ``scipy.stats`` alone costs a second or more). On a grid the distance is a lower
  bound of the exact one (the grid has a hundred edges), so the p-value errs on the safe side.
- :func:`wasserstein_grid` — the first Wasserstein distance (the area between the two CDFs),
  in units of the reference's standard deviation: linear CDFs inside each grid bin, and outside
  the grid the exact term from each tail's mass and mean. A mean shift of 3 standard deviations
  gives 3.
- :func:`js_distance` — the Jensen-Shannon distance (base 2, between 0 and 1) of two count
  vectors.

>>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
0.0
>>> round(js_distance(np.array([1, 0]), np.array([0, 1])), 6)
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .sketch import NumberSketch

__all__ = ["PSI_FLOOR", "chi_square", "js_distance", "ks_grid", "psi", "wasserstein_grid"]

PSI_FLOOR = 1e-4
"""The share an empty bin counts as in PSI (a bin empty on one side would be infinite)."""

Array = np.ndarray[Any, Any]


def psi(reference: Array, current: Array) -> float:
    """Population stability index of two count vectors over the same bins (0 when either is
    empty)."""
    r, c = _shares(reference), _shares(current)
    if r is None or c is None:
        return 0.0
    both_empty = (r == 0) & (c == 0)
    r, c = np.maximum(r[~both_empty], PSI_FLOOR), np.maximum(c[~both_empty], PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def chi_square(reference: Array, current: Array) -> tuple[float, float]:
    """Chi-square test that two count vectors come from one distribution: (statistic, p)."""
    from scipy.special import chdtrc

    table = np.vstack([np.asarray(reference, float), np.asarray(current, float)])
    table = table[:, table.sum(axis=0) > 0]
    totals = table.sum(axis=1)
    if table.shape[1] < 2 or (totals == 0).any():
        return 0.0, 1.0
    expected = np.outer(totals, table.sum(axis=0)) / totals.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(chdtrc(table.shape[1] - 1, statistic))


def ks_grid(reference: NumberSketch, current: NumberSketch) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance at the grid edges and its two-sample p-value: (D, p), from
    the Kolmogorov distribution with Stephens' small-sample correction."""
    from scipy.special import kolmogorov

    if not reference.rows or not current.rows or not reference.edges:
        return 0.0, 1.0
    gap = np.abs(_cdf(current) - _cdf(reference))
    distance = float(gap.max())
    root = np.sqrt(reference.rows * current.rows / (reference.rows + current.rows))
    return distance, float(min(kolmogorov((root + 0.12 + 0.11 / root) * distance), 1.0))


def wasserstein_grid(reference: NumberSketch, current: NumberSketch) -> float:
    """First Wasserstein distance between the two distributions, in reference standard
    deviations (in the reference's units when it has no spread)."""
    if not reference.rows or not current.rows:
        return 0.0
    edges = reference.grid
    r_cdf, c_cdf = _cdf(reference), _cdf(current)
    area = _interior_area(edges, c_cdf - r_cdf) + _tail_area(reference, current)
    scale = reference.std if reference.std else 1.0
    return float(area / scale)


def js_distance(reference: Array, current: Array) -> float:
    """Jensen-Shannon distance (base 2) of two count vectors; 0 when either is empty."""
    r, c = _shares(reference), _shares(current)
    if r is None or c is None:
        return 0.0
    middle = (r + c) / 2
    divergence = (_kl(r, middle) + _kl(c, middle)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def _shares(counts: Array) -> Array | None:
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    return values / total if total > 0 else None


def _kl(p: Array, q: Array) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def _cdf(sketch: NumberSketch) -> Array:
    """The sketch's CDF at each grid edge (bins are right-closed, so edge k closes bin k)."""
    counts = np.asarray(sketch.counts, dtype=np.float64)
    cumulative: Array = np.cumsum(counts)[:-1] / max(float(counts.sum()), 1.0)
    return cumulative


def _interior_area(edges: Array, gap: Array) -> float:
    """∫ |gap| between the first and last edge, the gap linear inside each bin."""
    if len(edges) < 2:
        return 0.0
    width = np.diff(edges)
    left, right = gap[:-1], gap[1:]
    same = left * right >= 0
    plain = (np.abs(left) + np.abs(right)) / 2
    total = np.abs(left) + np.abs(right)
    crossing = np.divide(left ** 2 + right ** 2, 2 * total, out=np.zeros_like(total),
                         where=total > 0)
    return float(np.sum(width * np.where(same, plain, crossing)))


def _tail_area(reference: NumberSketch, current: NumberSketch) -> float:
    """The area between the CDFs below the first edge and above the last one, from each tail's
    mass and mean (exact unless the two tails' CDFs cross)."""
    if not reference.edges:
        return abs((current.mean or 0.0) - (reference.mean or 0.0))
    first, last = reference.edges[0], reference.edges[-1]
    area = 0.0
    for side, edge in ((0, first), (1, last)):
        terms = []
        for sketch in (reference, current):
            mass = sketch.counts[0 if side == 0 else -1] / sketch.rows
            mean = sketch.tail_means[side]
            terms.append(0.0 if mean is None else mass * abs(mean - edge))
        area += abs(terms[1] - terms[0])
    return area
