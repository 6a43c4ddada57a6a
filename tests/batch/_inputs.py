"""Inputs for the batch tests, taken from the ``credit_package`` project's own raw data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from mlstrata.runtime.inputs import check_rules, columns_from_records
from mlstrata.runtime.signature import Signature

__all__ = ["KEY", "raw_csv", "raw_table", "valid_records"]

KEY = "application_id"


def raw_csv(package: Path) -> Path:
    """The project's raw credit CSV (1,500 rows, some of them dirty)."""
    return package.parent.parent / "data" / "credit.csv"


def raw_table(package: Path) -> pa.Table:
    """The raw CSV as an all-text Arrow table (as a CSV reader without inference sees it)."""
    names = pacsv.read_csv(raw_csv(package)).column_names
    options = pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                   strings_can_be_null=True)
    return pacsv.read_csv(raw_csv(package), convert_options=options)


def valid_records(package: Path, rows: int | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Keys and JSON-like records of the raw rows that meet the model's contract."""
    signature = Signature.from_file(package / "signature.json")
    table = raw_table(package)
    keys, records = [], []
    for row in table.to_pylist():
        record = {name: _json_value(signature, name, row[name]) for name in
                  signature.input_names}
        columns, problems = columns_from_records(signature, [record])
        if problems or check_rules(signature, columns):
            continue
        keys.append(row[KEY])
        records.append(record)
        if rows is not None and len(records) == rows:
            break
    return keys, records


def _json_value(signature: Signature, name: str, text: str | None) -> Any:
    field = next(f for f in signature.inputs if f.name == name)
    if text is None or not field.is_numeric:
        return text
    return json.loads(text)
