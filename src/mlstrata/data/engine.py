"""DuckDB connections configured for the workspace: bounded memory, spill to the workspace's tmp/.

Every out-of-core computation in the data stratum goes through :func:`connect`, so the memory
limit in ``mlstrata.yaml`` (``data.memory_limit``) holds for ingest, profile, validate and clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from ..config import DataConfig

__all__ = ["connect", "parquet_scan", "quote_identifier", "quote_literal"]


def connect(
    settings: DataConfig, spill_dir: Path | None = None, database: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the configured memory limit, threads and spill folder.

    In memory by default; ``database`` puts the tables in a scratch file so large ingests spill.
    """
    con = duckdb.connect(str(database) if database else ":memory:")
    con.execute(f"SET memory_limit = {quote_literal(settings.memory_limit)}")
    con.execute("SET preserve_insertion_order = true")
    if settings.threads:
        con.execute(f"SET threads = {int(settings.threads)}")
    if spill_dir is not None:
        spill_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {quote_literal(str(spill_dir))}")
    return con


def quote_identifier(name: str) -> str:
    """Quote a column or table name for SQL.

    >>> quote_identifier('we"ird')
    '"we""ird"'
    """
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for SQL.

    >>> quote_literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def parquet_scan(paths: str | Path | Sequence[str | Path], *options: str) -> str:
    """DuckDB's ``read_parquet`` of one path or a list, with ``options``, and never Hive
    partitioning: DuckDB would otherwise read a ``key=value`` folder anywhere on the path (a
    project under ``/data/team=risk/``) as one more column.

    >>> parquet_scan("/d/x=1/f.parquet", "file_row_number = true")
    "read_parquet('/d/x=1/f.parquet', file_row_number = true, hive_partitioning = false)"
    >>> parquet_scan(["a.parquet", "b.parquet"])
    "read_parquet(['a.parquet', 'b.parquet'], hive_partitioning = false)"
    """
    if isinstance(paths, (str, Path)):
        files = quote_literal(str(paths))
    else:
        files = "[" + ", ".join(quote_literal(str(p)) for p in paths) + "]"
    return f"read_parquet({', '.join((files, *options, 'hive_partitioning = false'))})"
