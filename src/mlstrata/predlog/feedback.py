"""Feedback: ground-truth labels attached to logged predictions, checked and matched.

A feedback item names a logged prediction by ``request_id`` (and optionally the ``record``
position in that request; none means every record of the request) or by the business ``key``,
and carries the ``label`` — one of the model's classes (its own label, or the label as a JSON
object key spells it: ``"1"`` for 1, ``"true"`` for True) or, for a regressor, a number.
:func:`parse_feedback` checks a JSON payload (one object or a list) and names the first bad
item; :func:`match_feedback` splits the items into those the log knows and the others.

>>> parse_feedback({"request_id": "r1", "label": "1"}, "m", [0, 1], "binary")[0].label
1
>>> parse_feedback([{"key": "A1", "label": 2}], "m", [0, 1], "binary")
Traceback (most recent call last):
mlstrata.predlog.feedback.FeedbackError: item 0: label 2 is not one of the model's classes [0, 1]
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

from ..errors import MlstrataError
from ..runtime.signature import class_key
from .records import FeedbackItem

__all__ = ["NUMBER_TEXT", "FeedbackError", "match_feedback", "normalize_label", "parse_feedback"]

_FIELDS = frozenset({"request_id", "record", "key", "label"})
NUMBER_TEXT = re.compile(r"[ \t]*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t]*")
"""A number written as text that a regressor's label may be (``"2.5"``, ``" 1e3"``): ASCII
only, the same in Python and in the OpenAPI document's ECMAScript pattern."""


class FeedbackError(MlstrataError):
    """A feedback item is malformed or its label is not one the model can answer."""


def parse_feedback(payload: Any, model: str, classes: Sequence[Any] | None,
                   task: str) -> list[FeedbackItem]:
    """The feedback items of a JSON payload (an object or a non-empty list of objects)."""
    items = [payload] if isinstance(payload, dict) else payload
    if not isinstance(items, list) or not items:
        raise FeedbackError("send one feedback object {request_id or key, label} or a "
                            "non-empty list of them")
    now = time.time()
    return [_item(item, index, model, classes, task, now) for index, item in enumerate(items)]


def normalize_label(label: Any, classes: Sequence[Any] | None, task: str) -> Any:
    """``label`` as the model's own class (or a float for a regressor); ValueError if it is
    not one.

    >>> normalize_label("true", [False, True], "binary"), normalize_label("2.5", None,
    ...                                                                    "regression")
    (True, 2.5)
    """
    if task == "clustering":
        raise ValueError("this is a clustering model: it has no labels to compare with")
    if task == "regression" or not classes:
        number = _number(label)
        if number is None:
            raise ValueError(f"label {label!r} is not a number (this model predicts numbers)")
        return number
    if label is None or isinstance(label, (dict, list)):
        raise ValueError(f"label {label!r} is not one of the model's classes {list(classes)}")
    if isinstance(label, float) and label.is_integer():
        label = int(label)  # 1.0 from a JSON or Parquet column of whole numbers
    wanted = class_key(label)
    for known in classes:
        if class_key(known) == wanted and (isinstance(label, str)
                                           or isinstance(label, bool) == isinstance(known, bool)):
            return known
    raise ValueError(f"label {label!r} is not one of the model's classes {list(classes)}")


def match_feedback(log: Any, model: str, items: Sequence[FeedbackItem]
                   ) -> tuple[list[FeedbackItem], list[FeedbackItem]]:
    """``items`` split into those naming a logged prediction of ``model`` and the others
    (``log`` is a :class:`~mlstrata.predlog.writer.PredictionLog`)."""
    ids = {item.request_id for item in items if item.request_id is not None}
    keys = {item.key for item in items if item.request_id is None and item.key is not None}
    counts, found = log.find(model, ids, keys)
    matched: list[FeedbackItem] = []
    unmatched: list[FeedbackItem] = []
    for item in items:
        if item.request_id is not None:
            known = counts.get(item.request_id)
            hit = known is not None and (item.record is None or item.record < known)
        else:
            hit = item.key in found
        (matched if hit else unmatched).append(item)
    return matched, unmatched


def _item(item: Any, index: int, model: str, classes: Sequence[Any] | None, task: str,
          now: float) -> FeedbackItem:
    if not isinstance(item, dict):
        raise FeedbackError(f"item {index}: expected an object {{request_id or key, label}}")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise FeedbackError(f"item {index}: unknown field {unknown[0]!r}; a feedback item has "
                            "request_id (with an optional record) or key, and label")
    request_id, key, record = item.get("request_id"), item.get("key"), item.get("record")
    if request_id is None and key is None:
        raise FeedbackError(f"item {index}: name the prediction with 'request_id' or 'key'")
    for name in ("request_id", "key"):
        if name in item and (not isinstance(item[name], str) or not item[name]):
            raise FeedbackError(f"item {index}: '{name}' must be non-empty text")
    if "record" in item and (request_id is None or not isinstance(record, int)
                             or isinstance(record, bool) or record < 0):
        raise FeedbackError(f"item {index}: 'record' must be a record position (0, 1, ...) "
                            "next to a 'request_id'")
    if "label" not in item:
        raise FeedbackError(f"item {index}: 'label' is missing")
    try:
        label = normalize_label(item["label"], classes, task)
    except ValueError as exc:
        raise FeedbackError(f"item {index}: {exc}") from exc
    return FeedbackItem(model, label, request_id, record, key, now)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not NUMBER_TEXT.fullmatch(value):
            return None
        value = float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None
