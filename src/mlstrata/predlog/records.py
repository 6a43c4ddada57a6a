"""What the log is handed (one item per request or batch) and the lines made from it.

The request path only builds a :class:`PredictionItem` — references to the typed columns and
the predictions it already has, a clock reading — and queues it. Everything that costs (the
package id, the PII policy, one dict per record, JSON) happens in the writer thread:
:func:`prediction_rows` turns an item into one line per record in the format of
:mod:`mlstrata.predlog.format`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.signature import class_key
from .format import FORMAT_VERSION
from .pii import FieldPolicy, apply_policy

__all__ = ["FeedbackItem", "ModelInfo", "PredictionItem", "feedback_row", "prediction_rows",
           "utc_stamp"]

Row = dict[str, Any]
_PAUSE_ROWS = 8  # ~0.2 ms of work: the longest a request waits for the writer


@dataclass(frozen=True)
class ModelInfo:
    """What every line of one loaded package repeats, read once per package.

    ``package`` is the package id: the sha256 of its ``manifest.json`` (which holds the sha256
    of every other file). ``policy`` is the PII action per input (and for the business key
    ``key_field``) that ``mlstrata package`` copied from ingest into ``signature.json``.
    """

    name: str
    version: int
    package: str
    fields: tuple[tuple[str, str], ...]
    policy: Mapping[str, FieldPolicy] = field(default_factory=dict)
    key_field: str | None = None

    @classmethod
    def of(cls, model: Any) -> ModelInfo:
        """The info of a :class:`~mlstrata.runtime.model.LoadedModel` (its package files), or
        the ``log_info`` a model without a package carries (an online model)."""
        given = getattr(model, "log_info", None)
        if isinstance(given, ModelInfo):
            return given
        directory = Path(model.directory)
        with (directory / "manifest.json").open("rb") as handle:
            package = hashlib.file_digest(handle, "sha256").hexdigest()
        try:
            raw = json.loads((directory / "signature.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        policy = {str(item["name"]): FieldPolicy(str(item["pii"]["action"]),
                                                 tuple(item["pii"].get("kinds") or ()))
                  for item in raw.get("inputs", []) if isinstance(item.get("pii"), dict)}
        key = raw.get("key")
        if isinstance(key, str) and isinstance(raw.get("key_pii"), dict):
            policy[key] = FieldPolicy(str(raw["key_pii"]["action"]),
                                      tuple(raw["key_pii"].get("kinds") or ()))
        fields = tuple((f.name, f.logical_type) for f in model.signature.inputs)
        return cls(model.name, int(model.version), package, fields, policy,
                   key if isinstance(key, str) else None)


@dataclass(slots=True)
class PredictionItem:
    """One answered request (or one scored batch): ``columns`` are the typed inputs the model
    scored, ``predictions`` its answer; record ``i`` is logged as ``first_record + i``."""

    model: Any
    request_id: str
    source: str
    time: float
    latency_ms: float
    columns: Mapping[str, np.ndarray[Any, Any]]
    predictions: Any
    keys: Sequence[Any] | None = None
    first_record: int = 0
    records: Sequence[Any] | None = None
    positions: Sequence[int] | None = None

    @property
    def rows(self) -> int:
        """How many records (lines) the item holds."""
        return len(self.predictions)


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """A label for a logged prediction, joined on ``(request_id, record)`` or on ``key``."""

    model: str
    label: Any
    request_id: str | None = None
    record: int | None = None
    key: str | None = None
    time: float = 0.0

    @property
    def rows(self) -> int:
        """One line."""
        return 1


def utc_stamp(seconds: float) -> str:
    """``seconds`` since the epoch as the log spells times (the date and time of a whole second
    are formatted once: a busy server stamps thousands of records within it).

    >>> utc_stamp(0.25), utc_stamp(86399.5)
    ('1970-01-01T00:00:00.250000Z', '1970-01-01T23:59:59.500000Z')
    """
    whole = math.floor(seconds)
    micros = round((seconds - whole) * 1e6)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return f"{_second(whole)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def prediction_rows(items: Sequence[PredictionItem], info: ModelInfo, salt: str | None,
                    pause: Callable[[], None] | None = None) -> list[Row]:
    """One line per record of each of ``items`` (requests answered by the package ``info``
    describes), inputs after the PII policy.

    A request that came as JSON records (``/v1/predict``, ``/invocations``) logs each record's
    fields as the client sent them — they passed the contract, so they are the values scored,
    and reading them costs a dict lookup per field. The typed inputs of the other items (OIP
    tensors, batches) are converted together, one numpy call per field for a whole drain of the
    queue, and so are the outputs of all the items, so that what is left per record is building
    its two dicts. ``pause`` is called after each field and every few records (the writer
    thread hands the interpreter lock back to the requests there).
    """
    typed = [item for item in items if not _has_records(item)]
    inputs = _input_lists(info, _joined_columns(typed, info), sum(item.rows for item in typed),
                          pause) if typed else {}
    names = [name for name, _ in info.fields]
    texts = [name for name, kind in info.fields if kind == "text"]
    values = zip(*inputs.values(), strict=True)
    labels, probabilities, classes = _joined_outputs(items)
    label_at, probability_rows = iter(labels), iter(probabilities or ())
    rows: list[Row] = []
    at = 0  # the position of the next typed item's first record in ``inputs``
    for item in items:
        count = item.rows
        sent = item.records if _has_records(item) else None
        warnings = _warnings(item.predictions, count)
        keys = _keys(item, inputs, at, info, count, salt)
        stamp = utc_stamp(item.time)
        records = item.positions if item.positions is not None else range(
            item.first_record, item.first_record + count)
        for index, (record, key, warned) in enumerate(zip(records, keys, warnings,
                                                          strict=True)):
            fields = (_sent_fields(sent[index], names, texts) if sent is not None
                      else dict(zip(names, next(values), strict=True)))
            if info.policy:
                apply_policy(fields, info.policy, salt)
            rows.append({
                "format": FORMAT_VERSION, "kind": "prediction", "request_id": item.request_id,
                "record": record, "time": stamp, "model": info.name, "version": info.version,
                "package": info.package, "source": item.source, "key": key, "inputs": fields,
                "prediction": next(label_at),
                "probabilities": (dict(zip(classes, next(probability_rows), strict=True))
                                  if probabilities is not None else None),
                "latency_ms": item.latency_ms, "warnings": warned})
            if pause is not None and len(rows) % _PAUSE_ROWS == 0:
                pause()
        if sent is None:
            at += count
    return rows


def _has_records(item: PredictionItem) -> bool:
    """Whether ``item`` holds the JSON record (an object) of each of its predictions."""
    records = item.records
    return (records is not None and len(records) == item.rows and item.rows > 0
            and isinstance(records[0], Mapping))


def _sent_fields(record: Mapping[str, Any], names: Sequence[str],
                 texts: Sequence[str]) -> dict[str, Any]:
    """The model's input fields of a JSON record as sent (a text field's number as text)."""
    fields = {name: record.get(name) for name in names}
    for name in texts:
        value = fields[name]
        if value is not None and not isinstance(value, str):
            fields[name] = str(value)
    return fields


def _joined_outputs(items: Sequence[PredictionItem]
                    ) -> tuple[list[Any], list[list[float]] | None, list[str]]:
    """The labels (or values) of all ``items`` as plain values, their probability rows (None
    for a regressor) and the class keys."""
    first = items[0].predictions
    arrays = [item.predictions.values if first.values is not None else item.predictions.labels
              for item in items]
    labels = [_plain(v) for v in _joined(arrays).tolist()] if arrays[0] is not None else \
        [None] * sum(item.rows for item in items)
    probabilities = None
    if first.probabilities is not None:
        probabilities = _joined([item.predictions.probabilities for item in items]).tolist()
    return labels, probabilities, [class_key(c) for c in first.classes]


def _joined(arrays: Sequence[Any]) -> np.ndarray[Any, Any]:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _joined_columns(items: Sequence[PredictionItem],
                    info: ModelInfo) -> Mapping[str, np.ndarray[Any, Any] | None]:
    """Each input field's values over all ``items``, in order (None where an item lacks it)."""
    if len(items) == 1:
        return {name: items[0].columns.get(name) for name, _ in info.fields}
    joined: dict[str, np.ndarray[Any, Any] | None] = {}
    for name, _ in info.fields:
        parts = [item.columns.get(name) for item in items]
        present = [p for p in parts if p is not None]
        joined[name] = np.concatenate(present) if len(present) == len(parts) else None
    return joined


def feedback_row(item: FeedbackItem) -> Row:
    """The feedback line of ``item``."""
    return {"format": FORMAT_VERSION, "kind": "feedback", "time": utc_stamp(item.time),
            "model": item.model, "request_id": item.request_id, "record": item.record,
            "key": item.key, "label": item.label}


def _input_lists(info: ModelInfo, columns: Mapping[str, np.ndarray[Any, Any] | None],
                 count: int, pause: Callable[[], None] | None = None) -> dict[str, list[Any]]:
    """Each input field's values as JSON-ready Python values (numbers, text, ISO dates)."""
    lists: dict[str, list[Any]] = {}
    for name, kind in info.fields:
        values = columns.get(name)
        lists[name] = [None] * count if values is None else _plain_column(values, kind)
        if pause is not None:
            pause()
    return lists


def _plain_column(values: np.ndarray[Any, Any], kind: str) -> list[Any]:
    if kind in ("date", "timestamp"):  # via date/datetime objects: astype(str) is 20x slower
        unit = "datetime64[D]" if kind == "date" else "datetime64[s]"
        return [None if v is None else v.isoformat() for v in values.astype(unit).tolist()]
    if values.dtype.kind == "f":
        floats = values.tolist()
        if kind == "integer":
            return [None if v != v else int(v) if math.isfinite(v) else v for v in floats]
        if kind == "boolean":
            return [None if v != v else bool(v) for v in floats]
        return [None if v != v else v for v in floats]
    if kind == "text":  # str or None already
        return list(values.tolist())
    return [_plain(v) for v in values.tolist()]


def _plain(value: Any) -> Any:
    """A JSON-ready scalar (NaN as null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _keys(item: PredictionItem, inputs: Mapping[str, list[Any]], at: int, info: ModelInfo,
          count: int, salt: str | None) -> list[str | None]:
    """The business key of each record (as text, after the key column's PII policy); the
    item's inputs start at ``at``."""
    keys = item.keys
    field = info.key_field
    if keys is None and field is not None:
        if item.records is not None and len(item.records) == count:
            keys = [r.get(field) if isinstance(r, Mapping) else None for r in item.records]
        elif field in inputs:
            keys = inputs[field][at:at + count]
    if keys is None:
        return [None] * count
    texts = [None if k is None else str(k) for k in keys]
    rule = info.policy.get(info.key_field) if info.key_field is not None else None
    if rule is None:
        return texts
    return [None if k is None else apply_policy({"k": k}, {"k": rule}, salt).get("k")
            for k in texts]


def _warnings(predictions: Any, count: int) -> list[list[dict[str, Any]]]:
    """Per-record contract warnings when the predictions carry them (else empty lists)."""
    found = getattr(predictions, "record_warnings", None)
    if not found:
        return [[] for _ in range(count)]
    return [[_warning(w) for w in (found[i] or ())] for i in range(count)]


def _warning(warning: Any) -> dict[str, Any]:
    if isinstance(warning, Mapping):
        return {"field": warning.get("field"), "rule": warning.get("rule"),
                "message": warning.get("message")}
    return {"field": getattr(warning, "field", None), "rule": getattr(warning, "rule", None),
            "message": getattr(warning, "message", str(warning))}
