"""Per-column statistics of a profile, computed out of core by DuckDB.

One wide aggregate query reads every column once for counts, missing values, distinct values,
min/max/mean/std/skewness, zeros and quantiles; then one ``GROUP BY`` per column gives its top
values and one its histogram (numbers in :data:`BINS` equal-width bins, dates by month or year),
with outliers beyond Tukey's fences counted in the same pass. Nothing is fetched per row, so
memory stays bounded by DuckDB's limit whatever the table size.

Distinct counts and quantiles are exact up to :data:`EXACT_ROWS` rows and approximate beyond
(HyperLogLog and t-digest), since exact ones would hold every value in memory.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..config import ColumnType
from .engine import quote_identifier
from .target import value_sql
from .types import ColumnInfo

__all__ = [
    "BINS",
    "EXACT_ROWS",
    "ColumnProfile",
    "Duplicates",
    "Histogram",
    "ValueCount",
    "count_duplicates",
    "plain",
    "profile_columns",
]

BINS = 20
EXACT_ROWS = 1_000_000
TOP_VALUES = 10
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_NUMERIC = ("integer", "float")
_TEMPORAL = ("date", "timestamp")


@dataclass(frozen=True)
class ValueCount:
    """A value and how many rows hold it."""

    value: Any
    count: int


@dataclass(frozen=True)
class Histogram:
    """Bar heights of a distribution: numeric bins (``edges`` has one more entry than ``counts``)
    or labelled periods (``labels``, one per count, for dates)."""

    counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnProfile:
    """Everything the profile says about one column. Missing means NULL, NaN or ±inf."""

    name: str
    type: ColumnType
    engine_type: str
    count: int
    missing: int
    missing_pct: float
    distinct: int
    distinct_exact: bool
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    skewness: float | None = None
    quantiles: Mapping[str, float | None] = field(default_factory=dict)
    zeros: int | None = None
    outliers: int | None = None
    far_outliers: int | None = None
    top_values: tuple[ValueCount, ...] = ()
    histogram: Histogram | None = None

    @property
    def info(self) -> ColumnInfo:
        """The column's name and types, as the engine helpers take them."""
        return ColumnInfo(self.name, self.type, self.engine_type)

    @property
    def is_numeric(self) -> bool:
        """Whether the column holds integers or floats."""
        return self.type in _NUMERIC

    @property
    def unique_share(self) -> float:
        """Distinct values per non-missing value (1.0 when every value is different)."""
        return self.distinct / self.count if self.count else 0.0


@dataclass(frozen=True)
class Duplicates:
    """Rows identical to an earlier row, in every column."""

    count: int
    pct: float


def plain(value: Any) -> Any:
    """A JSON-ready form of a value DuckDB returned: dates as ISO text, NaN/±inf as ``None``.

    >>> plain(dt.date(2024, 1, 31)), plain(float("nan")), plain(decimal.Decimal("1.5"))
    ('2024-01-31', None, 1.5)
    """
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def profile_columns(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    columns: Sequence[ColumnInfo],
    rows: int,
    on_column: Callable[[str], None] = lambda name: None,
) -> list[ColumnProfile]:
    """Profile every column of ``source_sql``; ``on_column`` is called as each one finishes."""
    exact = rows <= EXACT_ROWS
    summaries = _summaries(con, source_sql, columns, exact)
    profiles = []
    for column in columns:
        profiles.append(_complete(con, source_sql, column, summaries[column.name], rows, exact))
        on_column(column.name)
    return profiles


def count_duplicates(
    con: duckdb.DuckDBPyConnection, source_sql: str, columns: Sequence[ColumnInfo], rows: int
) -> Duplicates:
    """Count rows repeating an earlier row, through a 64-bit hash of each whole row."""
    if not rows or not columns:
        return Duplicates(0, 0.0)
    hashed = ", ".join(quote_identifier(c.name) for c in columns)
    distinct = con.execute(f"SELECT count(DISTINCT hash({hashed})) FROM ({source_sql})").fetchall()
    count = rows - int(distinct[0][0])
    return Duplicates(count, 100.0 * count / rows)


def _aggregates(column: ColumnInfo, exact: bool) -> dict[str, str]:
    v = value_sql(column)
    stats = {"count": f"count({v})",
             "distinct": f"count(DISTINCT {v})" if exact else f"approx_count_distinct({v})"}
    if column.type in _NUMERIC:
        qs = ", ".join(str(q) for q in QUANTILES)
        quantile = "quantile_cont" if exact else "approx_quantile"
        stats |= {"min": f"min({v})", "max": f"max({v})", "mean": f"avg({v})",
                  "std": f"stddev_samp({v})", "skewness": f"skewness({v})",
                  "zeros": f"count_if({v} = 0)", "quantiles": f"{quantile}({v}, [{qs}])"}
    elif column.type == "boolean":
        stats["mean"] = f"avg(CAST({v} AS INTEGER))"
    elif column.type in _TEMPORAL:
        stats |= {"min": f"min({v})", "max": f"max({v})"}
    return stats


def _summaries(
    con: duckdb.DuckDBPyConnection, source_sql: str, columns: Sequence[ColumnInfo], exact: bool
) -> dict[str, dict[str, Any]]:
    """One query over the whole table: every column's aggregates side by side."""
    plans = {c.name: _aggregates(c, exact) for c in columns}
    expressions = [sql for plan in plans.values() for sql in plan.values()]
    if not expressions:
        return {}
    values = iter(con.execute(f"SELECT {', '.join(expressions)} FROM ({source_sql})").fetchall()[0])
    return {name: {stat: next(values) for stat in plan} for name, plan in plans.items()}


def _complete(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    column: ColumnInfo,
    summary: Mapping[str, Any],
    rows: int,
    exact: bool,
) -> ColumnProfile:
    count, distinct = int(summary["count"]), int(summary["distinct"])
    found_quantiles = summary.get("quantiles") or [None] * len(QUANTILES)
    quantiles = ({f"p{round(q * 100)}": plain(x)
                  for q, x in zip(QUANTILES, found_quantiles, strict=True)}
                 if column.type in _NUMERIC else {})
    histogram, outliers, far = None, None, None
    if count and column.type in _NUMERIC:
        histogram, outliers, far = _numeric_histogram(con, source_sql, column, summary, quantiles)
    elif count and column.type in _TEMPORAL:
        histogram = _period_histogram(con, source_sql, column, summary["min"], summary["max"])
    nearly_unique = distinct > TOP_VALUES and distinct >= 0.95 * count
    top = () if nearly_unique else _top_values(con, source_sql, column)
    return ColumnProfile(
        column.name, column.type, column.engine_type, count, rows - count,
        100.0 * (rows - count) / rows if rows else 0.0, distinct, exact,
        plain(summary.get("min")), plain(summary.get("max")), plain(summary.get("mean")),
        plain(summary.get("std")), plain(summary.get("skewness")), quantiles,
        summary.get("zeros"), outliers, far, top, histogram,
    )


def _top_values(
    con: duckdb.DuckDBPyConnection, source_sql: str, column: ColumnInfo
) -> tuple[ValueCount, ...]:
    v = value_sql(column)
    found = con.execute(
        f"SELECT {v} AS value, count(*) AS n FROM ({source_sql}) WHERE {v} IS NOT NULL "
        f"GROUP BY 1 ORDER BY n DESC, value LIMIT {TOP_VALUES}"
    ).fetchall()
    return tuple(ValueCount(plain(value), int(n)) for value, n in found)


def _numeric_histogram(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    column: ColumnInfo,
    summary: Mapping[str, Any],
    quantiles: Mapping[str, float | None],
) -> tuple[Histogram, int | None, int | None]:
    """Equal-width bins (one per integer when the range is small) and Tukey outlier counts
    (``None`` when the interquartile range is zero)."""
    low, high = float(summary["min"]), float(summary["max"])
    if column.type == "integer" and high - low < BINS:
        start, width, bins = low - 0.5, 1.0, int(high - low) + 1
    else:
        bins = BINS if high > low else 1
        start, width = low, (high - low) / bins if high > low else 1.0
    q1, q3 = quantiles.get("p25"), quantiles.get("p75")
    q1, q3 = low if q1 is None else q1, high if q3 is None else q3
    v = value_sql(column)
    found = con.execute(
        f"SELECT least(greatest(CAST(floor(({v} - {_sql(start)}) / {_sql(width)}) AS BIGINT), "
        f"0), {bins - 1}) AS bin, count(*), {_outside(v, q1, q3, 1.5)}, {_outside(v, q1, q3, 3)} "
        f"FROM ({source_sql}) WHERE {v} IS NOT NULL GROUP BY bin"
    ).fetchall()
    counts = [0] * bins
    for bin_, n, _, _ in found:
        counts[int(bin_)] = int(n)
    edges = tuple(start + i * width for i in range(bins + 1))
    if q3 <= q1:  # Tukey's fences collapse: every value off the quartile would count
        return Histogram(tuple(counts), edges), None, None
    outliers, far = (sum(int(r[i]) for r in found) for i in (2, 3))
    return Histogram(tuple(counts), edges), outliers, far


def _outside(v: str, q1: float, q3: float, k: float) -> str:
    """SQL counting values beyond Tukey's fences ``k`` interquartile ranges from the quartiles."""
    iqr = q3 - q1
    return f"count_if({v} < {_sql(q1 - k * iqr)} OR {v} > {_sql(q3 + k * iqr)})"


def _sql(number: float) -> str:
    return f"({number!r})"


def _period_histogram(
    con: duckdb.DuckDBPyConnection, source_sql: str, column: ColumnInfo, low: Any, high: Any
) -> Histogram:
    """Counts per month, or per year when the dates span more than 20 years."""
    months = (high.year - low.year) * 12 + high.month - low.month
    part, fmt = ("month", "%Y-%m") if months <= 240 else ("year", "%Y")
    v = value_sql(column)
    found = con.execute(
        f"SELECT strftime(date_trunc('{part}', {v}), '{fmt}') AS period, count(*) "
        f"FROM ({source_sql}) WHERE {v} IS NOT NULL GROUP BY period ORDER BY period"
    ).fetchall()
    return Histogram(tuple(int(n) for _, n in found), labels=tuple(str(p) for p, _ in found))
