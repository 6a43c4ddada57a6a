"""The double-precision ONNX conversion's speed-up: thresholds unchanged, found in closed form."""

from __future__ import annotations

import numpy as np

from mlstrata.package.double_precision import _switch_point


def test_switch_point_is_the_last_double_that_rounds_to_the_float32_below() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=4000) * 10.0 ** rng.integers(-8, 8, 4000),
                             rng.integers(-100, 100, 1000) + 0.5, [0.0, 1.0, 1e-30, 3e38]])
    for low in values.astype(np.float32):
        high = np.nextafter(low, np.float32(np.inf))
        point = _switch_point(low, high)
        assert np.float32(point) == low
        assert np.float32(np.nextafter(point, np.inf)) == high
