"""Values of a contract's logical types: coercing JSON values, and writing them as SQL literals.

Type rules for records (JSON values): an ``int`` (or ``Decimal``) is accepted where a float is
expected, a float with no fractional part where an integer is expected; ``bool`` is never a
number; dates and timestamps may be ISO strings (``2024-01-31``, ``2024-01-31T12:00:00``); NaN
is not a float value.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

__all__ = [
    "BAD",
    "ORDERED",
    "SQL_TYPE",
    "TYPE_FIX",
    "LogicalType",
    "coerce",
    "did_you_mean",
    "quote_sql_identifier",
    "show",
    "sql_literal",
]

LogicalType = Literal["text", "integer", "float", "boolean", "date", "timestamp"]

SQL_TYPE: Final[dict[str, str]] = {
    "text": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp": "TIMESTAMP",
}
ORDERED: Final = ("integer", "float", "date", "timestamp")
TYPE_FIX: Final[dict[str, str]] = {
    "text": "a string (in quotes)",
    "integer": "a whole number",
    "float": "a number",
    "boolean": "true or false",
    "date": "an ISO date like 2024-01-31",
    "timestamp": "an ISO timestamp like 2024-01-31T12:00:00",
}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Bad:
    """The marker :func:`coerce` returns for a value that does not fit the column's type."""


BAD: Final = _Bad()


def coerce(kind: str, value: Any) -> Any:
    """``value`` as the Python value of a ``kind`` column, or ``BAD`` when it does not fit.

    >>> coerce("integer", 3.0), coerce("integer", True) is BAD, coerce("date", "2024-01-31")
    (3, True, datetime.date(2024, 1, 31))
    """
    if kind == "text":
        return value if isinstance(value, str) else BAD
    if kind == "boolean":
        return value if isinstance(value, bool) else BAD
    if isinstance(value, bool):
        return BAD
    if kind == "integer":
        if isinstance(value, numbers.Integral):
            return int(value)
        whole = isinstance(value, float | Decimal) and math.isfinite(value) and value % 1 == 0
        return int(value) if whole else BAD
    if kind == "float":
        if not isinstance(value, numbers.Real | Decimal):
            return BAD
        number = float(value)
        return BAD if math.isnan(number) else number
    if kind == "date":
        return _as_date(value)
    return _as_timestamp(value)


def _as_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return BAD
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    return BAD


def _as_timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return BAD
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime(value.year, value.month, value.day) if isinstance(value, date) else BAD


def quote_sql_identifier(name: str) -> str:
    """Quote a column name for DuckDB and SQLite alike.

    >>> quote_sql_identifier('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """A SQL literal for a contract value (text, number, boolean, date or timestamp).

    >>> sql_literal("it's"), sql_literal(date(2024, 1, 31)), sql_literal(True)
    ("'it''s'", "DATE '2024-01-31'", 'TRUE')
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def show(values: Iterable[Any]) -> str:
    """Values as a message lists them: text quoted, the rest as written."""
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """A ``" (did you mean a, b?)"`` hint naming close matches of ``name``, or ``""``.

    >>> did_you_mean("incme", ["income", "age"])
    ' (did you mean income?)'
    """
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""
