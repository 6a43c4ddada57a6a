"""Events as River feature dicts: numbers as floats, categories as text, dates as their parts.

A date is decomposed by :func:`mlstrata.runtime.dates.expand_dates` — the function batch
training and the serving runtime use — so an online model sees the same parts a batch model
does. A missing value leaves its key out: the scaler and the one-hot encoder skip it (a linear
model then reads it as the running mean). Dates are expanded a whole batch of events at a time,
which is what makes a replay of millions of events affordable.

>>> from mlstrata.contract import Contract
>>> from mlstrata.online.spec import build_spec
>>> contract = Contract.model_validate({"columns": {"n": {"type": "integer"},
...     "town": {"type": "text"}, "day": {"type": "date"}, "y": {"type": "float"}}})
>>> spec = build_spec("m", contract, "y", "linear_regression", date_parts=["month"])
>>> featurize(spec, [{"n": 3, "town": "Vigo", "day": "2024-03-15"}, {"n": None, "day": None}])
[{'n': 3.0, 'town': 'Vigo', 'day_month': 3.0}, {}]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..runtime.dates import expand_dates

if TYPE_CHECKING:
    from .spec import OnlineSpec

__all__ = ["featurize"]


def featurize(spec: OnlineSpec, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One feature dict per record, in order (records already checked against the contract)."""
    rows = [_plain(spec, record) for record in records]
    if len(records) == 1:  # a live prediction: the same expansion, cached per date text
        for column in spec.dates:
            rows[0].update(_date_parts(column, records[0].get(column), spec.date_parts))
        return rows
    for column in spec.dates:
        parts = expand_dates([record.get(column) for record in records], spec.date_parts)
        for key, values in parts.items():
            name = f"{column}_{key}"
            for row, value in zip(rows, values.tolist(), strict=True):
                if value == value:  # NaN: the date is missing
                    row[name] = value
    return rows


def _date_parts(column: str, value: Any, parts: tuple[str, ...]) -> dict[str, float]:
    """The date features of one value, exactly as the batch path computes them (the very same
    call on a one-element list); repeated texts come from a cache (a live stream repeats
    dates, and numpy costs ~100 µs per call on one value)."""
    if isinstance(value, str):
        return dict(_cached_parts(column, value, parts))
    return dict(_expanded(column, value, parts))


@functools.lru_cache(maxsize=8192)
def _cached_parts(column: str, value: str, parts: tuple[str, ...]) -> tuple[tuple[str, float],
                                                                            ...]:
    return _expanded(column, value, parts)


def _expanded(column: str, value: Any, parts: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    expanded = expand_dates([value], parts)
    return tuple((f"{column}_{key}", found) for key, values in expanded.items()
                 if (found := values.tolist()[0]) == found)  # NaN: the date is missing


def _plain(spec: OnlineSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers and categories of one record, missing values left out."""
    row: dict[str, Any] = {}
    for column in spec.numbers:
        value = record.get(column)
        if value is not None:
            row[column] = float(value)
    for column in spec.categories:
        value = record.get(column)
        if value is not None:
            row[column] = str(value)
    return row
