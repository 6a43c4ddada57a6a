"""Open Inference Protocol v2 tensors ↔ the model's input fields and predictions.

Shared by the REST and gRPC front ends, so both speak the same protocol the same way:

- every model input field is one named input tensor of shape ``[n]`` or ``[n, 1]``; numbers as
  ``FP64``/``FP32``/``INT*``/``UINT*``, booleans as ``BOOL``, text and dates (ISO 8601) as
  ``BYTES``; an empty ``BYTES`` element is a missing value;
- tensor data arrives as JSON lists (flat or nested, row-major) or as raw little-endian bytes
  (Triton's binary-data extension over HTTP, ``raw_input_contents`` over gRPC), which
  :func:`decode_raw` reads — ``BYTES`` elements are each prefixed by a 4-byte length;
- outputs are ``label`` (``INT64``, ``BOOL`` or ``BYTES``, as the classes are) and
  ``probabilities`` (``FP64`` ``[n, classes]``) for classifiers, ``value`` (``FP64`` ``[n]``) for
  regressors, ``label`` + ``scores`` for clustering;
- contract warnings travel as the response parameter ``warnings``, a JSON text
  (:func:`warning_parameters`).

Every client mistake raises :class:`~mlstrata.serve.errors.RequestError` naming the tensor.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..runtime.model import LoadedModel, Predictions
from ..runtime.signature import InputField, Signature
from .errors import RequestError

__all__ = [
    "InputTensor",
    "OutputTensor",
    "decode_raw",
    "encode_raw",
    "field_lists",
    "input_datatype",
    "model_metadata",
    "output_names",
    "output_tensors",
    "warning_parameters",
]

_NUMERIC = {"FP64": "<f8", "FP32": "<f4", "FP16": "<f2", "INT64": "<i8", "INT32": "<i4",
            "INT16": "<i2", "INT8": "<i1", "UINT64": "<u8", "UINT32": "<u4", "UINT16": "<u2",
            "UINT8": "<u1", "BOOL": "?"}
_ACCEPTED = {"integer": set(_NUMERIC) - {"BOOL"}, "float": set(_NUMERIC) - {"BOOL"},
             "boolean": {"BOOL", "INT64", "INT32", "INT8", "UINT8"},
             "text": {"BYTES"}, "date": {"BYTES"}, "timestamp": {"BYTES"}}
_DATATYPE = {"integer": "INT64", "float": "FP64", "boolean": "BOOL", "text": "BYTES",
             "date": "BYTES", "timestamp": "BYTES"}


@dataclass(frozen=True)
class InputTensor:
    """One named input tensor of a request, its data already decoded to a flat list."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]


@dataclass(frozen=True)
class OutputTensor:
    """One named output tensor of a response (flat, row-major data)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]

    def to_json(self) -> dict[str, Any]:
        """The tensor as the REST protocol's JSON object."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape),
                "data": self.data}


def input_datatype(field: InputField) -> str:
    """The datatype a model's metadata announces for ``field``."""
    return _DATATYPE[field.logical_type]


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """The OIP ``GET /v2/models/{name}`` answer: name, versions, platform, inputs, outputs."""
    outputs = [{"name": spec["name"], "datatype": datatype, "shape": shape}
               for spec, datatype, shape in _output_specs(model.signature)]
    return {"name": model.name, "versions": [str(model.version)], "platform": "onnxruntime_onnx",
            "inputs": [{"name": f.name, "datatype": input_datatype(f), "shape": [-1, 1]}
                       for f in model.signature.inputs],
            "outputs": outputs}


def field_lists(signature: Signature, tensors: Sequence[InputTensor]) -> dict[str, list[Any]]:
    """One list of values per input field, after checking names, datatypes and shapes."""
    fields = {f.name: f for f in signature.inputs}
    lists: dict[str, list[Any]] = {}
    for tensor in tensors:
        field = fields.get(tensor.name)
        if field is None:
            raise RequestError(400, f"input tensor {tensor.name!r} is not an input of the model; "
                               f"its inputs are {signature.input_names}")
        if tensor.name in lists:
            raise RequestError(400, f"input tensor {tensor.name!r} is given twice")
        lists[tensor.name] = _field_values(field, tensor)
    missing = [name for name in fields if name not in lists]
    if missing:
        raise RequestError(400, f"missing input tensor(s) {missing}; send one tensor per model "
                           "input (GET the model's metadata for the list)")
    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) > 1:
        raise RequestError(400, f"input tensors have different lengths {lengths}; every tensor "
                           "needs one element per record")
    return lists


def output_tensors(
    signature: Signature, predictions: Predictions, requested: Sequence[str] | None = None
) -> list[OutputTensor]:
    """The response tensors, all of them or the ``requested`` names in that order."""
    datatypes = {spec["name"]: datatype for spec, datatype, _ in _output_specs(signature)}
    return [_output(name, datatypes[name], predictions)
            for name in output_names(signature, requested)]


def output_names(signature: Signature, requested: Sequence[str] | None = None) -> list[str]:
    """The outputs to answer: all, or the ``requested`` ones after checking they exist."""
    available = [spec["name"] for spec, _, _ in _output_specs(signature)]
    names = list(requested) if requested else available
    unknown = [name for name in names if name not in available]
    if unknown:
        raise RequestError(400, f"requested output(s) {unknown} do not exist; the model's "
                           f"outputs are {available}")
    return names


def warning_parameters(predictions: Predictions) -> dict[str, str]:
    """The response parameters that carry the records' contract warnings (none: ``{}``):
    ``{"warnings": '[{"record": 0, "field": ..., "rule": ..., "message": ...}]'}``.

    OIP parameter values are strings, numbers or booleans, so the list is JSON text.
    """
    if predictions.record_warnings is None:
        return {}
    return {"warnings": json.dumps(predictions.warning_list(), separators=(",", ":"))}


def decode_raw(datatype: str, buffer: bytes, name: str) -> list[Any]:
    """Elements of a raw (binary) tensor: little-endian numbers, or length-prefixed bytes."""
    if datatype == "BYTES":
        return _decode_bytes(buffer, name)
    dtype = _NUMERIC.get(datatype)
    if dtype is None:
        raise RequestError(400, f"input tensor {name!r}: datatype {datatype!r} is not supported; "
                           f"use one of {sorted(_NUMERIC) + ['BYTES']}")
    size = np.dtype(dtype).itemsize
    if len(buffer) % size:
        raise RequestError(400, f"input tensor {name!r}: {len(buffer)} raw bytes is not a "
                           f"whole number of {datatype} elements ({size} bytes each)")
    values: list[Any] = np.frombuffer(buffer, dtype=dtype).tolist()
    return values


def encode_raw(tensor: OutputTensor) -> bytes:
    """A response tensor's data as raw little-endian bytes (the binary-data extension)."""
    if tensor.datatype == "BYTES":
        parts = [str(value).encode() for value in tensor.data]
        return b"".join(struct.pack("<I", len(part)) + part for part in parts)
    return np.asarray(tensor.data, dtype=_NUMERIC[tensor.datatype]).tobytes()


def _field_values(field: InputField, tensor: InputTensor) -> list[Any]:
    accepted = _ACCEPTED[field.logical_type]
    if tensor.datatype not in accepted:
        raise RequestError(400, f"input tensor {tensor.name!r}: datatype {tensor.datatype} does "
                           f"not fit a {field.logical_type} field; send {input_datatype(field)}")
    shape = tensor.shape
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 0:
        raise RequestError(400, f"input tensor {tensor.name!r}: shape {list(shape)} is not [n] "
                           "or [n, 1] (one element per record)")
    if len(tensor.data) != shape[0]:
        raise RequestError(400, f"input tensor {tensor.name!r}: shape {list(shape)} needs "
                           f"{shape[0]} elements, the data has {len(tensor.data)}")
    if tensor.datatype == "BYTES":
        return [_text(value, tensor.name) for value in tensor.data]
    return [_number(value, tensor) for value in tensor.data]


def _text(value: Any, name: str) -> str | None:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(400, f"input tensor {name!r}: an element is not UTF-8 text "
                               f"({exc.reason} at byte {exc.start})") from exc
    if not isinstance(value, str):
        raise RequestError(400, f"input tensor {name!r}: BYTES elements must be strings, got "
                           f"{type(value).__name__}")
    return value or None


def _number(value: Any, tensor: InputTensor) -> Any:
    if tensor.datatype == "BOOL":
        if not isinstance(value, bool):
            raise RequestError(400, f"input tensor {tensor.name!r}: BOOL elements must be true "
                               f"or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"input tensor {tensor.name!r}: {tensor.datatype} elements must "
                           f"be numbers, got {value!r}")
    if tensor.datatype.startswith(("INT", "UINT")) and isinstance(value, float) \
            and not value.is_integer():
        raise RequestError(400, f"input tensor {tensor.name!r}: {tensor.datatype} elements must "
                           f"be integers, got {value!r}")
    return None if isinstance(value, float) and math.isnan(value) else value


def _decode_bytes(buffer: bytes, name: str) -> list[Any]:
    values: list[Any] = []
    offset = 0
    while offset < len(buffer):
        if offset + 4 > len(buffer):
            raise RequestError(400, f"input tensor {name!r}: raw BYTES data ends inside a "
                               "4-byte length prefix")
        (length,) = struct.unpack_from("<I", buffer, offset)
        offset += 4
        if offset + length > len(buffer):
            raise RequestError(400, f"input tensor {name!r}: a raw BYTES element claims "
                               f"{length} bytes but only {len(buffer) - offset} remain")
        values.append(buffer[offset:offset + length])
        offset += length
    return values


def _output_specs(signature: Signature) -> list[tuple[Mapping[str, Any], str, list[int]]]:
    specs: list[tuple[Mapping[str, Any], str, list[int]]] = []
    for spec in signature.outputs:
        if spec["name"] == "label":
            specs.append((spec, _label_datatype(signature), [-1]))
        elif spec["name"] in ("probabilities", "scores"):
            specs.append((spec, "FP64", [-1, len(spec.get("classes") or []) or -1]))
        else:
            specs.append((spec, "FP64", [-1]))
    return specs


def _label_datatype(signature: Signature) -> str:
    classes = signature.classes or []
    if signature.task == "clustering" or all(isinstance(c, int) and not isinstance(c, bool)
                                             for c in classes):
        return "INT64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    return "BYTES"


def _output(name: str, datatype: str, predictions: Predictions) -> OutputTensor:
    array = {"label": predictions.labels, "probabilities": predictions.probabilities,
             "value": predictions.values, "scores": predictions.scores}[name]
    if array is None:
        raise RequestError(400, f"the model does not produce the output {name!r}")
    if datatype == "FP64":
        array = np.asarray(array, dtype=np.float64)
    data = array.ravel().tolist()
    if datatype == "BYTES":
        data = [str(value) for value in data]
    return OutputTensor(name, datatype, tuple(array.shape), data)
