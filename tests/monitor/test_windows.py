"""Windows and time bounds as users write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlstrata.errors import ConfigError
from mlstrata.monitor.windows import Window, parse_time, parse_window


@pytest.mark.parametrize("text, window", [
    ("1h", Window(seconds=3600)), ("15m", Window(seconds=900)), ("1d", Window(seconds=86400)),
    ("2w", Window(seconds=1_209_600)), ("5000", Window(rows=5000)),
    ("5000rows", Window(rows=5000)), ("5000 rows", Window(rows=5000)),
])
def test_windows(text: str, window: Window) -> None:
    assert parse_window(text) == window


def test_windows_describe_themselves() -> None:
    assert [parse_window(t).describe() for t in ("60m", "48h", "7d", "90s", "10rows")] == \
        ["1h", "2d", "1w", "90s", "10 rows"]


@pytest.mark.parametrize("text", ["", "0h", "soon", "1y", "-5"])
def test_a_bad_window_names_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match="--window: cannot read"):
        parse_window(text)


def test_times_are_utc_dates_times_or_durations_back() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_time("24h", now=now) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_time("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_time("2026-12-01T10:00+02:00") == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--until: cannot read 'yesterday'"):
        parse_time("yesterday", "--until")
