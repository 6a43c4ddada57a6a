"""Reproducible train/held-out assignments: random, stratified, time-ordered and grouped.

One SQL builder serves both the sealed test set set aside at ingest (:func:`holdout_query`) and
the train/validation split recorded by ``mlstrata split``. Assignments depend only on the rows'
positions, their values and the seed — never on the engine's hash function or thread count — so
the same rows and seed give the same assignment on any machine and DuckDB version.

Stratification follows one rule, shared with the cross-validation folds
(:func:`stratified_positions`): a target value with at least ``ceil(1 / fraction)`` rows — enough
to give one row — is a stratum of its own; the rows of rarer values (every row of a continuous
target) are sorted by value and cut into bins of that many rows (the last one maybe shorter), so
both tails of the target are represented. The strata are taken in value order and the rounding is
carried from one to the next: ``round(fraction * rows)`` rows are held out in all, each stratum
within one row of its share.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, get_args

from rich.console import Console
from rich.table import Table

from ..errors import DataError, RefNotFoundError
from ..reports import Report, html_page, table
from ..workspace import Artifact, Workspace
from ._sql_dialect import DUCKDB, Dialect
from .datasets import DatasetVersion, open_dataset, workspace_connection
from .engine import parquet_scan, quote_identifier, quote_literal

__all__ = [
    "SPLIT_KIND",
    "SplitReport",
    "SplitStrategy",
    "find_split",
    "hash_sql",
    "holdout_query",
    "load_split",
    "split_dataset",
    "strategy_column",
    "stratified_positions",
    "stratum_rows",
    "subset_sql",
]

SplitStrategy = Literal["random", "stratified", "time", "group"]

_ROW = "__mlstrata_row"
_KEY = "__mlstrata_key"
_HASH = "__mlstrata_hash"
_RANK = "__mlstrata_rank"
_COUNT = "__mlstrata_count"
_RARE = "__mlstrata_rare"
_VALUE = "__mlstrata_value"
_BIN = "__mlstrata_bin"
_FIRST = "__mlstrata_first"
_UPTO = "__mlstrata_upto"
_ROLE = {"stratified": "target", "time": "time", "group": "group"}
SPLIT_KIND = "split"
_MAX_CLASSES = 50
_VALUES = "__mlstrata_values"


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
    rows, ``stratified`` as many spread over the strata of ``target`` (see the module docstring),
    ``time`` the most recent rows by ``time`` (ties: later rows first), ``group`` whole ``group``
    values, chosen in seeded hash order until about ``fraction`` of the rows. Pass ``columns`` (the
    table's column names) to have a missing column reported as a :class:`DataError` before any SQL
    runs.

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
        return _ranked_query(numbered_sql, fraction, seed, f"ORDER BY {_HASH}, {_ROW}")
    quoted = quote_identifier(column)
    if strategy == "group":
        return _group_query(numbered_sql, quoted, fraction, seed)
    if strategy == "time":
        order = f"ORDER BY {quoted} DESC NULLS LAST, {_ROW} DESC"
        return _ranked_query(numbered_sql, fraction, seed, order)
    return _stratified_query(numbered_sql, quoted, fraction, seed)


def stratum_rows(fraction: float) -> int:
    """The fewest rows a target value needs to be a stratum of its own: ``ceil(1 / fraction)``.

    That many rows give at least one held-out row at ``fraction``; rarer values are pooled. The
    fraction is read as written (``repr``), exactly as the SQL that holds the rows out reads it.

    >>> stratum_rows(0.2), stratum_rows(0.15), stratum_rows(0.5)
    (5, 7, 2)
    """
    return math.ceil(1 / Fraction(repr(fraction)))


def stratified_positions(values: Collection[Any], *, min_rows: int, seed: int) -> list[int]:
    """Each row's place (from 0) when rows are taken stratum by stratum in value order.

    The strata are those of the held-out rule with ``min_rows`` rows a stratum (the module
    docstring); inside a stratum the rows come in seeded hash order. Dealing the places round-robin
    (``place % k``) gives ``k`` folds whose share of every stratum is within one row of ``1 / k``:
    the rule the cross-validation folds follow. ``values`` holds one type (numbers, text...).

    >>> stratified_positions([3.0, 1.0, 2.0, 9.0], min_rows=2, seed=0)
    [2, 0, 1, 3]
    """
    import duckdb
    import pyarrow as pa

    rows = pa.table({"value": pa.array(values), _ROW: pa.array(range(len(values)), pa.int64())})
    strata = _strata_sql(f"SELECT * FROM {_VALUES}", "value", min_rows, seed)
    with duckdb.connect() as con:
        con.register(_VALUES, rows)
        placed = con.execute(
            f"{strata}\nSELECT {_UPTO} - {_COUNT} + {_RANK} - 1 FROM cumulated ORDER BY {_ROW}"
        ).fetchall()
    return [int(place) for (place,) in placed]


def _stratified_query(numbered_sql: str, quoted: str, fraction: float, seed: int) -> str:
    """Hold out the first rows, in hash order, of each stratum: the rows that carry the running
    quota ``round(fraction * rows so far)`` past the end of the stratum before."""
    return f"""{_strata_sql(numbered_sql, quoted, stratum_rows(fraction), seed)}
SELECT * EXCLUDE ({_ROW}, {_HASH}, {_RANK}, {_COUNT}, {_RARE}, {_VALUE}, {_BIN}, {_FIRST}, {_UPTO}),
    {_RANK} <= round({fraction!r} * {_UPTO}) - round({fraction!r} * ({_UPTO} - {_COUNT}))
        AS __holdout
FROM cumulated ORDER BY {_ROW}"""


def _strata_sql(numbered_sql: str, quoted: str, min_rows: int, seed: int) -> str:
    """CTEs ending in ``cumulated``: each row's rank in its stratum, the stratum's row count and
    the rows up to the end of its stratum, strata taken in value order.

    A value with ``min_rows`` rows or more is a stratum (``__mlstrata_value``); the rows of rarer
    values, sorted by value (ties in hash order), are cut into bins of ``min_rows`` rows, the last
    one maybe shorter (``__mlstrata_bin``). A stratum's place in the order is its smallest value,
    then its bin.
    """
    pool_order = f"{quoted} NULLS LAST, {_HASH}, {_ROW}"
    stratum = f"PARTITION BY {_VALUE}, {_BIN}"
    return f"""
WITH numbered AS ({numbered_sql}),
hashed AS (
    SELECT *, {hash_sql(f"CAST({_ROW} AS VARCHAR)", seed)} AS {_HASH},
        count(*) OVER (PARTITION BY {quoted}) < {min_rows} AS {_RARE}
    FROM numbered
),
pooled AS (
    SELECT *, CASE WHEN {_RARE} THEN NULL ELSE {quoted} END AS {_VALUE},
        CASE WHEN {_RARE} THEN (row_number() OVER (PARTITION BY {_RARE} ORDER BY {pool_order}) - 1)
            // {min_rows} ELSE -1 END AS {_BIN}
    FROM hashed
),
ranked AS (
    SELECT *, row_number() OVER ({stratum} ORDER BY {_HASH}, {_ROW}) AS {_RANK},
        count(*) OVER ({stratum}) AS {_COUNT}, min({quoted}) OVER ({stratum}) AS {_FIRST}
    FROM pooled
),
cumulated AS (
    SELECT *, count(*) OVER (ORDER BY {_FIRST} NULLS LAST, {_BIN}) AS {_UPTO} FROM ranked
)"""


def _ranked_query(numbered_sql: str, fraction: float, seed: int, window: str) -> str:
    """Hold out the first ``round(fraction * rows)`` rows in ``window`` order."""
    return f"""
WITH numbered AS ({numbered_sql}),
hashed AS (SELECT *, {hash_sql(f"CAST({_ROW} AS VARCHAR)", seed)} AS {_HASH} FROM numbered),
ranked AS (
    SELECT *, row_number() OVER ({window}) AS {_RANK}, count(*) OVER () AS {_COUNT}
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
    SELECT {_KEY}, count(*) AS {_COUNT}, {hash_sql(_KEY, seed)} AS {_HASH}
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


def hash_sql(text_sql: str, seed: int, dialect: Dialect = DUCKDB) -> str:
    """A 60-bit integer from the MD5 of ``seed:text``, the same on every machine, version and
    engine (Spark's ``dialect`` too)."""
    return dialect.hex_to_bigint(f"substr(md5('{seed}:' || {text_sql}), 1, 15)")


def _hint(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


# -- the recorded train/validation split --------------------------------------------------------


@dataclass(frozen=True)
class SplitReport(Report):
    """What ``mlstrata split`` recorded: the split artifact and its counts per subset."""

    artifact: Artifact
    dataset: Artifact

    def to_dict(self) -> dict[str, Any]:
        """The split's ref and id, the dataset it splits, and its meta (counts, balance...)."""
        return {**self.artifact.meta, "split": self.artifact.ref, "id": self.artifact.id,
                "dataset": self.dataset.ref, "dataset_id": self.dataset.id}

    def render_terminal(self, console: Console) -> None:
        """A line naming the split and a table of rows (and classes) per subset."""
        meta = self.artifact.meta
        console.print(f"[bold]{self.artifact.ref}[/] {self.artifact.id[:12]}: "
                      f"{meta['strategy']} split of {self.dataset.ref}, "
                      f"validation {meta['fraction']}, seed {meta['seed']}")
        grid = Table("subset", "rows", "class balance")
        for subset, rows in meta["counts"].items():
            balance = (meta["balance"] or {}).get(subset, {})
            grid.add_row(subset, str(rows), ", ".join(f"{k}: {v}" for k, v in balance.items()))
        console.print(grid)

    def to_html(self) -> str:
        """One page: the split's facts and its rows per subset."""
        meta = self.artifact.meta
        rows = [{"subset": subset, "rows": count,
                 **{f"class {k}": v for k, v in (meta["balance"] or {}).get(subset, {}).items()}}
                for subset, count in meta["counts"].items()]
        facts = {"dataset": self.dataset.ref, "strategy": meta["strategy"],
                 "validation fraction": meta["fraction"], "seed": meta["seed"]}
        return html_page(f"Split {self.artifact.ref}", [("Subsets", [table(rows)])], facts=facts)


def split_dataset(
    ws: Workspace,
    ref: str,
    *,
    strategy: str | None = None,
    fraction: float = 0.1,
    seed: int = 0,
    target: str | None = None,
    time: str | None = None,
    group: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> SplitReport:
    """Record which rows of dataset ``ref`` are train and which validation, as a ``split`` artifact.

    The artifact is a Parquet file with one column ``subset`` aligned with the dataset's rows.
    Defaults: stratified on the dataset's target when it has one, else random; the time column
    defaults to the one named at ingest. The same dataset, settings and seed give the same
    artifact (same bytes, same id).
    """
    dataset = open_dataset(ws, ref)
    target = target or dataset.target
    strategy = strategy or ("stratified" if target else "random")
    time = time or dataset.meta.get("time")
    names = [c["name"] for c in dataset.columns]
    column = strategy_column(strategy, target=target, time=time, group=group, columns=names)
    con = workspace_connection(ws)
    try:
        assigned = assignment_query(
            f"SELECT *, file_row_number AS {_ROW} FROM "
            f"{parquet_scan(dataset.path, 'file_row_number = true')}",
            strategy=strategy, fraction=fraction, seed=seed, column=column,
        )
        _notify(on_stage, "counting subsets")
        counts, balance = _summarize(con, assigned, ref, target if target in names else None)
        meta = {"strategy": strategy, "fraction": fraction, "seed": seed,
                "columns": {_ROLE.get(strategy, "column"): column} if column else {},
                "counts": counts, "balance": balance, "dataset": dataset.artifact.id}
        _notify(on_stage, "writing split")
        artifact = _store_split(ws, con, assigned, dataset, meta)
    finally:
        con.close()
    return SplitReport(artifact, dataset.artifact)


def _summarize(
    con: Any, assigned: str, ref: str, target: str | None
) -> tuple[dict[str, int], dict[str, dict[str, int]] | None]:
    """Rows per subset and, for a target with few classes, rows per class per subset."""
    subset = "CASE WHEN __holdout THEN 'validation' ELSE 'train' END"
    rows = dict(con.execute(f"SELECT {subset}, count(*) FROM ({assigned}) GROUP BY 1").fetchall())
    counts = {name: int(rows.get(name, 0)) for name in ("train", "validation")}
    if counts["validation"] == 0 or counts["train"] == 0:
        empty = "validation" if counts["validation"] == 0 else "train"
        raise DataError(f"split of {ref} leaves the {empty} subset empty ({counts['train']} train, "
                        f"{counts['validation']} validation rows); change --val or the strategy")
    if target is None:
        return counts, None
    quoted = quote_identifier(target)
    ((classes,),) = con.execute(f"SELECT count(DISTINCT {quoted}) FROM ({assigned})").fetchall()
    if classes > _MAX_CLASSES:
        return counts, None
    balance: dict[str, dict[str, int]] = {"train": {}, "validation": {}}
    for name, value, count in con.execute(
        f"SELECT {subset}, CAST({quoted} AS VARCHAR), count(*) FROM ({assigned}) "
        f"GROUP BY ALL ORDER BY 1, 2 NULLS LAST"
    ).fetchall():
        balance[name]["null" if value is None else value] = int(count)
    return counts, balance


def _store_split(
    ws: Workspace, con: Any, assigned: str, dataset: DatasetVersion, meta: dict[str, Any]
) -> Artifact:
    """Write the ``subset`` column to Parquet, tagged with the dataset and settings; store it."""
    tags = {"dataset": dataset.artifact.id, "strategy": meta["strategy"],
            "fraction": str(meta["fraction"]), "seed": str(meta["seed"])}
    kv = ", ".join(f"{key}: {quote_literal(value)}" for key, value in tags.items())
    with ws.staging() as stage:
        path = stage / "split.parquet"
        con.execute(
            f"COPY (SELECT CASE WHEN __holdout THEN 'validation' ELSE 'train' END AS subset "
            f"FROM ({assigned})) TO {quote_literal(str(path))} "
            f"(FORMAT parquet, KV_METADATA {{{kv}}})"
        )
        return ws.put_file(
            path, kind=SPLIT_KIND, name=f"{dataset.artifact.name}.split", meta=meta,
            inputs={"dataset": dataset.artifact.id}, access=dataset.artifact.access,
            description=f"{meta['strategy']} train/validation split of {dataset.artifact.ref}",
        )


def find_split(ws: Workspace, dataset: Artifact) -> Artifact | None:
    """The newest split recorded for ``dataset`` (its lineage parent, mirrored in the meta)."""
    return ws.find_by_meta(SPLIT_KIND, "dataset", dataset.id)


def load_split(ws: Workspace, dataset_ref: str) -> tuple[Artifact, Path]:
    """The newest split of dataset ``dataset_ref`` and the path of its ``subset`` Parquet."""
    dataset = open_dataset(ws, dataset_ref).artifact
    split = find_split(ws, dataset)
    if split is None:
        raise RefNotFoundError(f"no split recorded for {dataset.ref}; "
                               f"run 'mlstrata split {dataset.ref}' first")
    return split, ws.path_for_read(split)


def subset_sql(dataset_path: Path, split_path: Path, subset: str) -> str:
    """SQL for the rows of a dataset's Parquet that a split puts in ``subset``, in order."""
    return (f"SELECT data.* FROM {parquet_scan(dataset_path)} AS data "
            f"POSITIONAL JOIN {parquet_scan(split_path)} AS split "
            f"WHERE split.subset = {quote_literal(subset)}")


def _notify(on_stage: Callable[[str], None] | None, stage: str) -> None:
    if on_stage is not None:
        on_stage(stage)
