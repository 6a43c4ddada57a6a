"""The log's PII policy in Python equals ingest's in DuckDB, value for value."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from mlstrata.data.pii import pii_expression
from mlstrata.predlog.pii import FieldPolicy, apply_policy, hash_value, mask_value

SAMPLES = [
    "ana.garcia84@example.es", "Mail me: j.smith@corp.example.com or call", "+34 612 345 678",
    "(555) 123-4567", "4111 1111 1111 1111", "card 4111-1111-1111-1111 expires",
    "ES91 2100 0418 4502 0005 1332", "123-45-6789", "12345678Z", "X1234567L", "192.168.1.20",
    "fe80::1ff:fe23:4567:890a", "Jane Q. Public", "José Ñúñez-Ortiz", "plain text, no PII",
    "", "version 1.2.3.4 of the app", "ids 20-30 and 40",
]
KINDS = [("email",), ("phone",), ("card_number",), ("iban",), ("us_ssn",), ("es_dni",),
         ("es_nie",), ("ip_address",), ("name_hint",), ("email", "phone"),
         ("email", "name_hint"), ()]


@pytest.mark.parametrize("kinds", KINDS, ids=lambda k: "+".join(k) or "none")
def test_masking_matches_ingest_sql(kinds: tuple[str, ...]) -> None:
    con = duckdb.connect()
    sql = pii_expression("v", "mask", list(kinds), "")
    for text in SAMPLES:
        [(expected,)] = con.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS v)",
                                    [text]).fetchall()
        assert mask_value(text, kinds) == expected, text


@pytest.mark.parametrize("value", ["ana@example.es", 12345, "08001", True])
def test_hashing_matches_ingest_sql(value: object) -> None:
    con = duckdb.connect()
    sql = pii_expression("v", "hash", [], "pepper")
    [(expected,)] = con.execute(f"SELECT {sql} FROM (SELECT ? AS v)", [value]).fetchall()
    assert hash_value(value, "pepper") == expected


def test_the_policy_hashes_masks_and_drops() -> None:
    digest = hashlib.sha256(b"saltfoo").hexdigest()
    record = {"a": "foo", "b": "ana@example.es", "c": "secret", "d": None, "e": digest, "f": 1}
    policy = {"a": FieldPolicy("hash"), "b": FieldPolicy("mask", ("email",)),
              "c": FieldPolicy("drop"), "d": FieldPolicy("hash"), "e": FieldPolicy("hash")}
    assert apply_policy(dict(record), policy, "salt") == {
        "a": digest, "b": "a***@e***.es", "d": None, "e": digest, "f": 1}
    # Without a salt, a field to hash is left out rather than logged in clear.
    assert apply_policy(dict(record), {"a": FieldPolicy("hash")}, None) == {
        k: v for k, v in record.items() if k != "a"}
