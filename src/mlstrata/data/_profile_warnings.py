"""Warnings a profile raises: what in the data deserves a look before modelling.

Each rule reads numbers the profile already computed; none touches the data again. Thresholds are
module constants so the report can quote them:

- ``empty`` / ``constant``: no values, or a single distinct value;
- ``missing``: at least :data:`MISSING_PCT` % of rows missing;
- ``identifier``: text (or a consecutive run of integers) unique in nearly every row;
- ``high_cardinality``: text with many distinct values, too many to treat as categories;
- ``skewed``: |skewness| above :data:`SKEW`;
- ``outliers``: values beyond Tukey's far fences (3 IQR from the quartiles);
- ``leakage``: a feature whose association with the target is at least :data:`LEAKAGE`;
- ``imbalance``: a class holding less than :data:`MINORITY_SHARE` of labelled rows;
- ``duplicates``: rows repeating another row exactly;
- ``target``: no target found, or a target that cannot be trained on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ._profile_correlations import Association
from ._profile_stats import ColumnProfile, Duplicates
from .target import TARGET_NAMES, TargetInfo

__all__ = [
    "LEAKAGE",
    "MINORITY_SHARE",
    "MISSING_PCT",
    "SKEW",
    "ProfileWarning",
    "find_warnings",
]

MISSING_PCT = 20.0
SKEW = 2.0
LEAKAGE = 0.95
MINORITY_SHARE = 0.10
UNIQUE_SHARE = 0.95
HIGH_CARDINALITY = 50
_MIN_ROWS_FOR_IDENTIFIER = 20


@dataclass(frozen=True)
class ProfileWarning:
    """One finding: the column it concerns (``None`` for the whole table), a kind and a sentence."""

    column: str | None
    kind: str
    message: str


def find_warnings(
    columns: Sequence[ColumnProfile],
    duplicates: Duplicates,
    target: TargetInfo | None,
    associations: Sequence[Association],
) -> tuple[ProfileWarning, ...]:
    """All warnings, table-wide ones first, then column by column in column order."""
    found = list(_table_warnings(duplicates, target))
    for column in columns:
        found.extend(_column_warnings(column))
    found.extend(_leakage(associations))
    return tuple(found)


def _table_warnings(duplicates: Duplicates, target: TargetInfo | None) -> Iterator[ProfileWarning]:
    if duplicates.count:
        yield ProfileWarning(None, "duplicates", f"{duplicates.count} rows "
                             f"({duplicates.pct:.1f}%) repeat an earlier row exactly")
    if target is None:
        yield ProfileWarning(None, "target", "no target column: none was declared (--target at "
                             f"ingest) and none is named like {', '.join(TARGET_NAMES[:5])}...")
        return
    for problem in target.problems:
        yield ProfileWarning(target.column, "target", problem)
    share = target.minority_share
    if share is not None and share < MINORITY_SHARE and len(target.classes) > 1:
        rare = min(target.classes, key=lambda c: c.share)
        yield ProfileWarning(target.column, "imbalance", f"class {rare.value!r} holds only "
                             f"{share:.1%} of labelled rows; prefer stratified splits and metrics "
                             "such as ROC AUC or F1 over accuracy")


def _column_warnings(column: ColumnProfile) -> Iterator[ProfileWarning]:
    name = column.name
    if column.count == 0:
        yield ProfileWarning(name, "empty", "has no values at all")
        return
    if column.distinct == 1:
        yield ProfileWarning(name, "constant", f"holds a single value ({_first(column)}); "
                             "it carries no information")
    if column.missing_pct >= MISSING_PCT:
        yield ProfileWarning(name, "missing", f"is missing in {column.missing} rows "
                             f"({column.missing_pct:.1f}%)")
    yield from _cardinality(column)
    if column.skewness is not None and abs(column.skewness) > SKEW:
        yield ProfileWarning(name, "skewed", f"is skewed (skewness {column.skewness:.2f}); "
                             "a log transform may help linear models")
    if column.far_outliers:
        yield ProfileWarning(name, "outliers", f"has {column.far_outliers} values beyond 3 IQR "
                             f"from the quartiles ({column.outliers} beyond 1.5 IQR)")


def _cardinality(column: ColumnProfile) -> Iterator[ProfileWarning]:
    if column.count < _MIN_ROWS_FOR_IDENTIFIER:
        return
    unique = column.unique_share >= UNIQUE_SHARE
    consecutive = (column.type == "integer" and column.min is not None and column.max is not None
                   and column.max - column.min + 1 == column.count)
    if (column.type == "text" and unique) or (unique and consecutive):
        yield ProfileWarning(column.name, "identifier", f"is unique in {column.unique_share:.0%} "
                             "of rows: likely an identifier; exclude it from the features")
    elif column.type == "text" and column.distinct > HIGH_CARDINALITY:
        yield ProfileWarning(column.name, "high_cardinality", f"has {column.distinct} distinct "
                             "values; group rare levels or use target encoding")


def _leakage(associations: Sequence[Association]) -> Iterator[ProfileWarning]:
    for a in associations:
        if a.value is not None and a.value >= LEAKAGE:
            yield ProfileWarning(a.feature, "leakage", f"nearly determines the target "
                                 f"({a.measure.replace('_', ' ')} {a.value:.3f}); check it is "
                                 "known at prediction time, or drop it")


def _first(column: ColumnProfile) -> str:
    value = column.top_values[0].value if column.top_values else column.min
    return repr(value)
