"""The OpenAPI 3 document of a served model, generated from its signature, and Swagger UI.

``GET /openapi.json`` describes every route with the model's own record schema: each input
field's JSON type (``format: date``/``date-time`` for dates, with a ``pattern`` of the years
within a date range), ``enum`` for the allowed values of a strict field, ``minimum``/``maximum``,
``pattern`` and ``nullable`` — what the server validates, so that a request the document calls
valid is one the server scores (schemathesis checks it both ways in the tests):

- only the rules that refuse a value are constraints: a rule of severity ``warn`` (an observed
  range, a category set) is said in the field's ``description``, since a value breaking it is
  scored and answered with a ``warnings`` list — unless the server is ``--strict``, which
  refuses it, so that the document then holds it as a constraint like the others;
- lists of records hold at least one record; a CSV body is a header line naming the fields and
  at least one record of valid cells (a ``pattern``, see :mod:`._csv_pattern`);
- an OIP tensor has shape ``[n]`` or ``[n, 1]`` and at least one element, no nulls (an empty
  ``BYTES`` element is a missing value), and only the model's outputs can be asked for.

What JSON Schema cannot say is said in the descriptions: OIP tensors must name every input once
and agree in length; MLflow's column forms (``inputs``/``instances`` as one list per field,
``dataframe_split``) are accepted but described in words, since equal lengths and positions have
no JSON Schema form. ``POST /v1/feedback`` takes labels the model could have answered (its
classes, or numbers for a regressor; not documented for a clustering model, which has none).
``GET /docs`` is Swagger UI, served from the ``swagger_ui_bundle``
package's files (works offline).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import orjson

from ..predlog import NUMBER_TEXT
from ..runtime.model import LoadedModel
from ..runtime.signature import InputField, class_key
from ._csv_pattern import csv_pattern, date_pattern
from ._http import Request, Response, mlstrata_version
from .errors import RequestError
from .holder import ModelHolder
from .tensors import input_datatype
from .tensors import model_metadata as _metadata

__all__ = ["docs_asset", "docs_page", "openapi_document", "openapi_json"]

_ASSETS = {"swagger-ui.css": b"text/css; charset=utf-8",
           "swagger-ui-bundle.js": b"application/javascript; charset=utf-8",
           "favicon-32x32.png": b"image/png", "favicon-16x16.png": b"image/png"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui"}});</script>
</body></html>
"""
_JSON_TYPES: dict[str, dict[str, Any]] = {
               "integer": {"type": "integer"}, "float": {"type": "number"},
               "boolean": {"type": "boolean"}, "text": {"type": "string"},
               "date": {"type": "string", "format": "date"},
               "timestamp": {"type": "string", "format": "date-time"}}
_ERRORS = {"400": "Malformed request (the error names the part)",
           "401": "Missing or wrong API key", "404": "Unknown model or version",
           "413": "Body larger than the server's limit", "415": "Unsupported content type",
           "422": "A value the model's signature refuses (the error names record and field)"}


def openapi_json(holder: ModelHolder, request: Request) -> Response:
    """``GET /openapi.json`` for the model served now."""
    return Response(200, _document_bytes(holder.current))


def docs_page(holder: ModelHolder, request: Request) -> Response:
    """``GET /docs``: the Swagger UI page reading ``/openapi.json``."""
    title = f"{holder.current.name} v{holder.current.version} — mlstrata"
    return Response(200, _PAGE.format(title=title).encode(), b"text/html; charset=utf-8")


def docs_asset(holder: ModelHolder, request: Request) -> Response:
    """``GET /docs/{asset}``: one of Swagger UI's files, from the local bundle."""
    name = request.params["asset"]
    if name not in _ASSETS:
        raise RequestError(404, f"no documentation file {name!r}")
    return Response(200, _asset(name), _ASSETS[name],
                    ((b"cache-control", b"public, max-age=86400"),))


@functools.lru_cache(maxsize=4)
def _asset(name: str) -> bytes:
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
    except ImportError as exc:  # the lean serving distribution without its [docs] extra
        raise RequestError(404, "Swagger UI is not installed with this server (pip install "
                           "'mlstrata-serving[docs]'); GET /openapi.json has the document") \
            from exc
    data: bytes = (swagger_ui_path / name).read_bytes()
    return data


@functools.lru_cache(maxsize=2)
def _document_bytes(model: LoadedModel) -> bytes:
    return orjson.dumps(openapi_document(model))


def openapi_document(model: LoadedModel) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the server for ``model`` (see the module docstring)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{model.name} (mlstrata)", "version": str(model.version),
                 "description": f"Model {model.name} version {model.version}, served by "
                                f"mlstrata {mlstrata_version()}."},
        "paths": _paths(model),
        "components": {"schemas": _schemas(model), "responses": _error_responses(),
                       "securitySchemes": {
                           "bearer": {"type": "http", "scheme": "bearer"},
                           "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
        "security": [{}, {"bearer": []}, {"apiKey": []}],
    }


def field_schema(field: InputField) -> dict[str, Any]:
    """The JSON schema of one input field's value, with the contract's rules.

    >>> field_schema(InputField("term", "integer", False, allowed=(12, 24), strict=True))
    {'type': 'integer', 'enum': [12, 24]}
    >>> field_schema(InputField("rate", "float", True, min=0.5))
    {'type': 'number', 'minimum': 0.5, 'nullable': True}
    """
    schema: dict[str, Any] = dict(_JSON_TYPES[field.logical_type])
    if field.allowed is not None and field.strict:
        schema["enum"] = list(field.allowed) + ([None] if field.nullable else [])
    if field.is_numeric and field.logical_type != "boolean":
        if field.min is not None:
            schema["minimum"] = field.min
        if field.max is not None:
            schema["maximum"] = field.max
    elif field.is_date and (field.min is not None or field.max is not None):
        schema["description"] = f"from {field.min or 'any date'} to {field.max or 'any date'}"
        schema["pattern"] = date_pattern(field)
    if field.pattern is not None and field.logical_type == "text":
        schema["pattern"] = field.pattern
    if field.nullable:
        schema["nullable"] = True
    return schema


def warn_note(field: InputField) -> str | None:
    """What the field's warn rules say, for its description (None without warn rules).

    >>> warn_note(InputField("lines", "integer", min=0, max=13, warn=frozenset({"max"})))
    'scored with a warning when above 13'
    """
    notes = []
    if field.min is not None and field.severity("min") == "warn":
        notes.append(f"below {field.min}")
    if field.max is not None and field.severity("max") == "warn":
        notes.append(f"above {field.max}")
    if field.allowed is not None and field.severity("allowed") == "warn":
        shown = ", ".join(map(str, list(field.allowed)[:20]))
        notes.append(f"not one of {shown}{', ...' if len(field.allowed) > 20 else ''}")
    if field.pattern is not None and field.severity("pattern") == "warn":
        notes.append(f"not matching {field.pattern}")
    if not field.nullable and field.severity("not_null") == "warn":
        notes.append("null")
    return f"scored with a warning when {' or '.join(notes)}" if notes else None


def _record_field_schema(field: InputField, strict: bool) -> dict[str, Any]:
    """A record field's schema: the rules that refuse as constraints, warn rules in words."""
    schema = field_schema(field.enforced(strict))
    note = None if strict else warn_note(field)
    if note is not None:
        schema["description"] = f"{schema['description']}; {note}" if "description" in schema \
            else note
    return schema


def tensor_element_schema(field: InputField) -> dict[str, Any]:
    """The JSON schema of one element of an OIP input tensor: a field's value, never null (an
    empty text is the missing value of a ``BYTES`` tensor; a number tensor has none in JSON).

    >>> tensor_element_schema(InputField("city", "text", True, allowed=("a",), strict=True))
    {'type': 'string', 'enum': ['a', '']}
    >>> tensor_element_schema(InputField("city", "text", False))
    {'type': 'string', 'minLength': 1}
    """
    schema = field_schema(dataclasses.replace(field, nullable=False))
    if field.is_numeric or field.logical_type == "boolean":
        return schema
    if "enum" in schema:
        return {**schema, "enum": schema["enum"] + ([""] if field.nullable else [])}
    if not field.nullable:
        return {**schema, "minLength": 1}
    if len(schema) == 1:  # free text: any string, the empty one missing
        return schema
    return {"type": "string", "anyOf": [schema, {"type": "string", "maxLength": 0}]}


def _schemas(model: LoadedModel) -> dict[str, Any]:
    inputs = model.signature.inputs
    record = {"type": "object", "required": [f.name for f in inputs],
              "properties": {f.name: _record_field_schema(f, model.strict) for f in inputs}}
    records = {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Record"}}
    warning: dict[str, Any] = {"type": "object", "required": ["field", "rule", "message"],
                               "properties": {"field": {"type": "string"},
                                              "rule": {"type": "string"},
                                              "message": {"type": "string"}}}
    return {
        "Record": record,
        "Records": records,
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"},
                                 "problems": {"type": "array", "items": {"type": "object"}}}},
        "Warning": {**warning, "description": "A rule of severity warn the record breaks; the "
                                              "record was scored anyway"},
        "RecordWarning": {**warning, "required": ["record", *warning["required"]],
                          "properties": {"record": {"type": "integer", "minimum": 0},
                                         **warning["properties"]}},
        "Prediction": {"type": "object", "required": ["prediction"],
                       "properties": {"prediction": {},
                                      "probabilities": {"type": "object",
                                                        "additionalProperties":
                                                            {"type": "number"}},
                                      "warnings": {"type": "array", "minItems": 1, "items": {
                                          "$ref": "#/components/schemas/Warning"}}}},
        "InferenceRequest": _inference_request(model),
        "FeedbackItem": _feedback_item(model),
    }


def _feedback_item(model: LoadedModel) -> dict[str, Any]:
    """One label for a logged prediction, named by request id (and record) or by key."""
    name = {"type": "string", "minLength": 1}
    return {"type": "object", "required": ["label"], "additionalProperties": False,
            "properties": {"request_id": name, "record": {"type": "integer", "minimum": 0},
                           "key": name, "label": _label_schema(model)},
            "anyOf": [{"required": ["request_id"]},
                      {"required": ["key"], "not": {"required": ["record"]}}],
            "description": "The X-Request-Id of an answered request (record: the position "
                           "of one of its records; none: every record) or the business key "
                           "it was logged with, and the true label."}


def _label_schema(model: LoadedModel) -> dict[str, Any]:
    """A label the model could have answered: one of its classes (or the class as a JSON key
    spells it), or a number (also as text) for a regressor."""
    classes = model.signature.classes
    if model.signature.task == "regression" or not classes:
        return {"oneOf": [{"type": "number"},
                          {"type": "string", "pattern": f"^{NUMBER_TEXT.pattern}$"}]}
    plain = [c.item() if hasattr(c, "item") else c for c in classes]
    return {"enum": list(dict.fromkeys([*plain, *(class_key(c) for c in plain)]))}


def _inference_request(model: LoadedModel) -> dict[str, Any]:
    inputs = [f.enforced(model.strict) for f in model.signature.inputs]
    shape = {"type": "array", "minItems": 1, "maxItems": 2,
             "items": {"type": "integer", "minimum": 1},
             "description": "[n] or [n, 1]: n records, one element each"}
    tensors = [{"type": "object", "required": ["name", "datatype", "shape", "data"],
                "properties": {"name": {"type": "string", "enum": [f.name]},
                               "datatype": {"type": "string", "enum": [input_datatype(f)]},
                               "shape": shape,
                               "data": {"type": "array", "minItems": 1,
                                        "items": tensor_element_schema(f)}}}
               for f in inputs]
    outputs = [spec["name"] for spec in _metadata(model)["outputs"]]
    return {"type": "object", "required": ["inputs"],
            "description": f"One tensor per model input ({len(inputs)}: "
                           f"{', '.join(f.name for f in inputs)}), each named once, all with "
                           "the same number of elements n (shape [n] or [n, 1]).",
            "properties": {"id": {"type": "string"},
                           "inputs": {"type": "array", "minItems": len(inputs),
                                      "maxItems": len(inputs), "items": {"oneOf": tensors}},
                           "outputs": {"type": "array", "items": {
                               "type": "object", "required": ["name"],
                               "properties": {"name": {"type": "string",
                                                       "enum": outputs}}}}}}


def _error_responses() -> dict[str, Any]:
    return {code: {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code, text in _ERRORS.items()}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _answers(schema: dict[str, Any], *errors: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {
        "application/json": {"schema": schema}}}}
    responses.update({code: {"$ref": f"#/components/responses/{code}"} for code in errors})
    return responses


def _paths(model: LoadedModel) -> dict[str, Any]:
    ref = "#/components/schemas/"
    post_errors = ("400", "401", "404", "413", "415", "422")
    predict_answer = {"type": "object", "properties": {
        "model": {"type": "string"}, "version": {"type": "integer"},
        "request_id": {"type": "string"},
        "predictions": {"type": "array", "items": {"$ref": ref + "Prediction"}}}}
    invocations = {"oneOf": [_object(key, {"$ref": ref + "Records"})
                             for key in ("dataframe_records", "instances", "inputs")]}
    name = {"name": "model_name", "in": "path", "required": True,
            "schema": {"type": "string", "enum": [model.name]}}
    version = {"name": "model_version", "in": "path", "required": True,
               "schema": {"type": "string", "enum": [str(model.version)]}}
    paths: dict[str, Any] = {
        "/v1/predict": {"post": {
            "summary": "Predict one record or a list of records",
            "requestBody": _json_body({"oneOf": [{"$ref": ref + "Record"},
                                                 {"$ref": ref + "Records"}]}),
            "responses": _answers(predict_answer, *post_errors)}},
        "/invocations": {"post": {
            "summary": "MLflow scoring protocol",
            "description": _INVOCATIONS,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": invocations},
                "text/csv": {"schema": {"type": "string", "pattern": csv_pattern(
                    [f.enforced(model.strict) for f in model.signature.inputs])}}}},
            "responses": _answers({"type": "object", "properties": {
                "predictions": {"type": "array"},
                "warnings": {"type": "array", "items": {"$ref": ref + "RecordWarning"}}}},
                *post_errors)}},
        "/v1/feedback": {"post": {
            "summary": "Attach true labels to logged predictions",
            "description": _FEEDBACK,
            "requestBody": _json_body({"oneOf": [
                {"$ref": ref + "FeedbackItem"},
                {"type": "array", "minItems": 1, "items": {"$ref": ref + "FeedbackItem"}}]}),
            "responses": _answers({"type": "object", "required": ["accepted", "unmatched"],
                                   "properties": {"accepted": {"type": "integer"},
                                                  "unmatched": {"type": "integer"}}},
                                  "400", "401", "404", "413", "415")}},
        "/v2/health/live": {"get": {"summary": "Liveness", "responses": _answers({})}},
        "/v2/health/ready": {"get": {"summary": "Readiness", "responses": _answers({})}},
        "/v2": {"get": {"summary": "Server metadata", "responses": _answers({}, "401")}},
        "/ping": {"get": {"summary": "MLflow health check", "responses": _answers({})}},
    }
    if model.signature.task == "clustering":
        del paths["/v1/feedback"]
    for prefix, parameters in (("/v2/models/{model_name}", [name]),
                               ("/v2/models/{model_name}/versions/{model_version}",
                                [name, version])):
        paths[prefix] = {"get": {"summary": "Model metadata", "parameters": parameters,
                                 "responses": _answers(_metadata_schema(model), "401", "404")}}
        paths[prefix + "/ready"] = {"get": {"summary": "Model readiness",
                                            "parameters": parameters,
                                            "responses": _answers({}, "401", "404")}}
        paths[prefix + "/infer"] = {"post": {
            "summary": "Open Inference Protocol v2 inference (JSON tensors)",
            "parameters": parameters,
            "requestBody": _json_body({"$ref": ref + "InferenceRequest"}),
            "responses": _answers(_infer_answer(), *post_errors)}}
    return paths


def _infer_answer() -> dict[str, Any]:
    return {"type": "object", "properties": {"parameters": {"type": "object", "properties": {
        "warnings": {"type": "string", "description": "JSON text: a list of {record, field, "
                                                      "rule, message}, one per broken rule of "
                                                      "severity warn"}}}}}


def _object(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key],
            "properties": {key: schema, "params": {"type": "object", "nullable": True}},
            "additionalProperties": False}


_FEEDBACK = (
    "One item or a list. An item naming no logged prediction is counted as unmatched and not "
    "written; a single such item is a 404, as is any feedback to a server that keeps no "
    "prediction log (started with --no-log or outside a workspace).")
_INVOCATIONS = (
    "A JSON object with one key — dataframe_records, instances or inputs: a list of records — "
    "or CSV: a header line naming every input field, then one record per line (an empty cell "
    "is a missing value). Also accepted, as MLflow sends them: instances or inputs as one list "
    "of values per field (all the same length), and dataframe_split {columns, data} with one "
    "row per record. The answer holds one prediction per record.")


def _metadata_schema(model: LoadedModel) -> dict[str, Any]:
    example = _metadata(model)
    return {"type": "object", "required": list(example), "example": example}
