"""Candidate patterns and validators for the PII kinds that values can reveal.

Detection has two steps. A *candidate pattern* (RE2 syntax, so DuckDB can run it over a column, and
broad on purpose) finds substrings that look like a kind; a *validator* (plain Python) then decides
whether a candidate really is one: the Luhn check for card numbers, ISO 13616 mod-97 for IBANs, the
control letter of a Spanish DNI/NIE, the reserved ranges of a US SSN, :mod:`ipaddress` for IPs.
The same candidate patterns drive masking, so masking hides every look-alike, validated or not.

>>> is_card_number("4111 1111 1111 1111"), is_card_number("4111 1111 1111 1112")
(True, False)
>>> is_iban("ES91 2100 0418 4502 0005 1332"), is_es_dni("12345678Z"), is_us_ssn("666-12-3456")
(True, True, False)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from ..predlog.pii import CANDIDATE_PATTERNS  # one definition: ingest's SQL and the log's Python

__all__ = [
    "CANDIDATE_PATTERNS",
    "VALIDATORS",
    "is_card_number",
    "is_email",
    "is_es_dni",
    "is_es_nie",
    "is_iban",
    "is_ip_address",
    "is_phone",
    "is_us_ssn",
    "luhn_valid",
]

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9%+\-_]+(?:\.[A-Za-z0-9%+\-_]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_PHONE_NATIONAL = re.compile(
    r"\d{2,4}([ .\-])\d{2,4}(?:\1\d{2,4}){1,3}|\(\d{2,4}\) ?\d{3,4}[ .\-]?\d{4}"
)
_PHONE_INTERNATIONAL = re.compile(r"(?:\+|00)[\d .\-()]+")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NIE_PREFIX = {"X": "0", "Y": "1", "Z": "2"}
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def is_email(text: str) -> bool:
    """An address ``local@domain.tld`` with a sane local part and DNS-shaped domain labels.

    >>> is_email("ana.garcia84@example.es"), is_email("ana..garcia@example.es"), is_email("a@b")
    (True, False, False)
    """
    local, sep, domain = text.rpartition("@")
    if not sep or not 1 <= len(local) <= 64 or len(text) > 254:
        return False
    labels = domain.split(".")
    return (
        _EMAIL_LOCAL.fullmatch(local) is not None
        and len(labels) >= 2
        and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        and labels[-1].isalpha()
        and len(labels[-1]) >= 2
    )


def is_phone(text: str) -> bool:
    """A phone number written as one: international (``+34 612345678``, ``0034...``, 8-15 digits
    after the prefix) or national with consistent grouping (``612 34 56 78``, ``(555) 123-4567``,
    9-11 digits).

    A bare run of digits (``612345678``) is *not* a phone by its value alone: identifiers look the
    same. Such columns are caught by their name instead.

    >>> is_phone("+34 612 345 678"), is_phone("612-345-678"), is_phone("612345678")
    (True, True, False)
    >>> is_phone("2021-03-04 12")
    False
    """
    text = text.strip()
    digits = re.sub(r"\D", "", text)
    if len(set(digits)) < 2:
        return False
    if _PHONE_INTERNATIONAL.fullmatch(text):
        national = digits[2:] if text.startswith("00") else digits
        return 8 <= len(national) <= 15 and national[0] != "0"
    return _PHONE_NATIONAL.fullmatch(text) is not None and 9 <= len(digits) <= 11


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum used by payment card numbers.

    >>> luhn_valid("79927398713"), luhn_valid("79927398710")
    (True, False)
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    """13-19 digits (spaces or dashes allowed) from a card network's range, passing Luhn.

    >>> is_card_number("5555-5555-5555-4444"), is_card_number("1234567812345670")
    (True, False)
    """
    digits = re.sub(r"[ \-]", "", text)
    if not (digits.isdigit() and 13 <= len(digits) <= 19):
        return False
    in_range = digits[0] in "3456" or 2221 <= int(digits[:4]) <= 2720
    return in_range and luhn_valid(digits)


def is_iban(text: str) -> bool:
    """An IBAN of a known country, with that country's length and a valid ISO 13616 mod-97 check.

    >>> is_iban("GB82 WEST 1234 5698 7654 32"), is_iban("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    compact = text.replace(" ", "").upper()
    length = _IBAN_LENGTHS.get(compact[:2])
    if length is None or len(compact) < length:
        return False
    iban = compact[:length]
    if not (iban[2:4].isdigit() and iban.isalnum()):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def is_ip_address(text: str) -> bool:
    """An IPv4 address (no leading zeros) or an IPv6 address with at least three groups.

    >>> is_ip_address("192.168.1.20"), is_ip_address("256.1.1.1"), is_ip_address("12:30:45")
    (True, False, False)
    >>> is_ip_address("2001:db8::8a2e:370:7334")
    True
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == 4 or sum(1 for group in text.split(":") if group) >= 3


def is_es_dni(text: str) -> bool:
    """A Spanish DNI: 8 digits and the control letter ``TRWAGMYFPDXBNJZSQVHLCKE[n % 23]``.

    >>> is_es_dni("12345678Z"), is_es_dni("12345678-z"), is_es_dni("12345678A")
    (True, True, False)
    """
    compact = re.sub(r"[ \-]", "", text).upper()
    number, letter = compact[:-1], compact[-1:]
    return len(number) == 8 and number.isdigit() and _DNI_LETTERS[int(number) % 23] == letter


def is_es_nie(text: str) -> bool:
    """A Spanish NIE: X/Y/Z (read as 0/1/2), 7 digits and the DNI control letter.

    >>> is_es_nie("X1234567L"), is_es_nie("Y1234567X"), is_es_nie("X1234567A")
    (True, True, False)
    """
    compact = re.sub(r"[ \-]", "", text).upper()
    prefix = _NIE_PREFIX.get(compact[:1])
    return prefix is not None and is_es_dni(prefix + compact[1:])


def is_us_ssn(text: str) -> bool:
    """A US SSN ``AAA-GG-SSSS``; area 000, 666 and 900-999, group 00 and serial 0000 never occur.

    >>> is_us_ssn("123-45-6789"), is_us_ssn("000-12-3456"), is_us_ssn("123-00-6789")
    (True, False, False)
    """
    match = re.fullmatch(r"(\d{3})-(\d{2})-(\d{4})", text)
    if match is None:
        return False
    area, group, serial = match.groups()
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "email": is_email,
    "iban": is_iban,
    "card_number": is_card_number,
    "us_ssn": is_us_ssn,
    "es_nie": is_es_nie,
    "es_dni": is_es_dni,
    "ip_address": is_ip_address,
    "phone": is_phone,
}
