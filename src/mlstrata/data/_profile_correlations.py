"""Correlations of a profile: Pearson and Spearman between numbers, Cramér's V between categories,
and each feature's association with the target.

They are computed on a reproducible sample: when the table has more than :data:`SAMPLE_ROWS`
(100k) rows, ``USING SAMPLE reservoir(SAMPLE_ROWS ROWS) REPEATABLE (seed)`` draws the same rows
for the same data and seed (otherwise every row is used). 100k rows pin a correlation down to
about ±0.006 (its standard error is at most 1/√n), far finer than the two decimals shown, at half
the cost of 200k. The sample is a temporary DuckDB table; the rank transform behind Spearman is
done by Arrow's sort kernel on the sample's numeric columns (faster than SQL window functions),
and every correlation is then one DuckDB aggregate. Pairs use the rows where both values are
present; Spearman ranks each column over its own non-missing values (ties get their average
rank).

Cramér's V is the bias-corrected form (Bergsma, 2013), so independent columns score near 0 on
small samples too. A numeric feature and a categorical column are compared with the correlation
ratio η (the share of the number's spread explained by the categories, square-rooted).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ._profile_stats import ColumnProfile, plain
from .engine import quote_identifier
from .target import TargetInfo, value_sql

__all__ = [
    "MAX_LEVELS",
    "SAMPLE_ROWS",
    "Association",
    "Correlations",
    "Matrix",
    "average_ranks",
    "compute_correlations",
    "cramers_v",
]

SAMPLE_ROWS = 100_000
MAX_LEVELS = 50
"""Text and boolean columns with at most this many distinct values count as categorical."""
MAX_MATRIX_COLUMNS = 30
_SAMPLE = "_mlstrata_profile_sample"
_RANKS = "_mlstrata_profile_ranks"
_ETA = "correlation_ratio"


@dataclass(frozen=True)
class Matrix:
    """A symmetric matrix of one association measure between named columns (``None``: undefined)."""

    method: str
    columns: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]

    def get(self, a: str, b: str) -> float | None:
        """The value for the pair ``(a, b)``, or ``None`` when either is not in the matrix."""
        if a not in self.columns or b not in self.columns:
            return None
        return self.values[self.columns.index(a)][self.columns.index(b)]

    def pairs(self) -> Iterator[tuple[str, str, float | None]]:
        """Each unordered pair of distinct columns once, with its value."""
        for (i, a), (j, b) in itertools.combinations(enumerate(self.columns), 2):
            yield a, b, self.values[i][j]


@dataclass(frozen=True)
class Association:
    """How strongly one feature alone relates to the target (0 = not at all, 1 = determines it)."""

    feature: str
    measure: str
    value: float | None


@dataclass(frozen=True)
class Correlations:
    """The correlation matrices, the sample they were computed on and the target associations."""

    sample_rows: int
    sampled: bool
    seed: int
    pearson: Matrix
    spearman: Matrix
    cramers_v: Matrix
    target: tuple[Association, ...] = ()


def cramers_v(table: Any) -> float | None:
    """Bias-corrected Cramér's V of a contingency table (``None`` when it is undefined).

    >>> cramers_v([[50, 0], [0, 50]])
    1.0
    >>> cramers_v([[25, 25], [25, 25]])
    0.0
    """
    observed = np.asarray(table, dtype=float)
    observed = observed[observed.sum(axis=1) > 0][:, observed.sum(axis=0) > 0]
    n = observed.sum()
    if observed.ndim != 2 or min(observed.shape) < 2 or n < 2:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    phi2 = float(((observed - expected) ** 2 / expected).sum()) / n
    r, k = observed.shape
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corr, k_corr = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corr - 1, r_corr - 1)
    return round(math.sqrt(phi2 / denominator), 12) if denominator > 0 else None


def compute_correlations(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    columns: Sequence[ColumnProfile],
    rows: int,
    target: TargetInfo | None = None,
    seed: int = 0,
    sample_rows: int = SAMPLE_ROWS,
) -> Correlations:
    """All correlation matrices and target associations, on a reproducible sample of at most
    ``sample_rows`` rows."""
    numeric = [c for c in columns if c.is_numeric and c.distinct >= 2][:MAX_MATRIX_COLUMNS]
    categorical = [c for c in columns if _is_categorical(c, target)][:MAX_MATRIX_COLUMNS]
    chosen = {c.name: c for c in numeric + categorical}
    sampled = rows > sample_rows
    try:
        size = _make_sample(con, source_sql, list(chosen.values()), sample_rows if sampled else 0,
                            seed)
        names = [c.name for c in numeric]
        pearson = _pearson(con, _SAMPLE, names, "pearson")
        spearman = _spearman(con, names)
        levels = [c.name for c in categorical]
        cramer = _matrix("cramers_v", levels, lambda a, b: _cramers_v(con, a, b))
        associations = _target_associations(con, chosen, target, pearson, spearman, cramer)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_SAMPLE}")
    return Correlations(size, sampled, seed, pearson, spearman, cramer, associations)


def _is_categorical(column: ColumnProfile, target: TargetInfo | None) -> bool:
    if target is not None and column.name == target.column:
        return target.task in ("binary", "multiclass")
    return column.type in ("text", "boolean") and 2 <= column.distinct <= MAX_LEVELS


def _make_sample(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    columns: Sequence[ColumnProfile],
    size: int,
    seed: int,
) -> int:
    """Copy the chosen columns into a temporary table: all rows, or ``size`` of them when > 0."""
    select = ", ".join(f"{value_sql(c.info)} AS {quote_identifier(c.name)}" for c in columns)
    clause = f" USING SAMPLE reservoir({int(size)} ROWS) REPEATABLE ({int(seed)})" if size else ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SAMPLE} AS "
                f"SELECT {select or '1 AS _'} FROM ({source_sql}){clause}")
    return int(con.execute(f"SELECT count(*) FROM {_SAMPLE}").fetchall()[0][0])


def _matrix(method: str, names: Sequence[str], measure: Any) -> Matrix:
    """Fill a symmetric matrix with ``measure(a, b)`` for each pair and 1.0 on the diagonal."""
    values: dict[tuple[str, str], float | None] = {}
    for a, b in itertools.combinations(names, 2):
        values[a, b] = values[b, a] = measure(a, b)
    return Matrix(method, tuple(names), tuple(
        tuple(1.0 if a == b else values[a, b] for b in names) for a in names))


def _pearson(
    con: duckdb.DuckDBPyConnection, table: str, names: Sequence[str], method: str
) -> Matrix:
    """Pearson correlation of every pair in one query over ``table``."""
    pairs = list(itertools.combinations(names, 2))
    found: list[Any] = []
    if pairs:
        select = ", ".join(f"corr({quote_identifier(a)}, {quote_identifier(b)})" for a, b in pairs)
        found = list(con.execute(f"SELECT {select} FROM {table}").fetchall()[0])
    by_pair = {pair: plain(value) for pair, value in zip(pairs, found, strict=True)}
    return _matrix(method, names, lambda a, b: by_pair[a, b])


def _spearman(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> Matrix:
    """Pearson correlation of average ranks; the sample's columns are ranked by Arrow."""
    if len(names) < 2:
        return _matrix("spearman", names, lambda a, b: None)
    sample = con.sql(f"SELECT {', '.join(map(quote_identifier, names))} FROM {_SAMPLE}")
    table = sample.to_arrow_table()
    ranks = pa.table({name: average_ranks(table.column(name)) for name in names})
    con.register(_RANKS, ranks)
    try:
        return _pearson(con, _RANKS, names, "spearman")
    finally:
        con.unregister(_RANKS)


def average_ranks(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Ranks from 1 of the non-missing values (ties share their average rank); missing stays null.

    >>> average_ranks(pa.array([3.0, None, 1.0, 3.0])).to_pylist()
    [2.5, None, 1.0, 2.5]
    """
    import pyarrow.compute as pc

    low = pc.rank(values, sort_keys="ascending", tiebreaker="min").cast(pa.float64())
    high = pc.rank(values, sort_keys="ascending", tiebreaker="max").cast(pa.float64())
    middle = pc.divide(pc.add(low, high), 2.0)
    return pc.if_else(pc.is_null(values), pa.scalar(None, pa.float64()), middle)


def _cramers_v(con: duckdb.DuckDBPyConnection, a: str, b: str) -> float | None:
    qa, qb = quote_identifier(a), quote_identifier(b)
    cells = con.execute(
        f"SELECT {qa}, {qb}, count(*) FROM {_SAMPLE} "
        f"WHERE {qa} IS NOT NULL AND {qb} IS NOT NULL GROUP BY ALL"
    ).fetchall()
    rows = {value: i for i, value in enumerate(dict.fromkeys(r[0] for r in cells))}
    cols = {value: i for i, value in enumerate(dict.fromkeys(r[1] for r in cells))}
    table = np.zeros((len(rows), len(cols)))
    for x, y, n in cells:
        table[rows[x], cols[y]] = n
    return cramers_v(table)


def _correlation_ratio(con: duckdb.DuckDBPyConnection, number: str, groups: str) -> float | None:
    """η: the square root of the share of ``number``'s variance explained by ``groups``."""
    qn, qg = quote_identifier(number), quote_identifier(groups)
    stats = np.array(con.execute(
        f"SELECT count({qn}), avg({qn}), var_pop({qn}) FROM {_SAMPLE} "
        f"WHERE {qn} IS NOT NULL AND {qg} IS NOT NULL GROUP BY {qg}"
    ).fetchall(), dtype=float).reshape(-1, 3)
    counts, means, variances = stats.T
    if counts.sum() < 2:
        return None
    grand = float((counts * means).sum() / counts.sum())
    between = float((counts * (means - grand) ** 2).sum())
    total = between + float((counts * variances).sum())
    return round(math.sqrt(between / total), 12) if total > 0 else None


def _target_associations(
    con: duckdb.DuckDBPyConnection,
    chosen: dict[str, ColumnProfile],
    target: TargetInfo | None,
    pearson: Matrix,
    spearman: Matrix,
    cramer: Matrix,
) -> tuple[Association, ...]:
    """Each sampled feature's strongest single association with the target."""
    if target is None or target.task is None or target.column not in chosen:
        return ()
    goal, classify = target.column, target.task != "regression"
    found = []
    for name, column in chosen.items():
        if name == goal:
            continue
        if classify and column.is_numeric:
            found.append(Association(name, _ETA, _correlation_ratio(con, name, goal)))
        elif classify:
            found.append(Association(name, "cramers_v", cramer.get(name, goal)))
        elif column.is_numeric:
            found.append(_strongest(name, pearson.get(name, goal), spearman.get(name, goal)))
        else:
            found.append(Association(name, _ETA, _correlation_ratio(con, goal, name)))
    return tuple(sorted(found, key=lambda a: -(a.value or 0.0)))


def _strongest(name: str, pearson: float | None, spearman: float | None) -> Association:
    if pearson is None or (spearman is not None and abs(spearman) > abs(pearson)):
        return Association(name, "spearman", None if spearman is None else abs(spearman))
    return Association(name, "pearson", abs(pearson))
