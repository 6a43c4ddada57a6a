"""The Open Inference Protocol v2 over REST, with Triton's binary-data extension.

Routes (``{name}`` is the model's name, e.g. ``credit.model``; ``/versions/{v}`` is optional
after it): ``GET /v2`` (server metadata), ``GET /v2/models/{name}`` (metadata),
``GET /v2/models/{name}/ready``, ``POST /v2/models/{name}/infer``.

An infer request is a JSON object ``{"id", "parameters", "inputs": [...], "outputs": [...]}``.
With the binary-data extension (what ``tritonclient.http`` sends by default) the JSON is only
the first ``Inference-Header-Content-Length`` bytes of the body and each input with
``parameters.binary_data_size`` takes its raw little-endian bytes, in order, from the rest.
Outputs come back as raw bytes the same way when the request sets
``parameters.binary_data_output`` or an output's ``parameters.binary_data``; the answer then
carries the ``Inference-Header-Content-Length`` header. The tensor rules (one tensor per input
field, shapes ``[n]`` or ``[n, 1]``) are :mod:`mlstrata.serve.tensors`'s, shared with gRPC.

Records that break ``warn`` rules of the contract are scored; the response then carries the
parameter ``warnings``: a JSON text of ``[{"record", "field", "rule", "message"}, ...]`` (the
protocol's parameters are strings, numbers or booleans; gRPC carries the same text as a
``string_param``).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..runtime.model import Predictions
from ._http import (
    Request,
    Response,
    Scoring,
    json_response,
    mlstrata_version,
    parse_json,
    served_model,
)
from .errors import RequestError
from .holder import ModelHolder
from .tensors import (
    InputTensor,
    decode_raw,
    encode_raw,
    field_lists,
    output_names,
    output_tensors,
    warning_parameters,
)
from .tensors import model_metadata as _metadata

__all__ = ["infer", "model_metadata", "model_ready", "parse_model_path", "server_metadata"]

_PREFIX = "/v2/models/"
_ACTIONS = ("ready", "infer")
_HEADER_LENGTH = b"inference-header-content-length"


def parse_model_path(path: str, params: dict[str, str]) -> str | None:
    """The action (``metadata``, ``ready``, ``infer``) a ``/v2/models/...`` path names, or None.

    The model name (and version) go into ``params``.

    >>> params = {}
    >>> parse_model_path("/v2/models/credit.model/versions/3/infer", params), params
    ('infer', {'name': 'credit.model', 'version': '3'})
    >>> parse_model_path("/v2/models/credit.model/other", {}) is None
    True
    """
    parts = path[len(_PREFIX):].split("/")
    if not parts[0]:
        return None
    params["name"] = parts[0]
    rest = parts[1:]
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        params["version"] = rest[1]
        rest = rest[2:]
    if not rest:
        return "metadata"
    if len(rest) == 1 and rest[0] in _ACTIONS:
        return rest[0]
    return None


def server_metadata(holder: ModelHolder, request: Request) -> Response:
    """``GET /v2``: the server's name, version and protocol extensions."""
    return json_response({"name": "mlstrata", "version": mlstrata_version(),
                          "extensions": ["binary_tensor_data"]})


def model_metadata(holder: ModelHolder, request: Request) -> Response:
    """``GET /v2/models/{name}[/versions/{v}]``: inputs, outputs, versions, platform."""
    return json_response(_metadata(served_model(holder, request)))


def model_ready(holder: ModelHolder, request: Request) -> Response:
    """``GET /v2/models/{name}[/versions/{v}]/ready``: the model is loaded (else 404)."""
    model = served_model(holder, request)
    return json_response({"name": model.name, "ready": True})


def infer(holder: ModelHolder, request: Request) -> Scoring:
    """``POST /v2/models/{name}[/versions/{v}]/infer``: score the input tensors."""
    model = served_model(holder, request)
    header, binary = _split_body(request)
    payload = parse_json(header)
    if not isinstance(payload, dict):
        raise RequestError(400, "an infer request is a JSON object with 'inputs' (a list of "
                           "tensors)")
    lists = field_lists(model.signature, _input_tensors(payload.get("inputs"), binary))
    if not any(lists.values()):
        raise RequestError(400, "the input tensors are empty; send at least one element each")
    default = _flag(payload, "binary_data_output", "the request") or False
    names, binary_flags = _requested_outputs(payload)
    output_names(model.signature, names)  # an unknown output is a 400 before any scoring

    def answer(predictions: Predictions) -> Response:
        tensors = output_tensors(model.signature, predictions, names)
        outputs, blobs = [], []
        for tensor, as_binary in zip(tensors, binary_flags or [None] * len(tensors),
                                     strict=True):
            if default if as_binary is None else as_binary:
                raw = encode_raw(tensor)
                blobs.append(raw)
                outputs.append({"name": tensor.name, "datatype": tensor.datatype,
                                "shape": list(tensor.shape),
                                "parameters": {"binary_data_size": len(raw)}})
            else:
                outputs.append(tensor.to_json())
        body: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version),
                                "outputs": outputs}
        if "id" in payload:
            body["id"] = payload["id"]
        parameters = warning_parameters(predictions)
        if parameters:
            body["parameters"] = parameters
        return _infer_response(body, blobs)

    checked = model.check_columns(lists, text_source=True)
    sent_id = payload.get("id")  # the request's own id names it in the prediction log
    return Scoring(model, checked.columns, answer, checked.warnings,
                   sent_id.encode() if isinstance(sent_id, str) and sent_id else None)


def _infer_response(answer: dict[str, Any], blobs: list[bytes]) -> Response:
    if not blobs:
        return json_response(answer)
    header = orjson.dumps(answer)
    return Response(200, header + b"".join(blobs), b"application/octet-stream",
                    ((b"inference-header-content-length", str(len(header)).encode()),))


def _split_body(request: Request) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request (no tail without the header)."""
    declared = request.header(_HEADER_LENGTH)
    if declared is None:
        return request.body, b""
    if not declared.isdigit() or int(declared) > len(request.body):
        shown = declared.decode(errors="replace")
        raise RequestError(400, f"Inference-Header-Content-Length {shown!r} is not a length "
                           f"within the {len(request.body)}-byte body")
    length = int(declared)
    return request.body[:length], request.body[length:]


def _input_tensors(inputs: Any, binary: bytes) -> list[InputTensor]:
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "'inputs' must be a non-empty list of tensors {name, datatype, "
                           "shape, data}")
    offset = 0
    tensors = []
    for index, item in enumerate(inputs):
        tensor, used = _input_tensor(item, index, binary, offset)
        tensors.append(tensor)
        offset += used
    if offset != len(binary):
        raise RequestError(400, f"the body has {len(binary) - offset} bytes of binary data no "
                           "input claims (check each input's parameters.binary_data_size)")
    return tensors


def _input_tensor(item: Any, index: int, binary: bytes, offset: int) -> tuple[InputTensor, int]:
    """One input tensor and the number of binary bytes it took from ``offset``."""
    if not isinstance(item, dict):
        raise RequestError(400, f"inputs[{index}] must be an object {{name, datatype, shape, "
                           "data}")
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise RequestError(400, f"inputs[{index}] needs a string 'name' and 'datatype'")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise RequestError(400, f"input tensor {name!r}: 'shape' must be a list of "
                           "non-negative integers")
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(400, f"input tensor {name!r}: 'parameters' must be an object")
    size = parameters.get("binary_data_size")
    if size is None:
        data = item.get("data")
        if not isinstance(data, list):
            raise RequestError(400, f"input tensor {name!r}: 'data' must be a list (or set "
                               "parameters.binary_data_size and send the bytes after the JSON)")
        return InputTensor(name, datatype, tuple(shape), _flatten(data)), 0
    if not _is_count(size) or offset + size > len(binary):
        raise RequestError(400, f"input tensor {name!r}: binary_data_size {size!r} is not a "
                           f"length within the {len(binary) - offset} binary bytes left")
    data = decode_raw(datatype, binary[offset:offset + size], name)
    return InputTensor(name, datatype, tuple(shape), data), size


def _requested_outputs(
    payload: dict[str, Any]
) -> tuple[list[str] | None, list[bool | None] | None]:
    """The requested output names and, per output, whether it asks for binary data."""
    outputs = payload.get("outputs")
    if outputs is None:
        return None, None
    if not isinstance(outputs, list) or not all(isinstance(o, dict)
                                                and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise RequestError(400, "'outputs' must be a list of objects with a 'name'")
    return [o["name"] for o in outputs], [_flag(o, "binary_data", f"output {o['name']!r}")
                                          for o in outputs]


def _flag(item: dict[str, Any], name: str, where: str) -> bool | None:
    """The boolean parameter ``name`` of ``item`` (None when absent)."""
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(400, f"{where}: 'parameters' must be an object")
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise RequestError(400, f"{where}: parameter {name!r} must be true or false")
    return value


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major elements of a (possibly nested) JSON list, without recursion."""
    if not any(isinstance(value, list) for value in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat
