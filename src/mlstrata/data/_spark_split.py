"""The held-out rule of :mod:`.split` computed in Spark without a window over all rows.

:func:`.split.assignment_query` states the rule in SQL whose windows over every row (a rank in
hash order, a running count over the strata) Spark would run in one task, on one machine. Here
the same rule is computed from distributed sorts: a row's rank in a total order is its sorted
partition's offset (the rows of the partitions before it, a small table) plus its place inside
the partition. The strata, their sizes and first values are aggregates joined back. The result
is the same ``__holdout`` for every row as :func:`.split.assignment_query` gives (the tests
compare both on the same data) for the strategies ingest seals with: random, time, stratified.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ._sql_dialect import SPARK
from .split import hash_sql, stratum_rows

__all__ = ["holdout_frame", "number_rows"]

_ROW = "__mlstrata_row"
_HASH = "__mlstrata_hash"
_RANK = "__mlstrata_rank"
_PART = "__mlstrata_part"
_ID = "__mlstrata_id"
_RARE = "__mlstrata_rare"
_VALUE = "__mlstrata_value"
_BIN = "__mlstrata_bin"
_FIRST = "__mlstrata_first"
_START = "__mlstrata_start"
_COUNT = "__mlstrata_count"


def holdout_frame(frame: Any, *, strategy: str, fraction: float, seed: int, rows: int,
                  column: str | None) -> Any:
    """``frame`` (rows numbered in ``__mlstrata_row``, ``rows`` of them) with BOOLEAN
    ``__holdout`` by :func:`.split.assignment_query`'s rule, computed on the row numbers and
    the strategy's column only, then joined back by row number."""
    from pyspark.sql import functions as F

    narrow = frame.select(_ROW, *([column] if column else []))  # the rule reads no other column
    hashed = narrow.withColumn(_HASH, F.expr(hash_sql(SPARK.text(_ROW), seed, SPARK)))
    if strategy == "stratified" and column is not None:
        held = _stratified(hashed, column, fraction)
    else:
        order = ([F.col(_HASH), F.col(_ROW)] if column is None else
                 [F.col(column).desc_nulls_last(), F.col(_ROW).desc()])
        quota = _rounded(fraction, rows)
        held = _ranked(hashed, order).withColumn("__holdout", F.col(_RANK) <= F.lit(quota))
    return frame.join(held.select(_ROW, "__holdout"), _ROW)


def _stratified(hashed: Any, column: str, fraction: float) -> Any:
    """Strata as :func:`.split._strata_sql` makes them; each holds out its first rows in hash
    order: the rows that carry the running quota past the end of the strata before it."""
    from pyspark.sql import functions as F

    min_rows = stratum_rows(fraction)
    value = F.col(column)
    sizes = hashed.groupBy(value.alias(_VALUE)).agg(F.count("*").alias(_COUNT))
    counted = hashed.join(sizes, value.eqNullSafe(F.col(_VALUE))).drop(_VALUE)
    counted = counted.withColumn(_RARE, F.col(_COUNT) < min_rows).drop(_COUNT)
    pool = _ranked(counted.where(F.col(_RARE)), [value.asc_nulls_last(), F.col(_HASH), F.col(_ROW)])
    pooled = (pool.withColumn(_BIN, F.expr(SPARK.int_div(f"{_RANK} - 1", str(min_rows))))
              .drop(_RANK).withColumn(_VALUE, F.lit(None).cast(pool.schema[column].dataType))
              .unionByName(counted.where(~F.col(_RARE)).withColumn(_BIN, F.lit(-1).cast("long"))
                           .withColumn(_VALUE, value)))
    strata = [_VALUE, _BIN]
    firsts = pooled.groupBy(*strata).agg(F.min(value).alias(_FIRST))
    located = pooled.join(firsts, _same(strata, pooled, firsts)).drop(*[firsts[c] for c in strata])
    ranked = _ranked(located, [F.col(_FIRST).asc_nulls_last(), F.col(_BIN), F.col(_HASH),
                               F.col(_ROW)])
    starts = ranked.groupBy(_FIRST, _BIN).agg((F.min(_RANK) - 1).alias(_START),
                                              F.count("*").alias(_COUNT))
    placed = ranked.join(starts, _same([_FIRST, _BIN], ranked, starts)) \
        .drop(starts[_FIRST], starts[_BIN])
    upto = f"({_START} + {_COUNT})"
    return placed.withColumn("__holdout", F.expr(
        f"{_RANK} - {_START} <= round({fraction!r} * {upto}) - round({fraction!r} * {_START})"))


def _same(columns: list[str], left: Any, right: Any) -> Any:
    """A join condition: ``columns`` equal on both sides, NULL equal to NULL."""
    condition = None
    for name in columns:
        pair = left[name].eqNullSafe(right[name])
        condition = pair if condition is None else condition & pair
    return condition


def _ranked(frame: Any, order: list[Any]) -> Any:
    """``frame`` with ``__mlstrata_rank``: each row's place (from 1) in ``order``, a total
    order. Spark sorts in range partitions; a partition's offset is the rows of those before."""
    from pyspark.sql import functions as F

    placed = frame.orderBy(*order).select(
        "*", F.spark_partition_id().alias(_PART), F.monotonically_increasing_id().alias(_ID))
    placed = placed.localCheckpoint()  # one sort: the partitions the counts and ranks share
    inside = F.col(_ID) - F.shiftleft(F.col(_PART).cast("long"), 33) + 1
    return number_rows(placed, _PART, inside, _RANK).drop(_PART, _ID)


def number_rows(frame: Any, group: str, inside: Any, name: str) -> Any:
    """``frame`` with column ``name``: the rows of the groups before the row's ``group`` (groups
    in their own order: part files, sorted partitions) plus its place ``inside`` the group. The
    groups' sizes are the one small table that comes back to this process."""
    from pyspark.sql import functions as F

    counts = sorted(frame.groupBy(group).count().collect())
    offsets, total = [], 0
    for key, count in counts:
        offsets.append((key, total))
        total += count
    kind = dict(frame.dtypes)[group]
    table = frame.sparkSession.createDataFrame(offsets, f"{group} {kind}, {_START} long")
    return (frame.join(F.broadcast(table), group)
            .withColumn(name, F.col(_START) + inside).drop(_START))


def _rounded(fraction: float, rows: int) -> int:
    """``round(fraction * rows)`` as the SQL rule reads it: the fraction as written, halves up.

    >>> _rounded(0.25, 10), _rounded(0.2, 7)
    (3, 1)
    """
    return int((Decimal(repr(fraction)) * rows).quantize(Decimal(1), rounding=ROUND_HALF_UP))
