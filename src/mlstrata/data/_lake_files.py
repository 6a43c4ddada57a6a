"""Which files make a multi-file source (a "lake"), and the Hive partitions their paths carry.

A lake is a folder (every data file under it, recursively) or a glob (``*`` and ``?`` match
within one path segment, ``**`` across segments), on disk or on an object store. Files and
folders whose name starts with ``.``, or with ``_`` and holds no ``=`` (``_SUCCESS``,
``.part-0.crc``, ``_delta_log/``), are a writer's bookkeeping, not data — Spark and Hive skip them
too. A folder ``key=value`` is a Hive partition: its value comes back as a column, typed the way
Spark's partition discovery types it (integer, float, date, timestamp, else text), and
``__HIVE_DEFAULT_PARTITION__`` is a null.

>>> glob_regex("year=*/*.parquet").fullmatch("year=2024/part-0.parquet") is not None
True
>>> partitions("year=2024/month=01/part-0.parquet")
[('year', '2024'), ('month', '01')]
>>> partition_type(["01", "12"]), partition_type(["2024-01-31", None]), partition_type(["eu"])
('BIGINT', 'DATE', 'VARCHAR')
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath
from urllib.parse import unquote

from ..errors import SourceError
from .engine import quote_literal
from .inference import DATE_PATTERN, TIMESTAMP_PATTERN

__all__ = ["GLOB_CHARS", "LAKE_FORMATS", "glob_regex", "has_glob", "is_bookkeeping",
           "lake_format", "partition_literal", "partition_type", "partitions", "split_glob"]

GLOB_CHARS = "*?["
LAKE_FORMATS = ("csv", "tsv", "parquet", "json", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
               ".pq": "parquet", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?")
_DATE = re.compile(DATE_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def has_glob(text: str) -> bool:
    """Whether ``text`` holds a glob character."""
    return any(char in text for char in GLOB_CHARS)


def split_glob(path: str) -> tuple[str, str | None]:
    """The fixed folder before the first segment with a glob character, and the pattern after
    it relative to that folder (None when ``path`` has no glob).

    >>> split_glob("lake/2024/*/part-*.csv"), split_glob("lake/a.csv")
    (('lake/2024', '*/part-*.csv'), ('lake/a.csv', None))
    """
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if has_glob(segment):
            return "/".join(segments[:index]), "/".join(segments[index:])
    return path, None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching relative paths the way a shell glob with ``**`` would."""
    out, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[" and "]" in pattern[index + 2:]:
            end = pattern.index("]", index + 2)
            body = pattern[index + 1:end]
            out.append("[^" + re.escape(body[1:]) + "]" if body[0] == "!"
                       else "[" + re.escape(body) + "]")
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))


def is_bookkeeping(relative: str) -> bool:
    """Whether a path (relative to the lake) is a writer's bookkeeping rather than data.

    >>> [is_bookkeeping(p) for p in ("_SUCCESS", "a/.x.crc", "_p=1/x.csv", "a/x.csv")]
    [True, True, False, False]
    """
    return any(part.startswith(".") or (part.startswith("_") and "=" not in part)
               for part in relative.split("/"))


def lake_format(shown: str, names: Sequence[str], forced: str | None) -> str:
    """The one format of a lake's files: ``forced`` (``--format``) or their common extension."""
    if forced is not None:
        if forced not in LAKE_FORMATS:
            raise SourceError(f"{shown}: a folder, glob or object-store source holds "
                              f"{', '.join(LAKE_FORMATS)} files, not {forced}; fix --format")
        return forced
    found: dict[str, str] = {}
    for name in names:
        suffix = PurePosixPath(name).suffix.lower()
        found.setdefault(_EXTENSIONS.get(suffix, suffix or "(no extension)"), name)
    formats = sorted(found)
    if len(formats) == 1 and formats[0] in LAKE_FORMATS:
        return formats[0]
    listed = ", ".join(f"{fmt} ({found[fmt]})" for fmt in formats)
    raise SourceError(f"{shown} holds files of {len(formats)} kinds: {listed}; narrow the glob "
                      f"to one kind (e.g. {shown.rstrip('/')}/**/*.parquet) or pass --format")


def partitions(relative: str) -> list[tuple[str, str]]:
    """The Hive partitions (``key=value`` folders) of a file's path, values URL-decoded."""
    folders = relative.split("/")[:-1]
    return [(unquote(key), unquote(value))
            for key, sep, value in (folder.partition("=") for folder in folders) if sep and key]


def partition_type(values: Iterable[str | None]) -> str:
    """The DuckDB type that holds every value of one partition key (Spark's discovery order)."""
    present = [value for value in values if value is not None and value != _HIVE_NULL]
    if not present:
        return "VARCHAR"
    if all(_INTEGER.fullmatch(v) and -(2**63) <= int(v) < 2**63 for v in present):
        return "BIGINT"
    if all(_NUMBER.fullmatch(v) for v in present):
        return "DOUBLE"
    if all(_DATE.fullmatch(v) and _valid(dt.date.fromisoformat, v) for v in present):
        return "DATE"
    if all(_TIMESTAMP.fullmatch(v) and _valid(dt.datetime.fromisoformat, v) for v in present):
        return "TIMESTAMP"
    return "VARCHAR"


def partition_literal(value: str, duckdb_type: str) -> str:
    """The SQL value of one partition folder's value as ``duckdb_type``."""
    if value == _HIVE_NULL:
        return f"CAST(NULL AS {duckdb_type})"
    return f"CAST({quote_literal(value)} AS {duckdb_type})"


def _valid(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True
