"""The few SQL spellings in which DuckDB and Spark SQL differ, for the builders both engines run.

The PII policy (:func:`.pii.pii_expression`) and the held-out rule's hash
(:func:`.split.hash_sql`) are each one SQL builder; ingest runs them in DuckDB, and in Spark SQL
with ``--engine spark``, so both engines mask, hash and seal alike. Everything else they write
(``||``, ``CASE``, ``md5``, ``substr``, ``left``, ``length``...) reads the same in both.

>>> print(DUCKDB.literal("a'b"), SPARK.literal("a'b"))
'a''b' 'a\\'b'
>>> SPARK.replace_all("v", "(a)b", r"\\1*")
"regexp_replace(v, '(a)b', '$1*')"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .engine import quote_identifier, quote_literal

__all__ = ["DUCKDB", "SPARK", "Dialect"]


@dataclass(frozen=True)
class Dialect:
    """How one engine spells what the shared builders need; patterns are given in RE2 syntax
    that Java's regular expressions read alike (``\\b``, ``\\d``, ``\\pL``, ``(?:...)``)."""

    name: str

    @property
    def spark(self) -> bool:
        """Whether this is Spark SQL (else DuckDB)."""
        return self.name == "spark"

    def literal(self, value: str) -> str:
        """A string literal: Spark reads backslash escapes inside quotes, DuckDB does not."""
        if self.spark:
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return quote_literal(value)

    def identifier(self, name: str) -> str:
        """A quoted column name."""
        return "`" + name.replace("`", "``") + "`" if self.spark else quote_identifier(name)

    def text(self, sql: str) -> str:
        """``sql`` cast to text."""
        return f"CAST({sql} AS {'STRING' if self.spark else 'VARCHAR'})"

    def sha256(self, sql: str) -> str:
        """The lower-case hex sha256 of text ``sql``."""
        return f"sha2({sql}, 256)" if self.spark else f"sha256({sql})"

    def full_match(self, sql: str, pattern: str) -> str:
        """Whether all of ``sql`` matches ``pattern``."""
        if self.spark:
            return f"({sql} RLIKE {self.literal(f'^(?:{pattern})$')})"
        return f"regexp_full_match({sql}, {self.literal(pattern)})"

    def matches(self, sql: str, pattern: str) -> str:
        """Whether ``pattern`` matches somewhere in ``sql``."""
        if self.spark:
            return f"({sql} RLIKE {self.literal(pattern)})"
        return f"regexp_matches({sql}, {self.literal(pattern)})"

    def extract(self, sql: str, pattern: str) -> str:
        """The first match of ``pattern`` in ``sql`` ('' when none)."""
        group = ", 0" if self.spark else ""
        return f"regexp_extract({sql}, {self.literal(pattern)}{group})"

    def extract_all(self, sql: str, pattern: str) -> str:
        """Every match of ``pattern`` in ``sql``, as a list."""
        group = ", 0" if self.spark else ""
        return f"regexp_extract_all({sql}, {self.literal(pattern)}{group})"

    def replace_all(self, sql: str, pattern: str, replacement: str) -> str:
        """Every match of ``pattern`` replaced; ``replacement`` names groups ``\\1``, ``\\2``."""
        if self.spark:
            java = re.sub(r"\\(\d)", r"$\1", replacement)
            return f"regexp_replace({sql}, {self.literal(pattern)}, {self.literal(java)})"
        return f"regexp_replace({sql}, {self.literal(pattern)}, {self.literal(replacement)}, 'g')"

    def joined(self, items: str, variable: str, body: str) -> str:
        """The list ``items`` mapped through ``body`` (over ``variable``) and concatenated."""
        if self.spark:
            return f"array_join(transform({items}, {variable} -> {body}), '')"
        return f"array_to_string(list_transform({items}, lambda {variable}: {body}), '')"

    def hex_to_bigint(self, sql: str) -> str:
        """Hex digits (at most 15) as a BIGINT."""
        if self.spark:
            return f"CAST(conv({sql}, 16, 10) AS BIGINT)"
        return f"CAST('0x' || {sql} AS BIGINT)"

    def int_div(self, left: str, right: str) -> str:
        """Integer division of two non-negative integers."""
        return f"({left}) div {right}" if self.spark else f"({left}) // {right}"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
