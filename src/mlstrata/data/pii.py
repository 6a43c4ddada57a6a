"""Find personal data in a table and turn a per-column policy into SQL that removes it.

:func:`scan_pii` looks at column *names* (``email``, ``phone``, ``dni``, ``first_name``...) and at
the *values* of text columns: DuckDB finds candidate substrings with broad patterns over a
reproducible sample (the first ``sample_size`` non-null values), and Python validates each
candidate (Luhn, IBAN mod-97, DNI/NIE letters, SSN ranges, :mod:`ipaddress`; see
:mod:`mlstrata.data._pii_checks`). Values are checked for substrings, so PII inside free text
(a note that quotes an e-mail) is found too.

A kind is reported for a column when enough of its checked values hold a validated match:

* 0.5 % (and at least one value) for kinds whose validation leaves almost no false positives:
  ``email``, ``iban``, ``es_dni``, ``es_nie``, ``us_ssn``;
* 5 % for kinds that ordinary data can imitate by chance: ``phone`` (grouped digits),
  ``card_number`` (one random number in ten passes Luhn), ``ip_address`` (version strings).

:func:`pii_expression` turns the action chosen for a column (keep / drop / hash / mask) into a
DuckDB expression, so ingest applies the policy inside the query that writes the snapshot.

>>> import duckdb
>>> from mlstrata.data.types import columns_of
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE t AS SELECT 'ana' || range || '@mail.es' AS mail FROM range(3)")
>>> [f.kinds for f in scan_pii(con, "t", columns_of(con.table("t")))]
[('email',)]
>>> con.execute(f"SELECT {pii_expression('mail', 'mask', ['email'], '')} FROM t").fetchone()
('a***@m***.es',)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import duckdb

from ..config import PiiAction
from ._pii_checks import CANDIDATE_PATTERNS, VALIDATORS
from ._sql_dialect import DUCKDB, Dialect
from .engine import quote_identifier
from .types import ColumnInfo

__all__ = ["PII_KINDS", "PiiFinding", "kinds_from_name", "pii_expression", "scan_pii"]

PII_KINDS = (
    "email", "phone", "card_number", "iban", "ip_address",
    "es_dni", "es_nie", "us_ssn", "name_hint",
)
"""Every kind a finding can name; ``name_hint`` is personal data only a column name reveals
(names, addresses, birth dates)."""

_STRONG_FRACTION = 0.005
_WEAK_FRACTION = 0.05
_STRONG_KINDS = frozenset({"email", "iban", "es_dni", "es_nie", "us_ssn"})

_NAME_TOKENS: dict[str, frozenset[str]] = {
    "email": frozenset({"email", "mail", "correo"}),
    "phone": frozenset({"phone", "telephone", "tel", "mobile", "movil", "telefono", "fax"}),
    "card_number": frozenset({"card", "tarjeta"}),
    "iban": frozenset({"iban"}),
    "ip_address": frozenset({"ip", "ipv4", "ipv6", "ipaddr"}),
    "es_dni": frozenset({"dni", "nif"}),
    "es_nie": frozenset({"nie"}),
    "us_ssn": frozenset({"ssn"}),
    "name_hint": frozenset({
        "name", "firstname", "lastname", "surname", "fullname", "nombre", "apellido", "apellidos",
        "address", "addr", "street", "direccion", "domicilio", "dob", "birthdate", "passport",
    }),
}
_NAME_COMPOUNDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("phone",),
    "card_number": ("creditcard", "debitcard", "cardnumber", "ccnumber"),
    "iban": ("iban", "bankaccount", "accountnumber"),
    "ip_address": ("ipaddress",),
    "us_ssn": ("socialsecurity",),
    "name_hint": ("firstname", "lastname", "fullname", "surname", "dateofbirth", "birthdate"),
}
_NOT_A_PERSON = frozenset({
    "file", "product", "company", "brand", "model", "city", "region", "country", "province",
    "state", "host", "domain", "table", "column", "field", "category", "item", "feature",
    "project", "dataset", "bank", "branch", "store", "shop",
})
_MORE_SPECIFIC_THAN_NAME = ("email", "ip_address")


@dataclass(frozen=True)
class PiiFinding:
    """What the scan found in one column; ``example`` is always masked, never a raw value."""

    column: str
    kinds: tuple[str, ...]
    by_name: bool
    matches: int
    checked: int
    example: str | None

    def to_dict(self) -> dict[str, Any]:
        """The catalog and profile form (JSON-ready)."""
        return {
            "column": self.column,
            "kinds": list(self.kinds),
            "by_name": self.by_name,
            "matches": self.matches,
            "checked": self.checked,
            "example": self.example,
        }


def kinds_from_name(column: str) -> tuple[str, ...]:
    """The PII kinds a column's name suggests (``customerEmail`` → email, ``first_name`` → name).

    >>> kinds_from_name("customerEmail"), kinds_from_name("ip_address"), kinds_from_name("zip")
    (('email',), ('ip_address',), ())
    >>> kinds_from_name("first_name"), kinds_from_name("product_name")
    (('name_hint',), ())
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column)
    tokens = [token for token in re.split(r"[^0-9a-z]+", spaced.lower()) if token]
    joined = "".join(tokens)
    found = [
        kind
        for kind in PII_KINDS
        if _NAME_TOKENS[kind].intersection(tokens)
        or any(compound in joined for compound in _NAME_COMPOUNDS.get(kind, ()))
    ]
    if "name_hint" in found and (
        _NOT_A_PERSON.intersection(tokens) or any(k in found for k in _MORE_SPECIFIC_THAN_NAME)
    ):
        found.remove("name_hint")
    return tuple(found)


def scan_pii(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[ColumnInfo],
    sample_size: int = 20000,
) -> list[PiiFinding]:
    """Scan ``table`` (a table or view name on ``con``) and return one finding per PII column.

    Only ``text`` columns are checked by value; any column can be flagged by its name (a ``phone``
    column stored as integers). Columns with nothing found are left out.
    """
    findings = (_scan_column(con, table, column, sample_size) for column in columns)
    return [finding for finding in findings if finding is not None]


def pii_expression(column: str, action: PiiAction, kinds: Sequence[str], salt: str,
                   dialect: Dialect = DUCKDB) -> str | None:
    """The SQL expression (DuckDB's, or Spark's with ``dialect``) that applies ``action`` to
    ``column``; ``None`` means drop it. Both dialects give the same values.

    * ``keep``: the column as it is;
    * ``hash``: the hex sha256 of ``salt`` followed by the value as text (NULL stays NULL), so
      equal values still join and group, but cannot be read back without the salt;
    * ``mask``: text that keeps the value's shape and hides its content. Whole values and PII
      substrings inside free text are masked per kind: e-mails as ``j***@e***.com``; phones,
      cards, IBANs, DNI/NIE and SSNs keep their separators and last 4 digits
      (``**** **** **** 1111``); IP addresses keep only their punctuation; ``name_hint``
      columns keep the first character of each word (``J*** S***``).

    >>> pii_expression("iban", "drop", ["iban"], "s") is None
    True
    >>> print(pii_expression("my col", "hash", [], "pepper"))
    sha256('pepper' || CAST("my col" AS VARCHAR))
    """
    unknown = sorted(set(kinds).difference(PII_KINDS))
    if unknown:
        raise ValueError(f"unknown PII kinds {unknown}; known kinds are {', '.join(PII_KINDS)}")
    quoted = dialect.identifier(column)
    text = dialect.text(quoted)
    match action:
        case "keep":
            return quoted
        case "drop":
            return None
        case "hash":
            return dialect.sha256(f"{dialect.literal(salt)} || {text}")
        case "mask":
            return _mask_sql(text, kinds, dialect)
        case _:
            assert_never(action)


def _scan_column(
    con: duckdb.DuckDBPyConnection, table: str, column: ColumnInfo, sample_size: int
) -> PiiFinding | None:
    name_kinds = kinds_from_name(column.name)
    checked, per_value = (
        _validated_matches(con, table, column.name, sample_size)
        if column.type == "text"
        else (0, [])
    )
    counts = Counter(kind for _, kinds in per_value for kind in kinds)
    value_kinds = {kind for kind, count in counts.items() if count >= _required(kind, checked)}
    kinds = tuple(kind for kind in PII_KINDS if kind in value_kinds or kind in name_kinds)
    if not kinds:
        return None
    matching = [value for value, found in per_value if found & value_kinds]
    raw = matching[0] if matching else _first_value(con, table, column.name)
    return PiiFinding(
        column=column.name,
        kinds=kinds,
        by_name=bool(name_kinds),
        matches=len(matching),
        checked=checked,
        example=None if raw is None else _masked_example(con, raw, kinds),
    )


def _required(kind: str, checked: int) -> int:
    """How many matching values make ``kind`` a finding among ``checked`` values."""
    fraction = _STRONG_FRACTION if kind in _STRONG_KINDS else _WEAK_FRACTION
    return max(1, math.ceil(fraction * checked))


def _validated_matches(
    con: duckdb.DuckDBPyConnection, table: str, column: str, sample_size: int
) -> tuple[int, list[tuple[str, set[str]]]]:
    """Count the sampled values, and list each candidate value with the kinds it truly holds."""
    quoted = quote_identifier(column)
    sample = (
        f"SELECT CAST({quoted} AS VARCHAR) AS v FROM {quote_identifier(table)} "
        f"WHERE {quoted} IS NOT NULL LIMIT {int(sample_size)}"
    )
    (checked,) = con.execute(f"SELECT count(*) FROM ({sample})").fetchall()[0]
    kinds = list(CANDIDATE_PATTERNS)
    extracts = ", ".join("regexp_extract_all(v, ?)" for _ in kinds)
    rows = con.execute(
        f"SELECT v, {extracts} FROM ({sample}) WHERE regexp_matches(v, ?)",
        [*CANDIDATE_PATTERNS.values(), _any_of(kinds)],
    ).fetchall()
    return int(checked), [(row[0], _kinds_in(kinds, row[1:])) for row in rows]


def _kinds_in(kinds: list[str], candidates: Sequence[list[str]]) -> set[str]:
    """The kinds with a validated candidate; a string a more specific kind (earlier in ``kinds``)
    already claimed does not count again (``123-45-6789`` is an SSN, not also a phone)."""
    claimed: set[str] = set()
    found_kinds: set[str] = set()
    for kind, found in zip(kinds, candidates, strict=True):
        valid = {candidate for candidate in found if VALIDATORS[kind](candidate)} - claimed
        if valid:
            found_kinds.add(kind)
            claimed |= valid
    return found_kinds


def _first_value(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str | None:
    quoted = quote_identifier(column)
    row = con.execute(
        f"SELECT CAST({quoted} AS VARCHAR) FROM {quote_identifier(table)} "
        f"WHERE {quoted} IS NOT NULL LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def _masked_example(con: duckdb.DuckDBPyConnection, raw: str, kinds: Sequence[str]) -> str | None:
    """``raw`` masked for ``kinds``; ``None`` when masking would leave it unchanged."""
    expression = pii_expression("v", "mask", kinds, "")
    row = con.execute(f"SELECT {expression} FROM (SELECT ?::VARCHAR AS v)", [raw]).fetchone()
    masked = None if row is None else row[0]
    return None if masked == raw else masked


def _any_of(kinds: Sequence[str]) -> str:
    return "|".join(f"(?:{CANDIDATE_PATTERNS[kind]})" for kind in kinds)


_LAST_FOUR_DIGITS = r"\d\D*\d\D*\d\D*\d\D*$"


def _keep_last_digits(value: str, d: Dialect) -> str:
    tail = d.extract(value, _LAST_FOUR_DIGITS)
    head = f"left({value}, length({value}) - length({tail}))"
    return f"({d.replace_all(head, '[0-9A-Za-z]', '*')} || {tail})"


def _mask_email(value: str, d: Dialect) -> str:
    return d.replace_all(value, r"^(.)[^@]*@(.)[^@]*(\.[^.@]+)$", r"\1***@\2***\3")


def _mask_ip(value: str, d: Dialect) -> str:
    return d.replace_all(value, "[0-9A-Fa-f]", "*")


def _mask_words(value: str, d: Dialect) -> str:
    return d.replace_all(value, r"([\pL\pN])[\pL\pN]*", r"\1***")


_MASKERS: dict[str, Callable[[str, Dialect], str]] = {
    "email": _mask_email,
    "iban": _keep_last_digits,
    "card_number": _keep_last_digits,
    "us_ssn": _keep_last_digits,
    "es_nie": _keep_last_digits,
    "es_dni": _keep_last_digits,
    "ip_address": _mask_ip,
    "phone": _keep_last_digits,
}


def _mask_sql(value: str, kinds: Sequence[str], d: Dialect) -> str:
    """Mask whole values of a kind directly; mask PII substrings of free text token by token.

    Free text is split into PII matches, words and single other characters (no pattern starts
    inside a word), each PII token is masked for its kind and the text is joined back together.
    """
    value_kinds = [kind for kind in CANDIDATE_PATTERNS if kind in kinds]
    otherwise = _mask_words(value, d) if "name_hint" in kinds else value
    if not value_kinds:
        return otherwise
    token = "_pii_token"
    per_token = " ".join(_when_full(token, kind, d) for kind in value_kinds)
    tokens = d.extract_all(value, _any_of(value_kinds) + r"|\w+|\W")
    rebuilt = d.joined(tokens, token, f"CASE {per_token} ELSE {token} END")
    whole = " ".join(_when_full(value, kind, d) for kind in value_kinds)
    return (f"CASE {whole} WHEN {d.matches(value, _any_of(value_kinds))} "
            f"THEN {rebuilt} ELSE {otherwise} END")


def _when_full(value: str, kind: str, d: Dialect) -> str:
    return f"WHEN {d.full_match(value, CANDIDATE_PATTERNS[kind])} THEN {_MASKERS[kind](value, d)}"
