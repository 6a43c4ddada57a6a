"""Readers of binary file formats: Parquet (typed, read by DuckDB) and Excel ``.xlsx``.

An ``.xlsx`` sheet is streamed with openpyxl's read-only mode and appended to DuckDB in chunks,
every cell as the text a CSV export would hold, so inference types it like any text source.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import SourceError
from ._extract import Extract, append_rows, cell_text, check_unique, create_table, text_schema
from .engine import parquet_scan, quote_identifier

__all__ = ["read_parquet", "read_xlsx"]


def read_parquet(path: Path, con: duckdb.DuckDBPyConnection, raw: str) -> Extract:
    """Copy a Parquet file into table ``raw``, keeping its types."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        check_unique(names, str(path))
        con.execute(f"CREATE TABLE {quote_identifier(raw)} AS SELECT * FROM "
                    f"{parquet_scan(path)}")
    except (pa.ArrowException, OSError, duckdb.Error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"{path} is not a readable Parquet file, it may be truncated or "
                          f"corrupt ({reason}); copy or export it again") from exc
    return Extract(str(path), False, lambda row: f"row {row + 1}", path)


def read_xlsx(path: Path, con: duckdb.DuckDBPyConnection, raw: str, *,
              sheet: str | None) -> Extract:
    """Stream one sheet of a workbook (the first unless ``sheet`` is given) into ``raw``."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise SourceError(f"{path} is not a readable .xlsx workbook ({exc}); open it in a "
                          "spreadsheet program and save it again as .xlsx") from exc
    try:
        name = _sheet_name(path, book.sheetnames, sheet)
        where = f"sheet {name!r} of {path}"
        with closing(book[name].iter_rows(values_only=True)) as rows:
            header_row, names = _header(rows, where)
            schema = text_schema(names)
            create_table(con, raw, schema)
            append_rows(con, raw, schema, _data_rows(rows, len(names), header_row, where),
                        [_excel_text] * len(names))
    finally:
        book.close()
    return Extract(where, True, lambda row: f"row {header_row + 1 + row} of sheet {name!r}", path,
                   details={"sheet": name})


def _excel_text(value: Any) -> str | None:
    """Cell text; Excel has no date type, so a date-time at midnight is a date."""
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    return cell_text(value)


def _sheet_name(path: Path, names: Sequence[str], wanted: str | None) -> str:
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise SourceError(f"{path} has no sheet {wanted!r}; its sheets are: {', '.join(names)}")
    return wanted


def _header(rows: Iterator[tuple[Any, ...]], where: str) -> tuple[int, list[str]]:
    """The first non-blank row (its 1-based number and names); trailing blank cells dropped."""
    for number, row in enumerate(rows, start=1):
        cells = list(row)
        while cells and cells[-1] is None:
            cells.pop()
        if not cells:
            continue
        names = [cell_text(cell) for cell in cells]
        for position, name in enumerate(names, start=1):
            if name is None or not name.strip():
                raise SourceError(f"{where}: row {number}, column {position} of the header is "
                                  "empty; give every column a name")
        check_unique([str(n) for n in names], f"{where}: row {number}")
        return number, [str(n) for n in names]
    raise SourceError(f"{where} is empty; put the column names in the first row and data below")


def _data_rows(rows: Iterator[tuple[Any, ...]], width: int, header_row: int,
               where: str) -> Iterator[tuple[Any, ...]]:
    """Rows padded to the header's width; blank rows kept only when data follows them."""
    blank = 0
    for number, row in enumerate(rows, start=header_row + 1):
        if all(cell is None for cell in row):
            blank += 1
            continue
        extra = [i for i, cell in enumerate(row[width:], start=width + 1) if cell is not None]
        if extra:
            raise SourceError(f"{where}: row {number} has a value in column {extra[0]} but the "
                              f"header names only {width} columns; add a header or move the value")
        for _ in range(blank):
            yield (None,) * width
        blank = 0
        yield tuple(row[:width]) + (None,) * (width - len(row))
