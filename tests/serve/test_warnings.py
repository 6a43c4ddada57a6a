"""Values that break only ``warn`` rules are scored by every front, with their warnings; a strict
server (``mlstrata serve --strict``) refuses them with a 422 naming record, field and rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton

from mlstrata.runtime.model import LoadedModel
from mlstrata.serve.app import create_app
from mlstrata.serve.grpc_server import start_grpc_server
from mlstrata.serve.holder import ModelHolder

from .conftest import running, serve_process

# The credit contract was inferred: its ranges and category sets warn, its grids refuse.
WARNED = {"interest_rate": 99.0, "region": "atlantis"}
EXPECTED = [("interest_rate", "max"), ("region", "allowed")]


@pytest.fixture(scope="module")
def warned(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Three records; the second breaks two warn rules."""
    return [records[0], {**records[1], **WARNED}, records[2]]


@pytest.fixture(scope="module")
def strict_server(credit_package: Path) -> Iterator[str]:
    with running(create_app(ModelHolder(lambda: credit_package, strict=True))) as url:
        yield url


def _pairs(warnings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(w["field"], w["rule"]) for w in warnings]


def test_v1_predict_scores_and_returns_the_warnings_per_record(
        server: str, holder: ModelHolder, warned: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{server}/v1/predict", json=warned)
    assert response.status_code == 200, response.text
    first, second, third = response.json()["predictions"]
    assert "warnings" not in first and "warnings" not in third
    assert _pairs(second["warnings"]) == EXPECTED
    assert second["warnings"][0]["message"].startswith("99 is above the maximum")
    expected = holder.current.predict_records(warned)
    assert [p["prediction"] for p in (first, second, third)] == expected.predictions


def test_invocations_json_and_csv_answer_200_with_a_warnings_list(
        server: str, warned: list[dict[str, Any]]) -> None:
    answers = [httpx.post(f"{server}/invocations", json={"dataframe_records": warned}),
               httpx.post(f"{server}/invocations", content=pd.DataFrame(warned).to_csv(
                   index=False), headers={"Content-Type": "text/csv"})]
    for response in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["predictions"]) == 3
        assert [(w["record"], w["field"], w["rule"]) for w in body["warnings"]] == [
            (1, "interest_rate", "max"), (1, "region", "allowed")]
    clean = httpx.post(f"{server}/invocations", json={"dataframe_records": warned[::2]})
    assert "warnings" not in clean.json()


def _tensors(model: LoadedModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}
    return [{"name": f.name, "datatype": kinds.get(f.logical_type, "BYTES"),
             "shape": [len(records)], "data": [r[f.name] for r in records]}
            for f in model.signature.inputs]


def test_oip_rest_carries_the_warnings_as_a_response_parameter(
        server: str, holder: ModelHolder, warned: list[dict[str, Any]]) -> None:
    body = {"id": "w1", "inputs": _tensors(holder.current, warned)}
    response = httpx.post(f"{server}/v2/models/credit.model/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    listed = json.loads(answer["parameters"]["warnings"])
    assert [(w["record"], w["field"], w["rule"]) for w in listed] == [
        (1, "interest_rate", "max"), (1, "region", "allowed")]
    clean = {"inputs": _tensors(holder.current, warned[::2])}
    assert "parameters" not in httpx.post(f"{server}/v2/models/credit.model/infer",
                                          json=clean).json()


def test_grpc_carries_the_warnings_as_a_response_parameter(
        holder: ModelHolder, warned: list[dict[str, Any]]) -> None:
    server = start_grpc_server(holder, port=0)
    try:
        with triton.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
            inputs = []
            for tensor in _tensors(holder.current, warned):
                values = tensor["data"]
                array = (np.array([str(v).encode() for v in values], dtype=np.object_)
                         if tensor["datatype"] == "BYTES" else
                         np.array(values, dtype=np.float64 if tensor["datatype"] == "FP64"
                                  else np.int64))
                given = triton.InferInput(tensor["name"], list(array.shape), tensor["datatype"])
                given.set_data_from_numpy(array)
                inputs.append(given)
            result = client.infer("credit.model", inputs)
    finally:
        server.stop(grace=1)
    listed = json.loads(result.get_response().parameters["warnings"].string_param)
    assert [(w["record"], w["field"], w["rule"]) for w in listed] == [
        (1, "interest_rate", "max"), (1, "region", "allowed")]
    assert result.as_numpy("probabilities").shape == (3, 2)


def test_a_strict_server_refuses_warnings_naming_record_field_and_rule(
        strict_server: str, warned: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{strict_server}/v1/predict", json=warned)
    assert response.status_code == 422
    body = response.json()
    assert [(p["record"], p["field"], p["rule"]) for p in body["problems"]] == [
        (1, "interest_rate", "max"), (1, "region", "allowed")]
    assert body["error"].startswith("record 1, field 'interest_rate': 99 is above the maximum")
    assert "this server is strict" in body["error"]
    assert httpx.post(f"{strict_server}/v1/predict", json=warned[::2]).status_code == 200


def test_the_openapi_document_says_which_rules_warn(server: str, strict_server: str) -> None:
    """Warn rules are words, not constraints (a value past them is scored); a strict server's
    document holds them as constraints, as it refuses them."""
    document = httpx.get(f"{server}/openapi.json").json()
    schemas = document["components"]["schemas"]
    rate = schemas["Record"]["properties"]["interest_rate"]
    assert "maximum" not in rate and "scored with a warning when below" in rate["description"]
    assert "enum" not in schemas["Record"]["properties"]["region"]
    assert schemas["Record"]["properties"]["term_months"]["enum"] == [12, 24, 36, 48, 60]
    warning = schemas["Prediction"]["properties"]["warnings"]["items"]
    assert warning == {"$ref": "#/components/schemas/Warning"}
    strict = httpx.get(f"{strict_server}/openapi.json").json()["components"]["schemas"]
    assert {"minimum", "maximum"} <= set(strict["Record"]["properties"]["interest_rate"])
    assert "madrid" in strict["Record"]["properties"]["region"]["enum"]


@pytest.mark.slow
def test_mlstrata_serve_strict_refuses_warnings(credit_package: Path,
                                                warned: list[dict[str, Any]]) -> None:
    """The --strict flag reaches the served model (cli → server → holder)."""
    with serve_process(str(credit_package), "--strict") as served:
        response = httpx.post(f"{served.url}/v1/predict", json=warned)
    assert response.status_code == 422
    assert [p["rule"] for p in response.json()["problems"]] == ["max", "allowed"]
