"""Write request records for the demo: the first N applications of a CSV that the model accepts.

A served model takes its signature's inputs — the cleaned columns, including what the cleaning
recipe derives (here ``loan_to_income = loan_amount / income``). This script types each CSV
cell as the signature says, adds the derived column, and keeps the records the lean runtime
accepts (the same checks the server runs), so the demo's requests are valid ones.

Usage: python examples/make_requests.py PACKAGE_DIR applications.csv N out.json
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

from mlstrata.runtime.inputs import InvalidInputError
from mlstrata.runtime.model import load


def typed(value: str, logical_type: str) -> Any:
    """A CSV cell as the JSON value the signature expects (empty → null)."""
    if value == "":
        return None
    if logical_type == "integer":
        return int(float(value))
    if logical_type == "float":
        return float(value)
    return value


def main(package: str, source: str, count: str, out: str) -> None:
    """Write up to ``count`` accepted records from ``source`` to ``out``."""
    model = load(package)
    fields = {f.name: f.logical_type for f in model.signature.inputs}
    records = []
    with open(source, newline="") as handle:
        for row in csv.DictReader(handle):
            record = {name: typed(row.get(name, ""), kind) for name, kind in fields.items()}
            if "loan_to_income" in fields and record.get("income"):
                record["loan_to_income"] = float(row["loan_amount"]) / float(row["income"])
            try:
                model.predict_records([record])
            except InvalidInputError:
                continue
            records.append(record)
            if len(records) == int(count):
                break
    with open(out, "w") as handle:
        json.dump(records, handle, indent=1)
    print(f"{out}: {len(records)} records for {model.name} version {model.version}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
