"""Send the demo's served model a stream that drifts half-way, then its delayed feedback.

The first half of the stream is the new batch as it is; in the second half applicants are older
and earn half as much (the world moved). Records go to ``POST /v1/predict`` ten at a time.
Then the ground truth "arrives": ``POST /v1/feedback`` labels every answered record — the
first half with its true label, the second half with the opposite one (the relationship the
model learned no longer holds). ``mlstrata monitor`` then finds drift and decay in the second
half.

Usage: python examples/drift_stream.py URL PACKAGE_DIR batch.csv N
"""

from __future__ import annotations

import csv
import json
import sys
import urllib.request
from typing import Any

from make_requests import typed

from mlstrata.runtime.inputs import InvalidInputError
from mlstrata.runtime.model import load

PER_REQUEST = 10


def post(url: str, body: Any) -> Any:
    """POST ``body`` as JSON; the decoded answer."""
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def records(package: str, source: str, count: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """Up to ``count`` records the model accepts, with their true labels; the second half
    drifted (older applicants, half the income)."""
    model = load(package)
    fields = {f.name: f for f in model.signature.inputs}
    found, labels = [], []
    with open(source, newline="") as handle:
        for row in csv.DictReader(handle):
            record = {name: typed(row.get(name, ""), f.logical_type) for name, f in fields.items()}
            if len(found) >= count // 2 and record.get("income") and record.get("age"):
                record["income"] = round(record["income"] * 0.5, 2)
                record["age"] = min(record["age"] + 15, int(fields["age"].training_max or 99))
            if "loan_to_income" in fields and record.get("income"):
                record["loan_to_income"] = float(row["loan_amount"]) / record["income"]
            try:
                model.predict_records([record])
            except InvalidInputError:
                continue
            found.append(record)
            labels.append(typed(row["default"], "integer"))
            if len(found) == count:
                break
    return found, labels


def main(url: str, package: str, source: str, count: str) -> None:
    stream, labels = records(package, source, int(count))
    ids = []
    for start in range(0, len(stream), PER_REQUEST):
        answer = post(f"{url}/v1/predict", stream[start:start + PER_REQUEST])
        ids.append(answer["request_id"])
    half = len(stream) // 2
    feedback = [{"request_id": ids[i // PER_REQUEST], "record": i % PER_REQUEST,
                 "label": labels[i] if i < half else 1 - labels[i]} for i in range(len(stream))]
    accepted = post(f"{url}/v1/feedback", feedback)
    print(f"sent {len(stream)} records in {len(ids)} requests (the last {len(stream) - half} "
          f"drifted); feedback: {accepted}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
