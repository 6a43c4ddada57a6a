"""Drift verdicts: one window's column against the reference, with the thresholds of
``mlstrata.yaml`` (``monitor:``).

A column *drifts* in a window when its change is both **significant** and **large**:

- significant: the two-sample test (Kolmogorov-Smirnov for a number, chi-square for a category)
  has a p-value below ``p_value`` divided by the number of tests of the whole check (every
  column's distribution and missing rate in every window: a Bonferroni correction, so a check
  of many columns over many windows raises a false alarm with probability at most ``p_value``);
- large: PSI at least ``psi``, or for a number a Wasserstein distance of at least
  ``wasserstein`` reference standard deviations (a shift of the mean, a change of scale or a new
  mode all move it), or for a category one level's share moved by at least ``share_change``
  (PSI barely sees ten points moved between two big levels) or levels never seen in training
  holding at least ``new_level_share`` of the rows.

Significance keeps small windows from crying wolf; the effect size keeps huge windows from
flagging differences nobody cares about. The missing rate is judged the same way (a change of
at least ``missing_change``, significant). A window with fewer than ``min_rows`` rows is shown
but gets no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import MonitorConfig
from .reference import PresenceSketch
from .sketch import CategorySketch, NumberSketch
from .stats import chi_square, js_distance, ks_grid, psi, wasserstein_grid

__all__ = ["ColumnDrift", "compare"]

NEW_LEVELS_SHOWN = 10
"""New levels named in a report (the rest are counted)."""


@dataclass(frozen=True)
class ColumnDrift:
    """One column (an input, or a prediction) in one window, against the reference."""

    name: str
    kind: str
    rows: int
    missing_rate: float
    reference_missing_rate: float
    missing_p: float | None
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    psi: float | None = None
    wasserstein: float | None = None
    js_distance: float | None = None
    share_change: float | None = None
    new_levels: dict[str, int] = field(default_factory=dict)
    new_share: float = 0.0
    mean: float | None = None
    reference_mean: float | None = None
    bins: tuple[str, ...] = ()
    reference_shares: tuple[float, ...] = ()
    current_shares: tuple[float, ...] = ()
    drifted: bool = False
    missing_drifted: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        """Whether the distribution or the missing rate drifted."""
        return self.drifted or self.missing_drifted

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the histogram's shares included)."""
        return {"name": self.name, "kind": self.kind, "rows": self.rows,
                "flagged": self.flagged, "drifted": self.drifted,
                "missing_drifted": self.missing_drifted, "reasons": list(self.reasons),
                "missing_rate": self.missing_rate,
                "reference_missing_rate": self.reference_missing_rate,
                "missing_p_value": self.missing_p, "test": self.test,
                "statistic": self.statistic, "p_value": self.p_value, "psi": self.psi,
                "wasserstein": self.wasserstein, "js_distance": self.js_distance,
                "share_change": self.share_change, "new_levels": dict(self.new_levels),
                "new_share": self.new_share, "mean": self.mean,
                "reference_mean": self.reference_mean,
                "histogram": {"bins": list(self.bins), "reference": list(self.reference_shares),
                              "current": list(self.current_shares)}}


def compare(name: str, reference: Any, current: Any, config: MonitorConfig,
            alpha: float | None) -> ColumnDrift:
    """The drift of one column; ``alpha`` is the corrected significance level, or None for a
    window too small for a verdict (the statistics are still computed)."""
    if isinstance(reference, NumberSketch) and isinstance(current, NumberSketch):
        return _number(name, reference, current, config, alpha)
    if isinstance(reference, CategorySketch) and isinstance(current, CategorySketch):
        return _category(name, reference, current, config, alpha)
    missing = _missing(reference, current, config, alpha)
    return ColumnDrift(name, "date", current.rows, *missing[:3], missing_drifted=missing[3],
                       reasons=missing[4])


def _number(name: str, reference: NumberSketch, current: NumberSketch, config: MonitorConfig,
            alpha: float | None) -> ColumnDrift:
    ref_bins, cur_bins = reference.bin_counts(), current.bin_counts()
    index = psi(ref_bins, cur_bins)
    distance, p_value = ks_grid(reference, current)
    moved = wasserstein_grid(reference, current)
    reasons = []
    if index >= config.psi:
        reasons.append(f"PSI {index:.3g} ≥ {config.psi:g}")
    if moved >= config.wasserstein:
        reasons.append(f"Wasserstein {moved:.3g} σ ≥ {config.wasserstein:g}")
    drifted = alpha is not None and p_value < alpha and bool(reasons)
    missing = _missing(reference, current, config, alpha)
    return ColumnDrift(
        name, "number", current.rows, *missing[:3], test="ks", statistic=distance,
        p_value=p_value, psi=index, wasserstein=moved, mean=current.mean,
        reference_mean=reference.mean, bins=tuple(reference.bin_labels()),
        reference_shares=_shares(ref_bins), current_shares=_shares(cur_bins), drifted=drifted,
        missing_drifted=missing[3],
        reasons=(tuple(reasons) if drifted else ()) + missing[4])


def _category(name: str, reference: CategorySketch, current: CategorySketch,
              config: MonitorConfig, alpha: float | None) -> ColumnDrift:
    labels = [*reference.levels, "(other)", "(new)"]
    ref_counts = np.array([*reference.levels.values(), reference.other, 0], dtype=np.float64)
    new = sum(current.new_levels.values()) + current.new_other
    cur_counts = np.array([current.levels.get(level, 0) for level in reference.levels]
                          + [current.other, new], dtype=np.float64)
    keep = (ref_counts + cur_counts) > 0
    ref_counts, cur_counts = ref_counts[keep], cur_counts[keep]
    labels = [label for label, kept in zip(labels, keep, strict=True) if kept]
    statistic, p_value = chi_square(ref_counts, cur_counts)
    index = psi(ref_counts, cur_counts)
    ref_shares, cur_shares = _shares(ref_counts), _shares(cur_counts)
    change = float(np.max(np.abs(np.subtract(cur_shares, ref_shares)))) if current.rows and \
        reference.rows else 0.0
    new_share = new / current.rows if current.rows else 0.0
    reasons = []
    if index >= config.psi:
        reasons.append(f"PSI {index:.3g} ≥ {config.psi:g}")
    if change >= config.share_change:
        level = labels[int(np.argmax(np.abs(np.subtract(cur_shares, ref_shares))))]
        reasons.append(f"share of {level} moved {change:.1%} ≥ {config.share_change:.0%}")
    if new and new_share >= config.new_level_share:
        shown = ", ".join(list(current.new_levels)[:3])
        reasons.append(f"new levels ({shown}) hold {new_share:.1%} of rows")
    drifted = alpha is not None and p_value < alpha and bool(reasons)
    missing = _missing(reference, current, config, alpha)
    return ColumnDrift(
        name, "category", current.rows, *missing[:3], test="chi2", statistic=statistic,
        p_value=p_value, psi=index, js_distance=js_distance(ref_counts, cur_counts),
        share_change=change,
        new_levels=dict(list(current.new_levels.items())[:NEW_LEVELS_SHOWN]),
        new_share=new_share, bins=tuple(labels), reference_shares=ref_shares,
        current_shares=cur_shares, drifted=drifted, missing_drifted=missing[3],
        reasons=(tuple(reasons) if drifted else ()) + missing[4])


def _missing(reference: NumberSketch | CategorySketch | PresenceSketch,
             current: NumberSketch | CategorySketch | PresenceSketch, config: MonitorConfig,
             alpha: float | None) -> tuple[float, float, float | None, bool, tuple[str, ...]]:
    """Current and reference missing rates, the test's p-value, the verdict and its reason."""
    ref_total, cur_total = reference.rows + reference.missing, current.rows + current.missing
    ref_rate = reference.missing / ref_total if ref_total else 0.0
    cur_rate = current.missing / cur_total if cur_total else 0.0
    if not ref_total or not cur_total:
        return cur_rate, ref_rate, None, False, ()
    _, p_value = chi_square(np.array([reference.missing, reference.rows]),
                            np.array([current.missing, current.rows]))
    moved = abs(cur_rate - ref_rate) >= config.missing_change
    drifted = alpha is not None and moved and p_value < alpha
    reason = (f"missing {ref_rate:.1%} → {cur_rate:.1%}",) if drifted else ()
    return cur_rate, ref_rate, p_value, drifted, reason


def _shares(counts: np.ndarray[Any, Any]) -> tuple[float, ...]:
    total = float(np.sum(counts))
    return tuple(float(c) / total for c in counts) if total else tuple(0.0 for _ in counts)
