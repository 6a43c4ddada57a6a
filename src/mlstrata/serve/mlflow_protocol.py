"""MLflow's scoring protocol: ``POST /invocations`` as ``mlflow models serve`` answers it.

The body is JSON with exactly one of these keys (plus an optional ``params`` object, which this
model takes none of and which is ignored), or CSV:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (``index`` is ignored);
- ``dataframe_records``: ``[{field: value, ...}, ...]``;
- ``instances``: a list of records (or, like ``inputs``, one list per field);
- ``inputs``: ``{field: [values...]}`` (or a list of records);
- ``text/csv``: a header line of field names, then one record per line (numbers as text, an
  empty cell is a missing value).

The answer is ``{"predictions": [...]}`` with one plain value per record: the class label for a
classifier (what MLflow's pyfunc flavour of a scikit-learn classifier returns — ``predict``, not
``predict_proba``; ``POST /v1/predict`` has the probabilities), the value for a regressor, the
cluster for clustering. When records break ``warn`` rules of the contract, the answer also holds
``"warnings": [{"record", "field", "rule", "message"}, ...]`` (MLflow clients read only
``predictions``). Errors carry MLflow's ``error_code``/``message`` keys besides ``error``;
an unsupported content type or charset is 415, as MLflow answers it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from ..runtime.model import Checked, LoadedModel, Predictions
from ._http import Request, Response, Scoring, json_response, media_type, parse_json
from .errors import RequestError
from .holder import ModelHolder

__all__ = ["invocations"]

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def invocations(holder: ModelHolder, request: Request) -> Scoring:
    """``POST /invocations``: score a JSON or CSV payload, answer ``{"predictions": [...]}``."""
    kind = _content_type(request)
    model = holder.current
    if kind == b"text/csv":
        checked = _check_csv(model, request.body)
    else:
        checked = _check_json(model, parse_json(request.body))
    return Scoring(model, checked.columns, _answer, checked.warnings)


def _answer(predictions: Predictions) -> Response:
    body: dict[str, Any] = {"predictions": predictions.predictions}
    if predictions.record_warnings is not None:
        body["warnings"] = predictions.warning_list()
    return json_response(body)


def _content_type(request: Request) -> bytes:
    value = request.header(b"content-type")
    if value is None:
        raise RequestError(415, "send a Content-Type: application/json or text/csv")
    kind = media_type(request)
    for parameter in value.split(b";")[1:]:
        key, _, charset = parameter.strip().partition(b"=")
        if key.strip().lower() != b"charset" or charset.strip().strip(b'"').lower() != b"utf-8":
            shown = parameter.strip().decode(errors="replace")
            raise RequestError(415, f"content type parameter {shown!r} is not supported; only "
                               "charset=utf-8")
    if kind not in (b"application/json", b"text/csv"):
        raise RequestError(415, f"content type {kind.decode(errors='replace')!r} is not supported;"
                           " send application/json or text/csv")
    return kind


def _check_json(model: LoadedModel, payload: Any) -> Checked:
    if not isinstance(payload, dict):
        raise RequestError(400, f"the JSON body must be an object with one of the keys {_KEYS}")
    keys = [key for key in payload if key != "params"]
    if len(keys) != 1 or keys[0] not in _KEYS:
        raise RequestError(400, f"the JSON body must have exactly one of the keys {_KEYS} (and "
                           f"optionally 'params'); it has {keys}")
    if not isinstance(payload.get("params", {}), dict | None):
        raise RequestError(400, "'params' must be an object (this model takes no parameters: "
                           "leave it out)")
    key = keys[0]
    data = payload[key]
    if key == "dataframe_split":
        return _check_lists(model, _split_lists(data))
    if key == "dataframe_records" or isinstance(data, list):
        return _check_records(model, data, key)
    if isinstance(data, dict):
        return _check_lists(model, _column_lists(data, key))
    raise RequestError(400, f"'{key}' must be a list of records or an object of one list per "
                       "field")


def _split_lists(split: Any) -> dict[str, list[Any]]:
    """``dataframe_split`` → one list per column, after checking its shape."""
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
            or not isinstance(split.get("data"), list):
        raise RequestError(400, "'dataframe_split' must be an object with 'columns' (a list of "
                           "names) and 'data' (a list of rows)")
    columns, rows = split["columns"], split["data"]
    if not all(isinstance(name, str) for name in columns):
        raise RequestError(400, "'dataframe_split.columns' must be a list of field names")
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise RequestError(400, f"'dataframe_split.data' row {index} must be a list of "
                               f"{len(columns)} values, one per column")
    return {name: [row[i] for row in rows] for i, name in enumerate(columns)}


def _column_lists(data: dict[str, Any], key: str) -> dict[str, list[Any]]:
    for name, values in data.items():
        if not isinstance(values, list):
            raise RequestError(400, f"'{key}.{name}' must be a list of values, one per record")
    return data


def _check_lists(model: LoadedModel, lists: Mapping[str, Sequence[Any]],
                 text_source: bool = False) -> Checked:
    if not lists or not any(lists.values()):
        raise RequestError(400, "no records to score; send at least one")
    return model.check_columns(lists, text_source=text_source)


def _check_records(model: LoadedModel, records: Any, key: str) -> Checked:
    if not isinstance(records, list):
        raise RequestError(400, f"'{key}' must be a list of records")
    if not records:
        raise RequestError(400, f"'{key}' is empty; send at least one record")
    return model.check_records(records)


def _check_csv(model: LoadedModel, body: bytes) -> Checked:
    """CSV with a header line → one list of text cells per column."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"the CSV body is not UTF-8 (byte {exc.start}: {exc.reason})") \
            from exc
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise RequestError(400, f"malformed CSV: {exc}") from exc
    rows = [row for row in rows if row]
    if len(rows) < 2:
        raise RequestError(400, "the CSV body needs a header line of field names and at least "
                           "one record")
    header = rows[0]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise RequestError(400, f"CSV line {line} has {len(row)} cells; the header has "
                               f"{len(header)}")
    lists = {name: [row[i] for row in rows[1:]] for i, name in enumerate(header)}
    return _check_lists(model, lists, text_source=True)
