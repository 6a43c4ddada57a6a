"""The PII policy applied to logged values, in pure Python: what ingest does in SQL.

Ingest applies each column's action (``keep | drop | hash | mask``) inside DuckDB
(:func:`mlstrata.data.pii.pii_expression`); a serving process has no DuckDB, so this module
does the same to single values with :mod:`re` and :mod:`hashlib`, and a test keeps the two
equal value for value:

- ``hash``: hex sha256 of the salt followed by the value as text — the same digest ingest
  wrote, so logged values join the training data's. A value that already is such a digest
  (64 hex characters: a client that sends the hashed form the model was trained on) is kept.
- ``mask``: the value's shape without its content, per PII kind (``j***@e***.com``, the last
  four digits of a card or phone, a name's initials).
- ``drop``: the field is left out of the logged inputs.

The salt is ingest's: ``MLSTRATA_PII_SALT`` when set, else the workspace's
``.mlstrata/secret.salt`` (:func:`read_salt`).

>>> mask_value("ana.garcia@example.es", ("email",))
'a***@e***.es'
>>> mask_value("call 612 345 678 now", ("phone",))
'call *** **5 678 now'
>>> hash_value("x", "pepper") == hash_value("x", "pepper") != hash_value("x", "salt")
True
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CANDIDATE_PATTERNS", "SALT_ENV", "FieldPolicy", "apply_policy", "hash_value",
           "mask_value", "read_salt", "value_text"]

SALT_ENV = "MLSTRATA_PII_SALT"

CANDIDATE_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
    "card_number": r"\b\d(?:[ \-]?\d){12,18}\b",
    "us_ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "es_nie": r"\b[XYZxyz][ \-]?\d{7}[ \-]?[A-Za-z]\b",
    "es_dni": r"\b\d{8}[ \-]?[A-Za-z]\b",
    "ip_address": r"\b\d{1,3}(?:\.\d{1,3}){3}\b|(?:\b[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,7}",
    "phone": r"(?:\+|\()?\b\d[\d \-.()]{7,}\d\b",
}
"""Candidate patterns of the PII kinds values can reveal, most specific first: masking tries
them in this order at each position. Written in the subset RE2 (DuckDB) and :mod:`re` (with
``re.ASCII``) read alike, so ingest and the log mask the same substrings. Each starts at a word
boundary or a non-word character, which lets masking skip whole words that start no match."""

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_LAST_FOUR_DIGITS = re.compile(r"\d\D*\d\D*\d\D*\d\D*$", re.ASCII)
_ALNUM = re.compile(r"[0-9A-Za-z]")
_EMAIL_SHAPE = re.compile(r"^(.)[^@]*@(.)[^@]*(\.[^.@]+)$")
_HEX = re.compile(r"[0-9A-Fa-f]")
_WORD = re.compile(r"([^\W_])[^\W_]*")  # RE2's [\pL\pN]: a letter or digit, in any script
_FULL = {kind: re.compile(pattern, re.ASCII) for kind, pattern in CANDIDATE_PATTERNS.items()}


@dataclass(frozen=True)
class FieldPolicy:
    """What to do with one logged field: ``action`` and the PII ``kinds`` found at ingest."""

    action: str
    kinds: tuple[str, ...] = ()


def read_salt(store: Path | None) -> str | None:
    """The salt of hashed PII: ``MLSTRATA_PII_SALT``, else ``store/secret.salt`` (None when
    neither exists)."""
    salt = os.environ.get(SALT_ENV)
    if salt:
        return salt
    if store is None:
        return None
    try:
        return (store / "secret.salt").read_text()
    except OSError:
        return None


def value_text(value: Any) -> str:
    """A value as DuckDB's ``CAST(value AS VARCHAR)`` spells it (what ingest hashed).

    >>> [value_text(v) for v in ("a", 3, 2.5, True)]
    ['a', '3', '2.5', 'true']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def hash_value(value: Any, salt: str) -> str:
    """The hex sha256 of ``salt`` followed by the value's text; a digest is kept as it is."""
    text = value_text(value)
    if _HEX_DIGEST.fullmatch(text):
        return text
    return hashlib.sha256((salt + text).encode("utf-8")).hexdigest()


def mask_value(text: str, kinds: Sequence[str]) -> str:
    """``text`` masked for ``kinds`` exactly as ingest's SQL masks it (see the module doc)."""
    value_kinds = [kind for kind in CANDIDATE_PATTERNS if kind in kinds]
    otherwise = _mask_words(text) if "name_hint" in kinds else text
    if not value_kinds:
        return otherwise
    for kind in value_kinds:
        if _FULL[kind].fullmatch(text):
            return _MASKERS[kind](text)
    any_kind = "|".join(f"(?:{CANDIDATE_PATTERNS[kind]})" for kind in value_kinds)
    if re.search(any_kind, text, re.ASCII) is None:
        return otherwise
    tokens = [m.group(0) for m in re.finditer(any_kind + r"|\w+|\W", text, re.ASCII)]
    return "".join(_mask_token(token, value_kinds) for token in tokens)


def apply_policy(record: dict[str, Any], policy: Mapping[str, FieldPolicy],
                 salt: str | None) -> dict[str, Any]:
    """``record`` with each listed field hashed, masked or dropped (in place; returned).

    Without a salt a field to hash is dropped rather than logged in clear.
    """
    for name, rule in policy.items():
        if name not in record:
            continue
        value = record[name]
        if rule.action == "drop" or (rule.action == "hash" and salt is None):
            del record[name]
        elif value is None:
            continue
        elif rule.action == "hash":
            record[name] = hash_value(value, salt or "")
        elif rule.action == "mask":
            record[name] = mask_value(value_text(value), rule.kinds)
    return record


def _mask_token(token: str, kinds: Sequence[str]) -> str:
    for kind in kinds:
        if _FULL[kind].fullmatch(token):
            return _MASKERS[kind](token)
    return token


def _keep_last_digits(text: str) -> str:
    found = _LAST_FOUR_DIGITS.search(text)
    tail = found.group(0) if found else ""
    return _ALNUM.sub("*", text[:len(text) - len(tail)]) + tail


def _mask_email(text: str) -> str:
    return _EMAIL_SHAPE.sub(r"\1***@\2***\3", text, count=1)


def _mask_ip(text: str) -> str:
    return _HEX.sub("*", text)


def _mask_words(text: str) -> str:
    return _WORD.sub(r"\1***", text)


_MASKERS: dict[str, Callable[[str], str]] = {
    "email": _mask_email, "iban": _keep_last_digits, "card_number": _keep_last_digits,
    "us_ssn": _keep_last_digits, "es_nie": _keep_last_digits, "es_dni": _keep_last_digits,
    "ip_address": _mask_ip, "phone": _keep_last_digits,
}
