"""Profiling: what a dataset holds, column by column, computed out of core with DuckDB.

:func:`profile_relation` profiles any SQL query; :func:`profile_dataset` profiles a dataset
version from the workspace (its training side: the sealed test set is refused). The result, a
:class:`Profile`, renders to the terminal, JSON and one self-contained HTML page.

The work is SQL aggregates over the table (see :mod:`._profile_stats`), correlations on a
reproducible sample of at most 100k rows (see :mod:`._profile_correlations`), task detection of
the target (:mod:`.target`) and warnings derived from those numbers (:mod:`._profile_warnings`).
No column is ever fetched whole into Python, so 10M rows profile in DuckDB's memory limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast, get_args

import duckdb
from rich.console import Console

from ..config import ColumnType
from ..reports import Report
from ..workspace import Workspace
from ._profile_correlations import Correlations, compute_correlations
from ._profile_stats import ColumnProfile, Duplicates, count_duplicates, plain, profile_columns
from ._profile_warnings import ProfileWarning, find_warnings
from .datasets import open_dataset, workspace_connection
from .target import TargetInfo, detect_task, resolve_target
from .types import ColumnInfo, columns_of

__all__ = [
    "PiiFinding",
    "Profile",
    "ProgressCallback",
    "profile_dataset",
    "profile_relation",
]

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``(finished_step, steps_done, steps_total)`` after each step of a profile."""

_VIEW = "_mlstrata_profiled"


@dataclass(frozen=True)
class PiiFinding:
    """Personal data found in a column at ingest: its kinds and what was done about it."""

    column: str
    kinds: tuple[str, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_meta(cls, entry: Mapping[str, Any]) -> PiiFinding:
        """Read one entry of a dataset's ``meta["pii"]`` (``column``, ``kinds`` and any extras)."""
        extras = {k: v for k, v in entry.items() if k not in ("column", "kinds")}
        return cls(str(entry["column"]), tuple(str(k) for k in entry.get("kinds", ())), extras)


@dataclass(frozen=True)
class Profile(Report):
    """The profile of one table: column statistics, correlations, duplicates, target, warnings."""

    title: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    duplicates: Duplicates
    correlations: Correlations
    target: TargetInfo | None
    pii: tuple[PiiFinding, ...] = ()
    warnings: tuple[ProfileWarning, ...] = ()
    dataset_id: str = ""

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Every number of the profile; missing or undefined numbers are ``None``, never NaN."""
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        body["target"] = self.target.to_dict() if self.target else None
        return {"kind": "profile", **_json_ready(body)}

    def render_terminal(self, console: Console) -> None:
        """An overview table of the columns, then the target, PII findings and warnings."""
        from ._profile_render import render_terminal

        render_terminal(self, console)

    def to_html(self) -> str:
        """One self-contained HTML page with inline SVG histograms and correlation heatmaps."""
        from ._profile_render import render_html

        return render_html(self)


def profile_relation(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    columns: Sequence[ColumnInfo],
    *,
    target: str | None = None,
    pii: Sequence[Mapping[str, Any]] = (),
    title: str = "",
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Profile:
    """Profile the rows of ``source_sql`` (whose columns are ``columns``) in DuckDB.

    ``target`` names the target column; when ``None``, a column with a conventional target name
    is used if there is one. ``seed`` fixes the correlation sample.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> sql = "SELECT range AS x, range % 2 AS y FROM range(10)"
    >>> p = profile_relation(con, sql, columns_of(con.sql(sql)), target="y")
    >>> p.rows, p.column("x").mean, p.target.task
    (10, 4.5, 'binary')
    """
    columns = list(columns)
    chosen = resolve_target(columns, target)
    step = _Steps(len(columns) + 4, progress)
    rows = int(con.execute(f"SELECT count(*) FROM ({source_sql})").fetchall()[0][0])
    step("rows counted")
    profiles = profile_columns(con, source_sql, columns, rows, lambda name: step(f"column {name}"))
    duplicates = count_duplicates(con, source_sql, columns, rows)
    step("duplicates")
    target_info = detect_task(con, source_sql, *chosen) if chosen else None
    step("target")
    correlations = compute_correlations(con, source_sql, profiles, rows, target_info, seed)
    step("correlations")
    warnings = find_warnings(profiles, duplicates, target_info, correlations.target)
    findings = tuple(PiiFinding.from_meta(entry) for entry in pii)
    return Profile(title, rows, tuple(profiles), duplicates, correlations, target_info,
                   findings, warnings)


def profile_dataset(
    ws: Workspace, ref: str, *, progress: ProgressCallback | None = None
) -> Profile:
    """Profile a dataset version's training side, with the target and PII findings from its
    catalog entry. The sealed test set is refused (only the acceptance test may read it)."""
    dataset = open_dataset(ws, ref)
    con = workspace_connection(ws)
    try:
        relation = dataset.relation(con)
        relation.create_view(_VIEW)
        columns = _declared_types(columns_of(relation), dataset.columns)
        profile = profile_relation(
            con, f"SELECT * FROM {_VIEW}", columns, target=dataset.target,
            pii=dataset.meta.get("pii") or (), title=dataset.artifact.ref,
            seed=ws.config.data.seed, progress=progress,
        )
    finally:
        con.close()
    return dataclasses.replace(profile, dataset_id=dataset.artifact.id)


def _declared_types(
    columns: Sequence[ColumnInfo], declared: Sequence[Mapping[str, str]]
) -> list[ColumnInfo]:
    """The Parquet file's columns with the logical types the catalog records for them."""
    known = get_args(ColumnType)
    types = {c["name"]: c["type"] for c in declared if c.get("type") in known}
    return [dataclasses.replace(c, type=cast(ColumnType, types.get(c.name, c.type)))
            for c in columns]


class _Steps:
    """Counts finished steps and reports them to an optional progress callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback

    def __call__(self, finished: str) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(finished, self.done, self.total)


def _json_ready(value: Any) -> Any:
    """Dataclasses, mappings and tuples turned into plain JSON values; NaN/±inf into ``None``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return plain(value)
