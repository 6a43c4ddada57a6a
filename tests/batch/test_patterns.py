"""Contract patterns matched by Arrow's RE2 kernel: RE2 may only settle the values Python's
``re.fullmatch`` would also accept; patterns where it could be more lenient are refused."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlstrata.batch.patterns import re2_form, surely_matching

SAFE = [r"^[0-9]{5}$", r"\d{2,4}-\d+", r"[A-Z]{2}\.?[a-z]*", r"\w+@\w+\.com", r"\s*x\s*",
        r"[^0-9]+", r"(ab|c)*d?", r"(?:x|y){1,3}", r".+", r"[.\-_]+", r"[\]a]+", r"a+?b??"]
REFUSED = [r"\D+", r"\W", r"\S+", r"\bword\b", r"[^\d]+", r"(?i)abc", r"(?P<n>a)", r"(?=a)a",
           r"a{,5}", r"[[:alpha:]]+", r"\u00e9", r"x{1001}", r"a*+", r"(a)\1"]
# ASCII and Unicode digits and letters, spaces, a newline: where the dialects differ
TEXTS = st.text(alphabet="09aZ_@.-x y\n\t\u0661\u00e9\u2003\u212a]", max_size=8)


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_are_anchored_for_a_full_match(pattern: str) -> None:
    assert re2_form(pattern) == f"^(?:{pattern})$"


@pytest.mark.parametrize("pattern", REFUSED)
def test_patterns_re2_could_read_more_leniently_are_refused(pattern: str) -> None:
    assert re2_form(pattern) is None


@given(st.lists(TEXTS, min_size=1, max_size=20))
def test_what_re2_accepts_python_accepts(texts: list[str]) -> None:
    for pattern in SAFE:
        anchored = re2_form(pattern)
        assert anchored is not None
        sure = surely_matching(pa.array(texts), anchored).to_pylist()
        for text, settled in zip(texts, sure, strict=True):
            if settled:
                assert re.fullmatch(pattern, text), (pattern, text)


def test_re2_matches_the_plain_cases_and_leaves_nulls_to_the_runtime() -> None:
    anchored = re2_form(r"[0-9]{5}")
    assert anchored is not None
    values = pa.array(["28001", "2800", None, "28001\n", "\u0661\u0662\u0663\u0664\u0665"])
    assert surely_matching(values, anchored).to_pylist() == [True, False, False, False, False]


@pytest.mark.parametrize(("pattern", "text"), [(r"\D", "\u0661"), (r"[^\d]", "\u0661"),
                                               (r"a{,5}", "a{,5}"), (r"\W", "\u00e9")])
def test_the_refused_constructs_do_differ(pattern: str, text: str) -> None:
    """RE2 matches these texts and Python does not: why the patterns are refused."""
    python = re.fullmatch(pattern, text) is not None
    re2 = surely_matching(pa.array([text]), f"^(?:{pattern})$").to_pylist()[0]
    assert re2 and not python
