"""The regular expression an OpenAPI document gives ``text/csv`` bodies: CSV the server scores.

A CSV body is one string, so JSON Schema can only describe it with a ``pattern``. This one says
what ``POST /invocations`` takes: the header line naming every input field (in signature order),
then at least one record whose cells each hold a value the field's rules accept — a number in
its range, an allowed category, a text of its pattern, a valid ISO 8601 date, or an empty cell
when the field is nullable. Numbers are described by their whole values in range plus decimals
below the largest whole value, dates by days 01-28 of whole years within the range: a subset of
what the server accepts, never more, so that a generated client (or schemathesis) sends no body
the server refuses. ``[0-9]`` is spelled out because ``\\d`` matches every Unicode digit in
Python. The pattern is valid in ECMA 262 (JSON Schema's dialect) and Python.

>>> from mlstrata.runtime.signature import InputField
>>> import re
>>> pattern = csv_pattern((InputField("n", "integer", False, min=8, max=130),
...                        InputField("c", "text", True, allowed=("a", "b"), strict=True)))
>>> [bool(re.search(pattern, body)) for body in ("n,c\\n8,a\\n130,", "n,c\\n131,a", "n,c\\n")]
[True, False, False]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..runtime.signature import InputField

__all__ = ["csv_pattern", "date_pattern", "integer_range"]

_DIGIT = "[0-9]"
_FREE_TEXT = '[^,"\\r\\n]'
_UNBOUNDED = 999_999
_MONTH = "(?:0[1-9]|1[0-2])"
_DAY = "(?:0[1-9]|1[0-9]|2[0-8])"
_TIME = "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_UNSAFE_IN_A_CELL = re.compile(r'[.,"]|\\[sSWDn]|\[\^')
_NEWLINE = "\\r?\\n"


def csv_pattern(fields: Sequence[InputField]) -> str:
    """The anchored pattern of a CSV body with a header and at least one record of ``fields``."""
    header = ",".join(_literal(field.name) for field in fields)
    lone = len(fields) == 1  # one nullable field: an empty cell would be an empty line, skipped
    row = ",".join(_cell(field, may_be_empty=field.nullable and not lone) for field in fields)
    return f"^{header}{_NEWLINE}{row}(?:{_NEWLINE}{row})*(?:{_NEWLINE})?$"


def integer_range(low: int, high: int) -> str:
    """A pattern group matching the integers ``low`` to ``high`` written plainly (no ``+``, no
    leading zeros).

    >>> pattern = integer_range(-12, 305)
    >>> [n for n in range(-20, 400) if re.fullmatch(pattern, str(n))] == list(range(-12, 306))
    True
    """
    alternatives = []
    if high >= 0:
        alternatives += _natural(max(low, 0), high)
    if low < 0:
        alternatives += ["-" + part for part in _natural(max(1, -high), -low)]
    return "(?:" + "|".join(alternatives) + ")"


def _cell(field: InputField, *, may_be_empty: bool) -> str:
    value = _value(field)
    if value is None:  # a pattern that could swallow a delimiter: only an empty cell is sure
        return "" if field.nullable else f"{_FREE_TEXT}+"
    return f"(?:{value})?" if may_be_empty else value


def _value(field: InputField) -> str | None:
    if field.logical_type == "boolean":
        return "(?:true|false|0|1)"
    if field.is_numeric:
        return _number(field)
    if field.is_date:
        return _date(field)
    if field.allowed is not None and field.strict:
        return "(?:" + "|".join(_literal(str(value)) for value in field.allowed) + ")"
    if field.pattern is not None:
        if _UNSAFE_IN_A_CELL.search(field.pattern):
            return None
        return "(?:" + field.pattern.removeprefix("^").removesuffix("$") + ")"
    return f"{_FREE_TEXT}+"


def _number(field: InputField) -> str:
    low = -_UNBOUNDED if field.min is None else field.min
    high = _UNBOUNDED if field.max is None else field.max
    if field.allowed is not None and field.strict:
        return "(?:" + "|".join(_escape(_plain(value)) for value in field.allowed) + ")"
    whole_low, whole_high = math.ceil(low), math.floor(high)
    if whole_low > whole_high:
        return _escape(_plain(low))
    whole = integer_range(whole_low, whole_high)
    if field.logical_type == "integer" or max(whole_low, 0) > whole_high - 1:
        return whole
    fractional = integer_range(max(whole_low, 0), whole_high - 1)
    return f"(?:{whole}|{fractional}\\.{_DIGIT}{{1,3}})"


def date_pattern(field: InputField) -> str | None:
    """The anchored pattern of a date field's values within its range (None without a range):
    JSON Schema's ``format`` has no bounds.

    >>> date_pattern(InputField("opened", "date", min="2018-05-03"))
    '^(?:2019|20[2-9][0-9]|2[1-9][0-9]{2}|[3-9][0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])$'
    """
    if field.min is None and field.max is None:
        return None
    return f"^{_date(field)}$"


def _date(field: InputField) -> str:
    first = int(str(field.min)[:4]) + 1 if field.min is not None else 1000
    last = int(str(field.max)[:4]) - 1 if field.max is not None else 9999
    first, last = max(first, 1000), min(last, 9999)
    if first > last:  # the range lies within one or two years: its first day is sure
        return _escape(str(field.min)[:10] + ("" if field.logical_type == "date" else "T00:00:00"))
    day = f"{integer_range(first, last)}-{_MONTH}-{_DAY}"
    return day if field.logical_type == "date" else f"{day}{_TIME}"


def _natural(low: int, high: int) -> list[str]:
    """Alternatives matching the whole numbers ``low`` to ``high`` (both >= 0)."""
    alternatives: list[str] = []
    start = low
    while start <= high:
        stop = min(high, 10 ** len(str(start)) - 1)
        alternatives += _same_width(str(start), str(stop))
        start = stop + 1
    return alternatives


def _same_width(low: str, high: str) -> list[str]:
    """Alternatives matching the digit strings ``low`` to ``high`` of one width."""
    if low == high:
        return [low]
    common = 0
    while low[common] == high[common]:
        common += 1
    if common:
        return [low[:common] + part for part in _same_width(low[common:], high[common:])]
    rest = len(low) - 1
    if rest == 0:
        return [f"[{low}-{high}]"]
    alternatives, first, last = [], int(low[0]), int(high[0])
    if low[1:] != "0" * rest:
        alternatives += [low[0] + part for part in _same_width(low[1:], "9" * rest)]
        first += 1
    tail = []
    if high[1:] != "9" * rest:
        tail = [high[0] + part for part in _same_width("0" * rest, high[1:])]
        last -= 1
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        alternatives.append(digit + _DIGIT + (f"{{{rest}}}" if rest > 1 else ""))
    return alternatives + tail


def _plain(value: Any) -> str:
    """A number as a CSV cell writes it (``30`` for 30.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _literal(text: str) -> str:
    """``text`` as one CSV cell (quoted when it holds a delimiter), escaped for a pattern."""
    if any(character in text for character in ',"\r\n') or text != text.strip():
        text = '"' + text.replace('"', '""') + '"'
    return _escape(text)


def _escape(text: str) -> str:
    """``text`` as a literal in both ECMA 262 and Python patterns (only syntax characters are
    escaped: ECMA's unicode mode refuses ``\\-``, which ``re.escape`` writes)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", text)
