"""Contract ``pattern`` rules checked with Arrow's RE2 kernel, where RE2 cannot be more lenient.

The runtime checks a pattern with Python's ``re.fullmatch``, one value at a time. A batch of
100,000 postal codes is checked far faster by Arrow's vectorised RE2 kernel, but the two dialects
differ (``\\d`` is ASCII-only in RE2 and Unicode in Python, RE2 reads ``[[:alpha:]]`` as a class,
Python 3.11 reads ``{,5}`` as a repetition, ...). :func:`re2_form` accepts only patterns written
with constructs whose RE2 meaning matches a subset of what the Python meaning matches; for those,
a value RE2 matches also matches in Python. So RE2 only settles the values it accepts, and the
values it refuses (normally the few bad rows) go back to the runtime's own check — the verdict is
always Python's.

>>> re2_form(r"^[0-9]{5}$")
'^(?:^[0-9]{5}$)$'
>>> re2_form(r"^\\D+$") is None  # \\D is a superset in RE2 (it includes non-ASCII digits)
True
"""

from __future__ import annotations

import functools
import re

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["re2_form", "surely_matching"]

_CLASS_ITEM = r"(?:[^\\\[\]]|\\[^0-9A-Za-z])"
_SAFE_TOKEN = re.compile(rf"""
      \\[dws]                               # ASCII-only in RE2, Unicode in Python: a subset
    | \\[^0-9A-Za-z]                        # an escaped punctuation mark: itself in both
    | \(\?: | \((?!\?)                       # groups; no (?P<name>, (?=, (?i) and the like
    | [)|.^$]                               # alternation, any character, anchors
    | (?:[*+?]|\{{\d+(?:,\d*)?\}})\??        # quantifiers (lazy or not); never {{,n}}
    | \[\^{_CLASS_ITEM}+\]                  # a negated class: literal characters only
    | \[(?!\^){_CLASS_ITEM}(?:{_CLASS_ITEM}|\\[dws])*\]  # a class (no POSIX [:x:], no nesting)
    | [^\\^$.|?*+()\[\]{{}}]                 # a literal character
""", re.VERBOSE)


@functools.lru_cache(maxsize=256)
def re2_form(pattern: str) -> str | None:
    """``pattern`` anchored for a full match in RE2, or None when it uses a construct that RE2
    might read more leniently than Python (then every value is checked by the runtime)."""
    position = 0
    while position < len(pattern):
        token = _SAFE_TOKEN.match(pattern, position)
        if token is None:
            return None
        position = token.end()
    anchored = f"^(?:{pattern})$"
    try:
        pc.match_substring_regex(pa.array([""]), anchored)  # an empty array compiles nothing
    except pa.ArrowInvalid:  # beyond RE2 (e.g. a repetition over 1000)
        return None
    return anchored


def surely_matching(array: pa.Array, anchored: str) -> pa.BooleanArray:
    """Where ``array`` matches the :func:`re2_form` pattern ``anchored`` (False for nulls).

    True is final (Python would match too); False means "ask the runtime".
    """
    matched: pa.BooleanArray = pc.fill_null(pc.match_substring_regex(array, anchored), False)
    return matched
