"""Reading a stream from a file, in row order: CSV, Parquet or JSON Lines.

Order is the point of an online replay, so every format is read front to back in plain Python
(``csv``, ``pyarrow.parquet`` batch by batch, one JSON object per line), never through an engine
that may reorder rows. Parquet and JSON carry their types; CSV cells are text, read as the
contract's column types — a cell that does not parse stays text so the contract's type rule
names it (``field 'age' must be integer, got str 'abc'``); an empty cell is missing.

>>> import tempfile
>>> from mlstrata.contract import Contract
>>> contract = Contract.model_validate({"columns": {"zip": {"type": "text"},
...     "n": {"type": "integer"}, "ok": {"type": "boolean"}}})
>>> path = Path(tempfile.mkdtemp()) / "events.csv"
>>> _ = path.write_text("zip,n,ok\\n01234,3,true\\n08001,,x\\n")
>>> [row for chunk in read_records(path, contract) for row in chunk]
[{'zip': '01234', 'n': 3, 'ok': True}, {'zip': '08001', 'n': None, 'ok': 'x'}]
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..contract import Contract
from ..errors import SourceError

__all__ = ["STREAM_FORMATS", "read_records"]

STREAM_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                  ".ndjson": "jsonl"}
_CHUNK_ROWS = 1000
Records = list[dict[str, Any]]


def read_records(path: Path, contract: Contract | None = None,
                 chunk_rows: int = _CHUNK_ROWS) -> Iterator[Records]:
    """Chunks of ``path``'s rows as dicts, in file order; CSV cells typed by ``contract``."""
    fmt = STREAM_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: cannot tell the format from the extension; use "
                          f"{', '.join(sorted(STREAM_FORMATS))}")
    if not path.is_file():
        raise SourceError(f"{path}: no such file; check the path")
    if fmt == "parquet":
        return _parquet(path, chunk_rows)
    if fmt == "jsonl":
        return _jsonl(path, chunk_rows)
    return _csv(path, contract, chunk_rows)


def _parquet(path: Path, chunk_rows: int) -> Iterator[Records]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        yield batch.to_pylist()


def _jsonl(path: Path, chunk_rows: int) -> Iterator[Records]:
    chunk: Records = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise SourceError(f"{path}, line {number}: not JSON ({exc}); fix the line") from exc
            if not isinstance(row, dict):
                raise SourceError(f"{path}, line {number}: not a JSON object; write one object "
                                  "per line")
            chunk.append(row)
            if len(chunk) == chunk_rows:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _csv(path: Path, contract: Contract | None, chunk_rows: int) -> Iterator[Records]:
    kinds = {name: spec.type for name, spec in (contract.columns if contract else {}).items()}
    chunk: Records = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            chunk.append({name: _cell(kinds.get(name, "text"), text)
                          for name, text in row.items()})
            if len(chunk) == chunk_rows:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _cell(kind: str, text: str | None) -> Any:
    """A CSV cell as a ``kind`` value; unparsable text is kept for the contract to report."""
    if text is None or text == "":
        return None
    if kind in ("integer", "float"):
        for parse in (int, float) if kind == "integer" else (float,):
            try:
                return parse(text)
            except ValueError:
                continue
        return text
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text
