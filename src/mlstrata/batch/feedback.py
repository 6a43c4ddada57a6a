"""``mlstrata feedback FILE``: attach ground-truth labels from a file to logged predictions.

The file — anything :func:`~mlstrata.batch.reading.read_batches` reads: CSV, Parquet, JSON
Lines, a database table — holds one label per row and the business key (``--key``) or the
request id (``--request-id``) of the prediction it belongs to. Every label is checked against
the model's classes (or must be a number for a regressor) before anything is written: a bad
label stops the run naming its row, and nothing is written. Rows whose key or label is empty
are skipped; rows naming no logged prediction of the model are counted as unmatched and not
written; the others become feedback lines of the prediction log, which ``mlstrata monitor``
joins to the predictions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from rich.console import Console

from ..errors import DataError
from ..predlog import FeedbackItem, PredictionLog, match_feedback, normalize_label
from ..reports import Report, html_page, table
from .reading import BATCH_ROWS, describe_source, read_batches

__all__ = ["FeedbackReport", "ingest_feedback"]


@dataclass
class FeedbackReport(Report):
    """What a feedback file gave: rows read, matched (written), unmatched, skipped."""

    source: str
    model: str
    log: str
    rows: int
    matched: int
    unmatched: int
    skipped: int

    def to_dict(self) -> dict[str, Any]:
        """Every count, JSON-ready."""
        return {"source": self.source, "model": self.model, "log": self.log, "rows": self.rows,
                "matched": self.matched, "unmatched": self.unmatched, "skipped": self.skipped}

    def render_terminal(self, console: Console) -> None:
        """One line of counts."""
        console.print(f"{self.matched:,} labels attached to logged predictions of {self.model}, "
                      f"{self.unmatched:,} unmatched (no logged prediction), {self.skipped:,} "
                      f"skipped (empty key or label) — {self.rows:,} rows of {self.source}",
                      highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """The counts as a page."""
        return html_page(f"Feedback for {self.model}", [("Counts", [table([self.to_dict()])])])


def ingest_feedback(source: str, log: PredictionLog, model: str, *, label: str,
                    key: str | None = None, request_id: str | None = None,
                    classes: Sequence[Any] | None, task: str, log_name: str = "",
                    batch_rows: int = BATCH_ROWS) -> FeedbackReport:
    """Read ``source`` and write a feedback line per row naming a logged prediction."""
    by = key if key is not None else request_id
    if by is None or (key is not None and request_id is not None):
        raise DataError("name the predictions with exactly one of --key COL or --request-id COL")
    where = describe_source(source)
    items: list[FeedbackItem] = []
    rows = skipped = 0
    now = time.time()
    for batch in read_batches(source, batch_rows=batch_rows):
        _require(batch, [by, label], where)
        names = batch.column(by).to_pylist()
        labels = batch.column(label).to_pylist()
        for offset, (name, value) in enumerate(zip(names, labels, strict=True)):
            if name is None or value is None or value == "" or str(name) == "":
                skipped += 1
                continue
            try:
                typed = normalize_label(value, classes, task)
            except ValueError as exc:
                raise DataError(f"{where}: row {rows + offset + 1}: {exc}; fix the label or "
                                "leave the row out (nothing was written)") from exc
            items.append(FeedbackItem(model, typed, None if key else str(name), None,
                                      str(name) if key else None, now))
        rows += batch.num_rows
    matched, unmatched = match_feedback(log, model, items)
    log.log_feedback(matched, block=True)
    return FeedbackReport(where, model, log_name, rows, len(matched), len(unmatched), skipped)


def _require(batch: pa.RecordBatch, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in batch.schema.names]
    if missing:
        raise DataError(f"{where} has no column {missing[0]!r}; its columns are: "
                        f"{', '.join(batch.schema.names)}")
