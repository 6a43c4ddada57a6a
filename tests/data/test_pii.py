"""PII detection (names, validated values, free text) and the keep/drop/hash/mask SQL."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import duckdb
import pytest

from mlstrata.data import _pii_checks as checks
from mlstrata.data.pii import PII_KINDS, PiiFinding, kinds_from_name, pii_expression, scan_pii
from mlstrata.data.types import columns_of

VALID_AND_INVALID: dict[str, tuple[list[str], list[str]]] = {
    "email": (
        ["ana.garcia84@gmail.com", "j_doe+tag@mail.example.co.uk", "x@ab.io"],
        ["ana..garcia@gmail.com", "ana@gmail", "ana@-bad-.com", ".ana@gmail.com", "ana@gmail.c0m"],
    ),
    "phone": (
        ["+34 612 345 678", "+34612345678", "0034 612 34 56 78", "612 34 56 78", "612-345-678",
         "(555) 123-4567", "+1 (555) 123-4567", "91.123.45.67"],
        ["612345678", "2021-03-04 12", "612 345-678", "+0 612 345 678", "12 34", "111 111 111",
         "+34 61"],
    ),
    "card_number": (
        ["4111 1111 1111 1111", "4111111111111111", "5555-5555-5555-4444", "378282246310005",
         "2223000048400011"],
        ["4111 1111 1111 1112", "1234567812345670", "4111", "0000000000000000",
         "41111111111111111111"],
    ),
    "iban": (
        ["ES91 2100 0418 4502 0005 1332", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32",
         "NL91ABNA0417164300"],
        ["ES91 2100 0418 4502 0005 1333", "DE89370400440532013001", "QQ82WEST12345698765432",
         "ES91 2100 0418", "ESXX21000418450200051332"],
    ),
    "ip_address": (
        ["192.168.1.20", "8.8.8.8", "2001:db8::8a2e:370:7334", "fe80:0:0:0:200:f8ff:fe21:67cf"],
        ["256.1.1.1", "192.168.01.1", "12:30:45", "1.2.3", "d::"],
    ),
    "es_dni": (
        ["12345678Z", "12345678-z", "00000000T", "87654321X"],
        ["12345678A", "1234567Z", "123456789Z", "ABCDEFGHZ"],
    ),
    "es_nie": (
        ["X1234567L", "Y1234567X", "Z1234567R", "x-1234567-l"],
        ["X1234567A", "W1234567L", "X123456L", "12345678Z"],
    ),
    "us_ssn": (
        ["123-45-6789", "001-01-0001", "899-99-9999"],
        ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-6789", "123-45-0000", "123456789"],
    ),
}


def _cases(valid: bool) -> list[tuple[str, str]]:
    return [(kind, value) for kind, pair in VALID_AND_INVALID.items() for value in pair[not valid]]


@pytest.mark.parametrize(("kind", "value"), _cases(valid=True))
def test_validator_accepts_real_values(kind: str, value: str) -> None:
    assert checks.VALIDATORS[kind](value)


@pytest.mark.parametrize(("kind", "value"), _cases(valid=False))
def test_validator_rejects_look_alikes(kind: str, value: str) -> None:
    assert not checks.VALIDATORS[kind](value)


def test_every_value_kind_has_a_pattern_and_a_validator() -> None:
    value_kinds = [kind for kind in PII_KINDS if kind != "name_hint"]
    assert sorted(checks.CANDIDATE_PATTERNS) == sorted(value_kinds)
    assert sorted(checks.VALIDATORS) == sorted(value_kinds)


def test_luhn_checksum_catches_any_wrong_check_digit() -> None:
    assert checks.luhn_valid("79927398713")
    assert not any(checks.luhn_valid(f"7992739871{digit}") for digit in "012456789")


@pytest.mark.parametrize(
    ("column", "kinds"),
    [
        ("email", ("email",)),
        ("E-Mail Address", ("email",)),
        ("customerEmail", ("email",)),
        ("phone_number", ("phone",)),
        ("mobile", ("phone",)),
        ("credit_card_number", ("card_number",)),
        ("iban", ("iban",)),
        ("bank_account", ("iban",)),
        ("ip", ("ip_address",)),
        ("client_ip_address", ("ip_address",)),
        ("dni", ("es_dni",)),
        ("nie", ("es_nie",)),
        ("ssn", ("us_ssn",)),
        ("first_name", ("name_hint",)),
        ("Surname", ("name_hint",)),
        ("home_address", ("name_hint",)),
        ("zip", ()),
        ("postal_code", ()),
        ("product_name", ()),
        ("num_credit_lines", ()),
        ("description", ()),
        ("shipping", ()),
    ],
)
def test_kinds_from_name(column: str, kinds: tuple[str, ...]) -> None:
    assert kinds_from_name(column) == kinds


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """A table of 100 rows where every column exercises one detection rule."""
    con = duckdb.connect()
    con.execute(
        """
        CREATE TABLE people AS SELECT
            'user' || i || '@example.com' AS contact,
            '+34 6' || lpad(CAST(i * 1234567 % 100000000 AS VARCHAR), 8, '0') AS reach_at,
            600000000 + i AS phone,
            CASE WHEN i % 10 = 0 THEN 'please write to ana' || i || '@mail.es, thanks'
                 ELSE 'no contact data in note ' || i END AS note,
            CASE WHEN i = 0 THEN 'lost@mail.es' ELSE 'code ' || i END AS rare_email,
            'ES91 2100 0418 4502 0005 1332' AS account,
            '4111 1111 1111 1111' AS pan_text,
            '10.0.' || (i % 256) || '.' || (i % 200 + 1) AS source,
            lpad(CAST(i AS VARCHAR), 8, '0')
                || substr('TRWAGMYFPDXBNJZSQVHLCKE', i % 23 + 1, 1) AS doc,
            'X' || lpad(CAST(i AS VARCHAR), 7, '0')
                || substr('TRWAGMYFPDXBNJZSQVHLCKE', i % 23 + 1, 1) AS foreign_doc,
            '123-45-' || lpad(CAST(i + 1 AS VARCHAR), 4, '0') AS tax_ref,
            CASE WHEN i < 3 THEN '4111111111111111' ELSE 'sku-' || i END AS rare_luhn,
            'Madrid' AS city,
            lpad(CAST(i AS VARCHAR), 5, '0') AS postal_code,
            'Ana Pérez' AS full_name,
            i * 1.5 AS amount,
            NULL::VARCHAR AS empty_text
        FROM range(100) t(i)
        """
    )
    return con


def _scan(con: duckdb.DuckDBPyConnection, sample_size: int = 20000) -> dict[str, PiiFinding]:
    columns = columns_of(con.table("people"))
    return {f.column: f for f in scan_pii(con, "people", columns, sample_size)}


def test_scan_reports_validated_values_names_and_free_text(con: duckdb.DuckDBPyConnection) -> None:
    found = _scan(con)
    assert {name: f.kinds for name, f in found.items()} == {
        "contact": ("email",),
        "reach_at": ("phone",),
        "phone": ("phone",),
        "note": ("email",),
        "account": ("iban",),
        "pan_text": ("card_number",),
        "source": ("ip_address",),
        "doc": ("es_dni",),
        "foreign_doc": ("es_nie",),
        "tax_ref": ("us_ssn",),
        "rare_email": ("email",),
        "full_name": ("name_hint",),
    }
    assert found["note"].matches == 10 and found["note"].checked == 100
    assert not found["note"].by_name and found["phone"].by_name
    assert found["phone"].checked == 0  # an integer column is flagged by name, never read


def test_weak_kinds_need_five_percent_strong_kinds_half_a_percent(
    con: duckdb.DuckDBPyConnection,
) -> None:
    found = _scan(con)
    assert found["rare_email"].matches == 1  # 1 % of values: enough for a validated e-mail
    assert "rare_luhn" not in found  # 3 % Luhn-valid numbers: could be chance, not reported
    assert "postal_code" not in found and "city" not in found and "amount" not in found


def test_sample_size_bounds_the_values_checked(con: duckdb.DuckDBPyConnection) -> None:
    found = _scan(con, sample_size=5)
    assert found["contact"].checked == 5 and found["contact"].matches == 5
    assert (found["note"].checked, found["note"].matches) == (5, 1)


def test_examples_are_masked_never_raw(con: duckdb.DuckDBPyConnection) -> None:
    found = _scan(con)
    raw = con.execute("SELECT * FROM people").fetchall()
    raw_values = {str(value) for row in raw for value in row if value is not None}
    assert found["contact"].example == "u***@e***.com"
    assert found["note"].example == "please write to a***@m***.es, thanks"
    assert found["account"].example == "**** **** **** **** **** 1332"
    assert found["phone"].example == "*****0000"
    assert found["full_name"].example == "A*** P***"
    for finding in found.values():
        assert finding.example is not None
        assert finding.example not in raw_values


def test_finding_to_dict_is_json_ready(con: duckdb.DuckDBPyConnection) -> None:
    assert _scan(con)["doc"].to_dict() == {
        "column": "doc",
        "kinds": ["es_dni"],
        "by_name": False,
        "matches": 100,
        "checked": 100,
        "example": "****0000T",
    }


def _apply(expression: str | None, values: Sequence[object], sql_type: str = "VARCHAR") -> list:
    assert expression is not None
    con = duckdb.connect()
    con.execute(f'CREATE TABLE t (i INTEGER, "the col" {sql_type})')
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [row[0] for row in con.execute(f"SELECT {expression} FROM t ORDER BY i").fetchall()]


def test_keep_returns_the_column_untouched() -> None:
    assert _apply(pii_expression("the col", "keep", ["email"], "s"), ["a@b.com", None]) == [
        "a@b.com",
        None,
    ]


def test_drop_means_no_expression() -> None:
    assert pii_expression("the col", "drop", ["email"], "s") is None


def test_hash_is_salted_sha256_and_keeps_nulls() -> None:
    values = ["ana@mail.es", None, "ana@mail.es", "bob@mail.es"]
    first = _apply(pii_expression("the col", "hash", ["email"], "salt-1"), values)
    again = _apply(pii_expression("the col", "hash", ["email"], "salt-1"), values)
    other = _apply(pii_expression("the col", "hash", ["email"], "salt-2"), values)
    assert first[0] == hashlib.sha256(b"salt-1ana@mail.es").hexdigest()
    assert first[1] is None and first[0] == first[2] != first[3]
    assert first == again
    assert other[0] != first[0] and other[1] is None


def test_hash_of_a_number_column_hashes_its_text() -> None:
    hashed = _apply(pii_expression("the col", "hash", ["phone"], "k"), [612345678], "BIGINT")
    assert hashed == [hashlib.sha256(b"k612345678").hexdigest()]


MASK_CASES: list[tuple[list[str], str | None, str | None]] = [
    (["email"], "john.doe@example.com", "j***@e***.com"),
    (["email"], "a@mail.example.co.uk", "a***@m***.uk"),
    (["phone"], "+34 612 345 678", "+** *** **5 678"),
    (["phone"], "612345678", "*****5678"),
    (["card_number"], "4111-1111-1111-1111", "****-****-****-1111"),
    (["iban"], "ES91 2100 0418 4502 0005 1332", "**** **** **** **** **** 1332"),
    (["ip_address"], "192.168.1.23", "***.***.*.**"),
    (["ip_address"], "2001:db8::7334", "****:***::****"),
    (["es_dni"], "12345678Z", "****5678Z"),
    (["es_nie"], "X1234567L", "****4567L"),
    (["us_ssn"], "123-45-6789", "***-**-6789"),
    (["name_hint"], "José Pérez-Gil", "J*** P***-G***"),
    (["email", "phone"], "ana@mail.es or +34 612345678.", "a***@m***.es or +** *****5678."),
    (["phone"], "Llamé a José: +34 612 345 678.", "Llamé a José: +** *** **5 678."),
    (["ip_address"], "from fe80::1:2 and 10.0.0.1", "from ****::*:* and **.*.*.*"),
    (["email"], "no address here", "no address here"),
    (["email"], None, None),
    ([], "left alone", "left alone"),
]


@pytest.mark.parametrize(("kinds", "value", "expected"), MASK_CASES)
def test_mask_keeps_the_shape_and_hides_the_content(
    kinds: list[str], value: str | None, expected: str | None
) -> None:
    assert _apply(pii_expression("the col", "mask", kinds, "s"), [value]) == [expected]


def test_mask_of_an_integer_phone_column() -> None:
    masked = _apply(pii_expression("the col", "mask", ["phone"], ""), [612345678, None], "BIGINT")
    assert masked == ["*****5678", None]


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown PII kinds \\['passport'\\]"):
        pii_expression("c", "mask", ["passport"], "")


def test_every_value_kind_masks_its_own_valid_examples() -> None:
    for kind, (valid, _) in VALID_AND_INVALID.items():
        for raw in valid:
            masked = _apply(pii_expression("the col", "mask", [kind], ""), [raw])[0]
            assert masked != raw, (kind, raw)
