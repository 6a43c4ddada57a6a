"""Reproducible train/held-out assignments: random, stratified, time-ordered and grouped.

One SQL builder serves both the sealed test set set aside at ingest (:func:`holdout_query`) and
the train/validation split recorded by ``mlstrata split``. Assignments depend only on the rows'
positions, their values and the seed — never on the engine's hash function or thread count — so
the same rows and seed give the same assignment on any machine and DuckDB version.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Literal, get_args

from ..errors import DataError
from .engine import quote_identifier

__all__ = ["SplitStrategy", "holdout_query"]

SplitStrategy = Literal["random", "stratified", "time", "group"]

_ROW = "__mlstrata_row"
_KEY = "__mlstrata_key"
_HASH = "__mlstrata_hash"
_RANK = "__mlstrata_rank"
_COUNT = "__mlstrata_count"
_ROLE = {"stratified": "target", "time": "time", "group": "group"}


def holdout_query(
    source: str,
    *,
    strategy: SplitStrategy,
    fraction: float,
    seed: int,
    target: str | None = None,
    time: str | None = None,
    group: str | None = None,
    columns: Sequence[str] | None = None,
) -> str:
    """A DuckDB query over table ``source``: all its columns plus BOOLEAN ``__holdout``, in order.

    ``source`` is a DuckDB table name inserted verbatim (quote it with ``quote_identifier`` when
    needed); its ``rowid`` is the row identity. ``random`` holds out ``round(fraction * rows)``
    rows, ``stratified`` that many within each ``target`` class, ``time`` the most recent rows by
    ``time`` (ties: later rows first), ``group`` whole ``group`` values, chosen in seeded hash
    order until about ``fraction`` of the rows. Pass ``columns`` (the table's column names) to
    have a missing column reported as a :class:`DataError` before any SQL runs.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    >>> rows = con.execute(holdout_query("t", strategy="random", fraction=0.3, seed=0)).fetchall()
    >>> sum(held for _, held in rows), [x for x, _ in rows] == list(range(10))
    (3, True)
    """
    numbered = f"SELECT *, rowid AS {_ROW} FROM {source}"
    return assignment_query(
        numbered, strategy=strategy, fraction=fraction, seed=seed,
        column=strategy_column(strategy, target=target, time=time, group=group, columns=columns),
    )


def strategy_column(
    strategy: str,
    *,
    target: str | None = None,
    time: str | None = None,
    group: str | None = None,
    columns: Sequence[str] | None = None,
) -> str | None:
    """The column ``strategy`` works on, checked to be given and (with ``columns``) to exist."""
    if strategy not in get_args(SplitStrategy):
        raise DataError(
            f"split strategy '{strategy}' is unknown{_hint(strategy, get_args(SplitStrategy))}; "
            f"use one of: {', '.join(get_args(SplitStrategy))}"
        )
    if strategy == "random":
        return None
    role = _ROLE[strategy]
    column = {"target": target, "time": time, "group": group}[role]
    if column is None:
        raise DataError(
            f"split strategy '{strategy}' needs a {role} column; name it with --{role} COL"
        )
    if columns is not None and column not in columns:
        raise DataError(
            f"{role} column '{column}' does not exist{_hint(column, columns)}; "
            f"choose one of: {', '.join(columns)}"
        )
    return column


def assignment_query(
    numbered_sql: str, *, strategy: str, fraction: float, seed: int, column: str | None
) -> str:
    """Add ``__holdout`` to ``numbered_sql``, whose rows carry their position in ``__mlstrata_row``.

    The result keeps every other column, drops the row number and is ordered by it.
    """
    if not 0 < fraction < 1:
        raise DataError(
            f"held-out fraction {fraction} is outside (0, 1); give a share such as 0.1 or 0.2"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"seed {seed!r} is not an integer; give a whole number such as 0")
    if column is None:
        return _ranked_query(numbered_sql, fraction, seed, f"ORDER BY {_HASH}, {_ROW}", "")
    quoted = quote_identifier(column)
    if strategy == "group":
        return _group_query(numbered_sql, quoted, fraction, seed)
    if strategy == "time":
        order = f"ORDER BY {quoted} DESC NULLS LAST, {_ROW} DESC"
        return _ranked_query(numbered_sql, fraction, seed, order, "")
    partition = f"PARTITION BY {quoted}"
    return _ranked_query(numbered_sql, fraction, seed, f"{partition} ORDER BY {_HASH}, {_ROW}",
                         partition)


def _ranked_query(numbered_sql: str, fraction: float, seed: int, window: str, count_window: str
                  ) -> str:
    """Hold out the first ``round(fraction * n)`` rows of each ``window`` of ``n`` rows."""
    return f"""
WITH numbered AS ({numbered_sql}),
hashed AS (SELECT *, {_hash_sql(f"CAST({_ROW} AS VARCHAR)", seed)} AS {_HASH} FROM numbered),
ranked AS (
    SELECT *, row_number() OVER ({window}) AS {_RANK}, count(*) OVER ({count_window}) AS {_COUNT}
    FROM hashed
)
SELECT * EXCLUDE ({_ROW}, {_HASH}, {_RANK}, {_COUNT}),
    {_RANK} <= round({fraction!r} * {_COUNT}) AS __holdout
FROM ranked ORDER BY {_ROW}"""


def _group_query(numbered_sql: str, quoted: str, fraction: float, seed: int) -> str:
    """Whole groups in seeded hash order, each held out while its midpoint is under the quota."""
    key = f"coalesce('v' || CAST({quoted} AS VARCHAR), 'n')"
    return f"""
WITH numbered AS ({numbered_sql}),
keyed AS (SELECT *, {key} AS {_KEY} FROM numbered),
groups AS (
    SELECT {_KEY}, count(*) AS {_COUNT}, {_hash_sql(_KEY, seed)} AS {_HASH}
    FROM keyed GROUP BY {_KEY}
),
chosen AS (
    SELECT {_KEY},
        sum({_COUNT}) OVER (ORDER BY {_HASH}, {_KEY} ROWS UNBOUNDED PRECEDING)
            - {_COUNT} / 2.0 < {fraction!r} * sum({_COUNT}) OVER () AS __holdout
    FROM groups
)
SELECT keyed.* EXCLUDE ({_ROW}, {_KEY}), chosen.__holdout
FROM keyed JOIN chosen USING ({_KEY}) ORDER BY {_ROW}"""


def _hash_sql(text_sql: str, seed: int) -> str:
    """A 60-bit integer from the MD5 of ``seed:text``, the same on every machine and version."""
    return f"CAST('0x' || substr(md5('{seed}:' || {text_sql}), 1, 15) AS BIGINT)"


def _hint(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
