"""How a source appears in messages: a URL without its password, an exception in one line.

Free of DuckDB and pyarrow, so that the MySQL reader processes (:mod:`._mysql_client`) start
without loading them.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["first_line", "redact_url"]


def redact_url(url: str) -> str:
    """The URL without its password (in the user part or a ``password=`` parameter).

    >>> redact_url("postgresql://ann:s3cret@db.example:5432/sales?password=x&sslmode=require")
    'postgresql://ann@db.example:5432/sales?sslmode=require'
    """
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query.lower():
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}@{hostport}" if at else hostport
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def first_line(exc: Exception) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
