"""Date decomposition shared by training and serving: values, missing values, errors, purity."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlstrata.errors import DataError
from mlstrata.runtime.dates import date_feature_names, date_part_keys, expand_dates

ALL_PARTS = ["year", "month", "day", "dayofweek", "hour", "cyclical"]


def test_parts_of_known_dates() -> None:
    parts = expand_dates(np.array(["2024-02-29", "2023-12-31T23:15:00"]), ALL_PARTS)
    assert parts["year"].tolist() == [2024.0, 2023.0]
    assert parts["month"].tolist() == [2.0, 12.0]
    assert parts["day"].tolist() == [29.0, 31.0]
    assert parts["dayofweek"].tolist() == [3.0, 6.0]  # Thursday, Sunday (Monday = 0)
    assert parts["hour"].tolist() == [0.0, 23.0]
    assert all(v.dtype == np.float64 for v in parts.values())


def test_cyclical_parts_put_december_next_to_january() -> None:
    parts = expand_dates(np.array(["2024-01-15", "2024-12-15", "2024-07-15"]), ["cyclical"])
    assert list(parts) == ["month_sin", "month_cos", "dow_sin", "dow_cos"]
    points = np.column_stack([parts["month_sin"], parts["month_cos"]])
    assert np.linalg.norm(points[0] - points[1]) < np.linalg.norm(points[0] - points[2])
    assert np.allclose(points[0], [0.0, 1.0])  # January is angle 0
    assert np.allclose(np.hypot(parts["dow_sin"], parts["dow_cos"]), 1.0)


def test_hour_cycle_only_when_hour_is_asked_for() -> None:
    assert "hour_sin" not in date_part_keys(["cyclical"])
    assert date_part_keys(["cyclical", "hour"])[-2:] == ["hour_sin", "hour_cos"]


@pytest.mark.parametrize("missing", [None, "", "  ", float("nan"), np.datetime64("NaT")])
def test_missing_values_give_nan_in_every_part(missing: object) -> None:
    parts = expand_dates(np.array(["2024-03-01", missing], dtype=object), ALL_PARTS)
    assert all(np.isnan(values[1]) and not np.isnan(values[0]) for values in parts.values())


def test_datetime64_arrays_objects_and_strings_agree() -> None:
    stamp = dt.datetime(2021, 6, 5, 14, 30)
    as_string = expand_dates(np.array(["2021-06-05T14:30:00"]), ALL_PARTS)
    as_object = expand_dates(np.array([stamp], dtype=object), ALL_PARTS)
    as_numpy = expand_dates(np.array(["2021-06-05T14:30"], dtype="datetime64[us]"), ALL_PARTS)
    for key, values in as_string.items():
        assert values.tolist() == as_object[key].tolist() == as_numpy[key].tolist()
    assert expand_dates([dt.date(2021, 6, 5)], ["day"])["day"].tolist() == [5.0]


def test_timezone_aware_values_are_converted_to_utc() -> None:
    parts = expand_dates(np.array(["2024-01-01T01:30:00+02:00", "2024-01-01T10:00:00Z"]),
                         ["year", "hour"])
    assert parts["year"].tolist() == [2023.0, 2024.0]
    assert parts["hour"].tolist() == [23.0, 10.0]


def test_a_value_that_is_not_a_date_is_named() -> None:
    with pytest.raises(DataError, match=r"'31/12/2024' is not an ISO 8601 date"):
        expand_dates(np.array(["2024-01-01", "31/12/2024"]), ["year"])
    with pytest.raises(DataError, match=r"42 \(int\) is not a date"):
        expand_dates(np.array([42], dtype=object), ["year"])


def test_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown date part\(s\) \['week'\]"):
        expand_dates(np.array(["2024-01-01"]), ["year", "week"])


def test_feature_names_follow_key_order() -> None:
    assert date_feature_names("signup", ["hour", "year"]) == ["signup_year", "signup_hour"]


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 12, 31)))
def test_parts_match_python_datetime(stamp: dt.datetime) -> None:
    parts = expand_dates(np.array([stamp.isoformat()]), ALL_PARTS)
    assert parts["year"][0] == stamp.year and parts["month"][0] == stamp.month
    assert parts["day"][0] == stamp.day and parts["hour"][0] == stamp.hour
    assert parts["dayofweek"][0] == stamp.weekday()


def test_runtime_dates_import_no_training_libraries() -> None:
    code = ("import sys, mlstrata.runtime.dates; "
            "print(sorted(m for m in ('pandas', 'sklearn', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
