"""Windows of the prediction log, and the times that bound a check (``--window``, ``--since``).

A window is either a span of UTC time aligned to the epoch (``1h``, ``15m``, ``1d`` — a day
window runs from midnight to midnight UTC) or a count of predictions in time order (``5000`` or
``5000rows``): the first 5,000 logged records, the next 5,000, and so on (the last window may be
shorter).

``--since`` and ``--until`` take an ISO 8601 date or time (UTC unless it says otherwise) or a
duration back from now (``24h``, ``7d``).

>>> parse_window("1h")
Window(seconds=3600, rows=None)
>>> parse_window("5000 rows").rows
5000
>>> parse_time("2026-12-02T10:00:00Z").isoformat()
'2026-12-02T10:00:00+00:00'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError

__all__ = ["Window", "parse_time", "parse_window"]

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_SPAN = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_ROWS = re.compile(r"^\s*(\d+)\s*(rows?|r)?\s*$", re.IGNORECASE)
_WINDOW_HELP = ("a duration (30m, 1h, 1d, 1w) or a number of predictions (5000 or 5000rows)")


@dataclass(frozen=True)
class Window:
    """How the log is cut: every ``seconds`` of UTC time, or every ``rows`` predictions."""

    seconds: int | None = None
    rows: int | None = None

    def describe(self) -> str:
        """``1h``-style text of the window, or ``5000 rows``."""
        if self.rows is not None:
            return f"{self.rows} rows"
        seconds = self.seconds or 0
        for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"


def parse_window(text: str, where: str = "--window") -> Window:
    """Parse a window: a duration (``1h``) or a count of predictions (``5000rows``)."""
    span = _SPAN.match(text)
    if span is not None:
        seconds = int(span.group(1)) * _UNITS[span.group(2).lower()]
        if seconds > 0:
            return Window(seconds=seconds)
    rows = _ROWS.match(text)
    if rows is not None and int(rows.group(1)) > 0:
        return Window(rows=int(rows.group(1)))
    raise ConfigError(f"{where}: cannot read {text!r} as a window; give {_WINDOW_HELP}")


def parse_time(text: str, where: str = "--since", now: datetime | None = None) -> datetime:
    """An aware UTC datetime from ISO 8601 text or a duration back from ``now``."""
    span = _SPAN.match(text)
    if span is not None:
        back = timedelta(seconds=int(span.group(1)) * _UNITS[span.group(2).lower()])
        return (now or datetime.now(UTC)) - back
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: cannot read {text!r} as a time; give an ISO 8601 date or "
                          "time (2026-12-02, 2026-12-02T10:00Z) or a duration back from now "
                          "(24h, 7d)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
