"""Date and timestamp decomposition into numeric parts, shared by training and serving.

The fitted pipeline's first step (``mlstrata.model.features.DateExpander``) and the serving
runtime both call :func:`expand_dates`, so a date becomes the same numbers in both places; the
ONNX graph only ever sees the parts. Numpy and the standard library only.

Parts (``FeatureConfig.date_parts``): ``year``, ``month`` (1-12), ``day`` (1-31), ``dayofweek``
(Monday 0 to Sunday 6), ``hour`` (0-23) and ``cyclical``, which adds ``month_sin``/``month_cos`` and
``dow_sin``/``dow_cos`` (and ``hour_sin``/``hour_cos`` when ``hour`` is asked for too) so that
December sits next to January. Missing or empty values give NaN in every part. Timezone-aware
values are converted to UTC first.

>>> parts = expand_dates(np.array(["2024-03-15", None, "2024-12-01T18:30:00"]), ["month", "hour"])
>>> parts["month"].tolist(), parts["hour"].tolist()
([3.0, nan, 12.0], [0.0, nan, 18.0])
>>> date_feature_names("opened", ["year", "cyclical"])
['opened_year', 'opened_month_sin', 'opened_month_cos', 'opened_dow_sin', 'opened_dow_cos']
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["DATE_PARTS", "date_feature_names", "date_part_keys", "expand_dates", "parse_date"]

DATE_PARTS = ("year", "month", "day", "dayofweek", "hour", "cyclical")
_PERIODS = {"month": 12.0, "dow": 7.0, "hour": 24.0}

_NAT = np.datetime64("NaT", "s")

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def date_part_keys(parts: Sequence[str]) -> list[str]:
    """The keys :func:`expand_dates` returns for ``parts``, in output order.

    >>> date_part_keys(["hour", "cyclical", "year"])
    ['year', 'hour', 'month_sin', 'month_cos', 'dow_sin', 'dow_cos', 'hour_sin', 'hour_cos']
    """
    unknown = sorted(set(parts) - set(DATE_PARTS))
    if unknown:
        raise ValueError(f"unknown date part(s) {unknown}; choose from {list(DATE_PARTS)}")
    keys = [p for p in DATE_PARTS if p in parts and p != "cyclical"]
    if "cyclical" in parts:
        cycles = ["month", "dow"] + (["hour"] if "hour" in parts else [])
        keys += [f"{cycle}_{fn}" for cycle in cycles for fn in ("sin", "cos")]
    return keys


def date_feature_names(column: str, parts: Sequence[str]) -> list[str]:
    """The names of the columns that replace date ``column``: ``{column}_{key}``."""
    return [f"{column}_{key}" for key in date_part_keys(parts)]


def expand_dates(values: Any, parts: Sequence[str]) -> dict[str, FloatArray]:
    """Decompose dates into float64 arrays keyed as :func:`date_part_keys` says.

    ``values`` is a 1-d array (or list) of ISO 8601 strings, ``datetime``/``date`` objects or a
    ``datetime64`` array; None, NaN, NaT and empty strings are missing. A value that is not a
    date raises :class:`~mlstrata.errors.DataError` naming it.
    """
    keys = date_part_keys(parts)
    stamps = _to_seconds(values)
    missing = np.isnat(stamps)
    filled = np.where(missing, np.datetime64(0, "s"), stamps)
    raw = _calendar(filled)
    out: dict[str, FloatArray] = {}
    for key in keys:
        cycle, _, fn = key.partition("_")
        if fn:
            angle = 2.0 * math.pi * raw[cycle] / _PERIODS[cycle]
            column = np.sin(angle) if fn == "sin" else np.cos(angle)
        else:
            column = raw[key] + (1.0 if key in ("month", "day") else 0.0)
        out[key] = np.where(missing, np.nan, column)
    return out


def _calendar(stamps: np.ndarray[Any, np.dtype[np.datetime64]]) -> dict[str, FloatArray]:
    """Zero-based calendar fields of (non-missing) second-resolution timestamps."""
    days = stamps.astype("datetime64[D]")
    months = stamps.astype("datetime64[M]")
    day_number = days.astype(np.int64)
    seconds_in_day = (stamps - days).astype(np.int64)
    return {
        "year": months.astype("datetime64[Y]").astype(np.float64) + 1970.0,
        "month": (months.astype(np.int64) % 12).astype(np.float64),
        "day": (days - months).astype(np.int64).astype(np.float64),
        # 1970-01-01 was a Thursday (Monday = 0, so Thursday = 3)
        "dayofweek": ((day_number + 3) % 7).astype(np.float64),
        "dow": ((day_number + 3) % 7).astype(np.float64),
        "hour": (seconds_in_day // 3600).astype(np.float64),
    }


def _to_seconds(values: Any) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """``values`` as a datetime64[s] array, NaT where missing."""
    array = np.asarray(values)
    if array.ndim != 1:
        array = array.reshape(-1)
    if array.dtype.kind == "M":
        return array.astype("datetime64[s]")
    cache: dict[Any, np.datetime64] = {}
    out = np.empty(len(array), dtype="datetime64[s]")
    for i, value in enumerate(array.tolist()):
        if value not in cache:
            cache[value] = parse_date(value)
        out[i] = cache[value]
    return out


def parse_date(value: Any) -> np.datetime64:
    """One date or timestamp (ISO 8601 text, datetime, date, datetime64) as datetime64[s].

    Missing values (None, NaN, NaT, empty text) give NaT; anything else that is not a date
    raises :class:`~mlstrata.errors.DataError` naming the value.

    >>> parse_date("2024-03-15T18:30:00+02:00")
    np.datetime64('2024-03-15T16:30:00')
    """
    if isinstance(value, str):
        if not value.strip():
            return _NAT
        try:
            value = _dt.datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise DataError(f"{value!r} is not an ISO 8601 date or timestamp "
                            "(expected e.g. 2024-03-15 or 2024-03-15T18:30:00)") from exc
    if _is_missing(value):
        return _NAT
    if isinstance(value, np.datetime64):
        seconds: np.datetime64 = value.astype("datetime64[s]")
        return seconds
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        return np.datetime64(value.replace(microsecond=0), "s")
    if isinstance(value, _dt.date):
        return np.datetime64(_dt.datetime(value.year, value.month, value.day), "s")
    raise DataError(f"{value!r} ({type(value).__name__}) is not a date or timestamp")


def _is_missing(value: Any) -> bool:
    """None, NaN, NaT and other values unequal to themselves (a NA whose truth is undefined)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True
