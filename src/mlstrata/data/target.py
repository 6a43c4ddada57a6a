"""Which column is the target, and which task it implies: binary, multiclass or regression.

The profile and the model stratum share these rules so that a dataset's task is decided in one
place. The target is the column declared at ingest or, failing that, one with a conventional name
(``target``, ``label``, ``y``, ``default``, ``churn``...). Its type and values decide the task:

- boolean, or exactly two distinct values → ``binary``;
- text with three or more values, or whole numbers with at most :data:`MAX_CLASSES` distinct
  values → ``multiclass``;
- other numbers → ``regression``.

Counting is done in DuckDB, so detecting the task of a 10M-row target reads one column once.

>>> classify_task("integer", distinct=2, integral=True)
'binary'
>>> classify_task("integer", distinct=5, integral=True)
'multiclass'
>>> classify_task("float", distinct=900, integral=False)
'regression'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import duckdb

from ..config import ColumnType
from ..errors import DataError
from .engine import quote_identifier
from .types import ColumnInfo, duckdb_type, logical_type

__all__ = [
    "MAX_CLASSES",
    "TARGET_NAMES",
    "ClassShare",
    "TargetInfo",
    "TaskType",
    "classify_task",
    "detect_task",
    "guess_target",
    "resolve_target",
    "value_sql",
]

TaskType = Literal["binary", "multiclass", "regression"]

TARGET_NAMES = (
    "target", "label", "y", "class", "outcome", "default", "defaulted", "is_default", "churn",
    "churned", "fraud", "is_fraud", "response", "survived",
)
"""Column names (compared case-insensitively) taken as the target when none is declared."""

MAX_CLASSES = 20
"""Whole-number targets with more distinct values than this are treated as regression."""

_MAX_LISTED_CLASSES = 50
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class ClassShare:
    """One class of a classification target: its value, row count and share of labelled rows."""

    value: Any
    count: int
    share: float


@dataclass(frozen=True)
class TargetInfo:
    """The target column, its task and its class balance (or distribution, for regression).

    ``problems`` lists what would stop training (no labels, a single class, missing labels, an
    unsupported type); the profile shows them as warnings and training raises them.
    """

    column: str
    source: Literal["declared", "guessed"]
    type: ColumnType
    task: TaskType | None
    count: int
    missing: int
    distinct: int
    classes: tuple[ClassShare, ...] = ()
    distribution: Mapping[str, float | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def minority_share(self) -> float | None:
        """The share of the rarest class (``None`` for regression)."""
        return min((c.share for c in self.classes), default=None)

    def require_trainable(self) -> None:
        """Raise :class:`DataError` with the first problem, if any; training calls this."""
        if self.problems:
            raise DataError(self.problems[0])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (classes as ``{value, count, share}``)."""
        out = asdict(self)
        out["distribution"] = dict(self.distribution)
        out["minority_share"] = self.minority_share
        return out


def guess_target(names: Iterable[str]) -> str | None:
    """The first column (in :data:`TARGET_NAMES` order) whose name is a conventional target name.

    >>> guess_target(["age", "Income", "Default"])
    'Default'
    >>> guess_target(["age", "income"]) is None
    True
    """
    by_lower = {name.lower(): name for name in names}
    return next((by_lower[n] for n in TARGET_NAMES if n in by_lower), None)


def resolve_target(
    columns: Sequence[ColumnInfo], declared: str | None
) -> tuple[ColumnInfo, Literal["declared", "guessed"]] | None:
    """The declared target (which must exist) or a guessed one; ``None`` when there is neither."""
    by_name = {c.name: c for c in columns}
    if declared is not None:
        if declared not in by_name:
            close = difflib.get_close_matches(declared, list(by_name), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise DataError(
                f"target column '{declared}' is not in the data{hint}; columns are: "
                f"{', '.join(by_name)}"
            )
        return by_name[declared], "declared"
    guessed = guess_target(by_name)
    return (by_name[guessed], "guessed") if guessed is not None else None


def classify_task(column_type: ColumnType, distinct: int, integral: bool) -> TaskType | None:
    """The task a target of this type and number of distinct values implies.

    ``integral`` says whether every numeric value is a whole number. ``None`` means the column
    cannot be a target: fewer than two distinct values, or a date/timestamp.
    """
    if distinct < 2 or column_type in ("date", "timestamp"):
        return None
    if column_type == "boolean" or distinct == 2:
        return "binary"
    if column_type == "text" or (integral and distinct <= MAX_CLASSES):
        return "multiclass"
    return "regression"


def value_sql(column: ColumnInfo) -> str:
    """SQL for the column's values in its logical type; non-finite floats (NaN, ±inf) become NULL.

    >>> value_sql(ColumnInfo("x", "float", "DOUBLE"))
    'CASE WHEN isfinite(CAST("x" AS DOUBLE)) THEN CAST("x" AS DOUBLE) END'
    >>> value_sql(ColumnInfo("n", "integer", "BIGINT"))
    '"n"'
    """
    name = quote_identifier(column.name)
    if column.type == "float":
        as_double = f"CAST({name} AS DOUBLE)"
        return f"CASE WHEN isfinite({as_double}) THEN {as_double} END"
    if logical_type(column.engine_type) != column.type:
        return f"TRY_CAST({name} AS {duckdb_type(column.type)})"
    return name


def detect_task(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    column: ColumnInfo,
    source: Literal["declared", "guessed"] = "declared",
) -> TargetInfo:
    """Count the target's values in SQL and decide its task, class balance and problems."""
    v = value_sql(column)
    integral_sql = f"bool_and({v} = floor({v}))" if column.type in ("integer", "float") else "false"
    rows, count, distinct, integral = con.execute(
        f"SELECT count(*), count({v}), count(DISTINCT {v}), coalesce({integral_sql}, false) "
        f"FROM ({source_sql})"
    ).fetchall()[0]
    task = classify_task(column.type, int(distinct), bool(integral))
    classes: tuple[ClassShare, ...] = ()
    distribution: dict[str, float | None] = {}
    if task in ("binary", "multiclass"):
        classes = _class_shares(con, source_sql, v, int(count))
    elif task == "regression":
        distribution = _distribution(con, source_sql, v)
    info = TargetInfo(column.name, source, column.type, task, int(count), int(rows - count),
                      int(distinct), classes, distribution)
    return replace(info, problems=_problems(info))


def _class_shares(
    con: duckdb.DuckDBPyConnection, source_sql: str, v: str, count: int
) -> tuple[ClassShare, ...]:
    rows = con.execute(
        f"SELECT {v} AS value, count(*) AS n FROM ({source_sql}) WHERE {v} IS NOT NULL "
        f"GROUP BY 1 ORDER BY n DESC, value LIMIT {_MAX_LISTED_CLASSES}"
    ).fetchall()
    return tuple(ClassShare(value, int(n), int(n) / count) for value, n in rows)


def _distribution(
    con: duckdb.DuckDBPyConnection, source_sql: str, v: str
) -> dict[str, float | None]:
    """Summary statistics of a regression target (``v`` excludes NaN and ±inf already)."""
    qs = ", ".join(str(q) for q in _QUANTILES)
    row = con.execute(
        f"SELECT min({v})::DOUBLE, max({v})::DOUBLE, avg({v}), stddev_samp({v}), skewness({v}), "
        f"approx_quantile({v}::DOUBLE, [{qs}]) FROM ({source_sql})"
    ).fetchall()[0]
    *stats, quantiles = row
    names = ("min", "max", "mean", "std", "skewness")
    out = {name: _float(value) for name, value in zip(names, stats, strict=True)}
    out.update({f"p{round(q * 100)}": _float(x)
                for q, x in zip(_QUANTILES, quantiles, strict=True)})
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _problems(info: TargetInfo) -> tuple[str, ...]:
    name = f"target column '{info.column}'"
    problems = []
    if info.type in ("date", "timestamp"):
        problems.append(f"{name} is a {info.type}; use a category or a number as the target")
    elif info.count == 0:
        problems.append(f"{name} has no values; choose another column with --target")
    elif info.distinct < 2:
        problems.append(f"{name} has a single value, so there is nothing to learn; "
                        "choose another target or get data with more than one class")
    if info.missing and info.count:
        problems.append(f"{name} is missing in {info.missing} rows; drop or label them before "
                        "training (e.g. a clean recipe step 'filter')")
    return tuple(problems)
