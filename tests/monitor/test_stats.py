"""The drift statistics on sketches agree with the exact ones computed on the raw samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import distance

from mlstrata.config import MonitorConfig
from mlstrata.monitor.drift import compare
from mlstrata.monitor.sketch import (
    CategoryAccumulator,
    CategorySketch,
    NumberAccumulator,
    NumberSketch,
)
from mlstrata.monitor.stats import chi_square, js_distance, ks_grid, psi, wasserstein_grid

RNG = np.random.default_rng(0)
REFERENCE = RNG.normal(0.0, 1.0, 20_000)


def _window(values: np.ndarray) -> tuple[NumberSketch, NumberSketch]:
    reference = NumberSketch.from_values(REFERENCE)
    accumulator = NumberAccumulator(reference)
    for chunk in np.array_split(values, 7):  # streamed in batches, as the reader does
        accumulator.add(chunk)
    return reference, accumulator.sketch()


@pytest.mark.parametrize("name, values", [
    ("same", RNG.normal(0.0, 1.0, 5_000)),
    ("mean +3 sd", RNG.normal(3.0, 1.0, 5_000)),
    ("scale x1.5", RNG.normal(0.0, 1.5, 5_000)),
    ("new mode", np.r_[RNG.normal(0.0, 1.0, 4_500), RNG.normal(6.0, 0.2, 500)]),
    ("mean -0.3 sd", RNG.normal(-0.3, 1.0, 5_000)),
])
def test_wasserstein_on_the_grid_matches_the_exact_distance(name: str, values: np.ndarray
                                                              ) -> None:
    reference, current = _window(values)
    exact = sps.wasserstein_distance(REFERENCE, values) / REFERENCE.std(ddof=1)
    assert wasserstein_grid(reference, current) == pytest.approx(exact, rel=0.08, abs=0.02)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 3.0])
def test_ks_on_the_grid_is_close_below_the_exact_distance(shift: float) -> None:
    values = RNG.normal(shift, 1.0, 5_000)
    reference, current = _window(values)
    exact = sps.ks_2samp(REFERENCE, values)
    distance, p_value = ks_grid(reference, current)
    assert exact.statistic - 0.02 <= distance <= exact.statistic + 1e-12
    if shift >= 0.5:
        assert p_value < 1e-12
    if shift == 0.0:
        assert p_value > 0.01


def test_psi_and_jensen_shannon_have_their_textbook_values() -> None:
    reference, current = np.array([50, 30, 20]), np.array([30, 30, 40])
    r, c = reference / 100, current / 100
    assert psi(reference, current) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert js_distance(reference, current) == pytest.approx(
        float(distance.jensenshannon(r, c, base=2)))
    assert psi(reference, np.zeros(3)) == 0.0


def test_chi_square_is_the_textbook_test_of_homogeneity() -> None:
    reference, current = np.array([400, 300, 300]), np.array([90, 60, 50])
    expected = sps.chi2_contingency(np.vstack([reference, current]), correction=False)
    statistic, p_value = chi_square(reference, current)
    assert statistic == pytest.approx(expected.statistic)
    assert p_value == pytest.approx(expected.pvalue)


def test_a_discrete_number_has_one_bin_per_value() -> None:
    values = RNG.choice([0, 1, 2, 3], 5_000, p=[0.8, 0.12, 0.06, 0.02]).astype(float)
    sketch = NumberSketch.from_values(values)
    assert sketch.edges == (0.0, 1.0, 2.0, 3.0)  # the grid: one bin per value
    assert sketch.bin_labels() == ["≤ 0", "0 – 1", "> 1"]  # PSI's deciles
    assert sketch.bin_counts().sum() == 5_000


def test_ten_points_between_two_big_levels_is_drift_though_psi_barely_moves() -> None:
    """The trap: PSI of a 10-point move between two large levels is about 0.04, far below
    0.2 — the share change must catch it (Evidently's defaults miss it)."""
    levels = ["a", "b", "c", "d"]
    reference = CategorySketch.from_values(RNG.choice(levels, 20_000, p=[0.3, 0.3, 0.2, 0.2]))
    accumulator = CategoryAccumulator(reference)
    moved = RNG.choice(levels, 5_000, p=[0.4, 0.2, 0.2, 0.2])
    accumulator.add_counts(dict(zip(*np.unique(moved, return_counts=True), strict=True)))
    drift = compare("purpose", reference, accumulator.sketch(), MonitorConfig(), alpha=1e-6)
    assert drift.psi is not None and drift.psi < 0.1
    assert drift.drifted and "share of a moved" in drift.reasons[0]


def test_a_new_level_is_named_and_counted() -> None:
    reference = CategorySketch.from_values(RNG.choice(["x", "y"], 1_000))
    accumulator = CategoryAccumulator(reference)
    accumulator.add_counts({"x": 400, "y": 400, "z": 200}, missing=5)
    current = accumulator.sketch()
    assert current.new_levels == {"z": 200} and current.missing == 5
    drift = compare("c", reference, current, MonitorConfig(), alpha=1e-6)
    assert drift.drifted and drift.new_levels == {"z": 200} and drift.new_share == 0.2


def test_a_small_window_gets_statistics_but_no_verdict() -> None:
    reference, current = _window(RNG.normal(3.0, 1.0, 50))
    drift = compare("x", reference, current, MonitorConfig(), alpha=None)
    assert drift.psi is not None and drift.psi > 1 and not drift.drifted
