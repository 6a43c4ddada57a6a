"""Readers of delimited text (CSV/TSV) and JSON (array of objects, JSON Lines).

Both are read by DuckDB with every column as text, so :mod:`.inference` can type each column from
all of its values. DuckDB's multi-line error messages are reduced to the facts (line number,
reason) and re-phrased as one line naming the user's file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..errors import SourceError
from ._encoding import to_utf8
from ._extract import Extract, check_unique
from .engine import quote_identifier, quote_literal

__all__ = ["CsvFile", "JsonFile", "csv_scan", "json_scan", "load_csv", "load_json",
           "prepare_csv", "prepare_json", "read_csv", "read_header", "read_json",
           "sniff_delimiter"]

_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_HEAD_BYTES = 4096
_SNIFF_CHARS = 1 << 16
_CANDIDATES = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvFile:
    """A delimited file ready to read: its UTF-8 copy (or itself), delimiter, header names and
    the :class:`Extract` that locates its rows by line."""

    path: Path
    utf8: Path
    delimiter: str
    names: tuple[str, ...]
    extract: Extract


def prepare_csv(path: Path, staging: Path, *, delimiter: str | None, encoding: str | None,
                tsv: bool) -> CsvFile:
    """Decode, sniff and read the header of a delimited file (its rows are not read yet)."""
    utf8, encoding = to_utf8(path, encoding, staging)
    delim = (_DELIMITER_NAMES.get(delimiter or "", delimiter)
             or ("\t" if tsv else sniff_delimiter(utf8)))
    names = read_header(path, utf8, delim)
    extract = Extract(str(path), True,
                      lambda row: f"line {_csv_line(utf8, delim, row, len(names))}", path,
                      details={"encoding": encoding, "delimiter": delim})
    return CsvFile(path, utf8, delim, tuple(names), extract)


def read_csv(path: Path, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
             delimiter: str | None, encoding: str | None, tsv: bool) -> Extract:
    """Read a delimited file into table ``raw`` with every column as text."""
    return load_csv(prepare_csv(path, staging, delimiter=delimiter, encoding=encoding, tsv=tsv),
                    con, raw)


def load_csv(prepared: CsvFile, con: duckdb.DuckDBPyConnection, raw: str) -> Extract:
    """Read a prepared delimited file into table ``raw`` with every column as text."""
    try:
        con.execute(f"CREATE TABLE {quote_identifier(raw)} AS "
                    f"SELECT * FROM {csv_scan([prepared])}")
    except duckdb.Error as exc:
        raise SourceError(_csv_error(prepared.path, str(exc), len(prepared.names),
                                     prepared.delimiter)) from exc
    return prepared.extract


def csv_scan(files: Sequence[CsvFile], filename: str | None = None) -> str:
    """DuckDB's ``read_csv`` of ``files`` — which share one delimiter and header — with every
    column as text, in file order; ``filename`` names a column holding each row's file."""
    first = files[0]
    columns = ", ".join(f"{quote_literal(name)}: 'VARCHAR'" for name in first.names)
    paths = ", ".join(quote_literal(str(f.utf8)) for f in files)
    origin = f", filename = {quote_literal(filename)}" if filename else ""
    return (f"read_csv([{paths}], header = true, delim = {quote_literal(first.delimiter)}, "
            "quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
            f"auto_detect = false, hive_partitioning = false, columns = {{{columns}}}{origin})")


def sniff_delimiter(utf8: Path) -> str:
    """The candidate delimiter that splits the header into most fields consistently with the
    following lines (DuckDB's sniffer gives up on files with ragged rows)."""
    with utf8.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(_SNIFF_CHARS)
    if len(sample) == _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best, best_score = ",", (0.0, 1)
    for candidate in _CANDIDATES:
        records = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=candidate) if r]
        width = len(records[0]) if records else 0
        score = (sum(len(r) == width for r in records) / len(records) if records else 0.0, width)
        if width > 1 and score > best_score:
            best, best_score = candidate, score
    return best


def read_header(path: Path, utf8: Path, delimiter: str) -> list[str]:
    """The header row parsed like DuckDB parses it; empty names become ``columnN``."""
    with utf8.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), None)
    if not header or header == [""]:
        raise SourceError(f"{path}: line 1 is empty; the first line must name the columns")
    names = [name or f"column{position}" for position, name in enumerate(header, start=1)]
    check_unique(names, f"{path}: line 1")
    return names


def _csv_error(path: Path, message: str, width: int, delimiter: str) -> str:
    line = re.search(r"CSV Error on Line: (\d+)", message)
    where = f"{path}: line {line.group(1)}" if line else str(path)
    found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    if found:
        return (f"{where} has {found.group(2)} fields but the header has {width}; fix that row "
                f"(a missing or extra {delimiter!r}, or a value with {delimiter!r} not in quotes)")
    return f"{where}: {_reason(message)}; fix the file or pass --delimiter/--encoding"


def _reason(message: str) -> str:
    """The sentence of a DuckDB error message that says what is wrong (its first paragraph that
    is not the error header or the quoted original line)."""
    for paragraph in message.split("\n\n"):
        text = paragraph.strip()
        if text and not text.startswith(("Invalid Input Error: CSV Error", "Original Line")):
            return text.splitlines()[0].split("Error: ", 1)[-1].strip().rstrip(".")
    return "unreadable"


def _csv_line(utf8: Path, delimiter: str, row: int, width: int) -> int:
    """The physical line where data row ``row`` (0-based) starts, skipping blank lines as DuckDB
    does for files with more than one column. Used only to word an error."""
    with utf8.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        start, seen, in_header = 1, -1, True
        for record in reader:
            if not in_header and (record or width == 1):
                seen += 1
                if seen == row:
                    return start
            in_header, start = False, reader.line_num + 1
    return start


@dataclass(frozen=True)
class JsonFile:
    """A JSON file ready to read: its UTF-8 copy (or itself), its layout (JSON Lines or an
    array of objects) and the :class:`Extract` that locates its records."""

    path: Path
    utf8: Path
    lines: bool
    extract: Extract


def read_json(path: Path, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
              encoding: str | None) -> Extract:
    """Read a JSON array of objects or a JSON Lines file into ``raw``, every column as text."""
    return load_json(prepare_json(path, staging, encoding=encoding), con, raw)


def prepare_json(path: Path, staging: Path, *, encoding: str | None) -> JsonFile:
    """Decode a JSON file and find its layout (its records are not read yet)."""
    utf8, encoding = to_utf8(path, encoding, staging)
    lines = _layout(path, utf8) == "lines"
    details = {"encoding": encoding, "layout": "lines" if lines else "array"}
    if lines:
        extract = Extract(str(path), True, lambda row: f"line {_nth_record_line(utf8, row)}",
                          path, details=details)
    else:
        extract = Extract(str(path), True, lambda row: f"record {row + 1}", path,
                          details=details)
    return JsonFile(path, utf8, lines, extract)


def load_json(prepared: JsonFile, con: duckdb.DuckDBPyConnection, raw: str) -> Extract:
    """Read a prepared JSON file into table ``raw`` with every column as text."""
    try:
        con.execute(f"CREATE TABLE {quote_identifier(raw)} AS "
                    f"SELECT * FROM {json_scan(con, [prepared])}")
    except duckdb.Error as exc:
        raise SourceError(_json_error(prepared.path, prepared.utf8, prepared.lines,
                                      str(exc))) from exc
    return prepared.extract


def json_scan(con: duckdb.DuckDBPyConnection, files: Sequence[JsonFile],
              filename: str | None = None) -> str:
    """DuckDB's ``read_json`` of ``files`` — of one layout — with every key of any record as a
    text column (first seen first), in file order; ``filename`` names a column holding each
    row's file. Raises DuckDB's error for a file it cannot read."""
    paths = ", ".join(quote_literal(str(f.utf8)) for f in files)
    layout = "newline_delimited" if files[0].lines else "array"
    source = (f"read_json([{paths}], records = true, format = {quote_literal(layout)}, "
              "hive_partitioning = false")
    union = ", union_by_name = true" if len(files) > 1 else ""
    names = [str(r[0]) for r in con.execute(
        f"DESCRIBE SELECT * FROM {source}, sample_size = -1{union})").fetchall()]
    check_unique(names, str(files[0].path))
    columns = ", ".join(f"{quote_literal(name)}: 'VARCHAR'" for name in names)
    origin = f", filename = {quote_literal(filename)}" if filename else ""
    return f"{source}, columns = {{{columns}}}{origin})"


def _layout(path: Path, utf8: Path) -> str:
    """``array`` when the file starts with ``[``, ``lines`` when it starts with ``{``."""
    with utf8.open(encoding="utf-8-sig") as handle:
        head = handle.read(_HEAD_BYTES).lstrip()
    if head.startswith("["):
        return "array"
    if head.startswith("{"):
        return "lines"
    raise SourceError(f"{path} is neither a JSON array of objects nor JSON Lines (it starts with "
                      f"{head[:20]!r}); export the data as [{{...}}, ...] or one object per line")


def _json_error(path: Path, utf8: Path, lines: bool, message: str) -> str:
    if lines:
        bad = _first_bad_line(utf8)
        if bad is not None:
            return f"{path}: line {bad[0]} is not a JSON object ({bad[1]}); fix or remove that line"
    found = re.search(r"line (\d+)", message)
    where = f"{path}: line {found.group(1)}" if found else str(path)
    if "non-record JSON" in message:
        return (f"{where} holds no JSON objects (an empty array, or values that are not objects); "
                "export one object per row")
    return f"{where} is not valid JSON ({_reason(message)}); fix the file"


def _first_bad_line(utf8: Path) -> tuple[int, str] | None:
    """The first non-blank line of a JSON Lines file that is not a JSON object, with the reason."""
    for number, text in _numbered_lines(utf8):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return number, exc.msg
        if not isinstance(value, dict):
            return number, f"found {type(value).__name__}"
    return None


def _nth_record_line(utf8: Path, row: int) -> int:
    for seen, (number, _) in enumerate(_numbered_lines(utf8)):
        if seen == row:
            return number
    return row + 1


def _numbered_lines(utf8: Path) -> Iterator[tuple[int, str]]:
    with utf8.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text
