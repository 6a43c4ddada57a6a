"""The Open Inference Protocol v2 over REST, spoken by Triton's own client and by plain HTTP."""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mlstrata.serve.holder import ModelHolder

_FLOATS = {"age", "income", "employment_years", "interest_rate", "debt_to_income"}


def _triton_inputs(records: list[dict[str, Any]], binary: bool) -> list[triton.InferInput]:
    """One tritonclient tensor per field: FP64, INT64 or BYTES (text and dates)."""
    inputs = []
    for name, value in records[0].items():
        column = [record[name] for record in records]
        if isinstance(value, str):
            array = np.array([v.encode() for v in column], dtype=np.object_).reshape(-1, 1)
            datatype = "BYTES"
        elif name in _FLOATS:
            array, datatype = np.array(column, dtype=np.float64).reshape(-1, 1), "FP64"
        else:
            array, datatype = np.array(column, dtype=np.int64).reshape(-1, 1), "INT64"
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.fixture(scope="module")
def client(server: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.removeprefix("http://"))


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer_matches_the_runtime(client: triton.InferenceServerClient,
                                                holder: ModelHolder,
                                                records: list[dict[str, Any]],
                                                binary: bool) -> None:
    outputs = [triton.InferRequestedOutput("label", binary_data=binary),
               triton.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer("credit.model", _triton_inputs(records, binary), outputs=outputs,
                          request_id="r-7")
    expected = holder.current.predict_records(records)
    assert result.get_response()["id"] == "r-7"
    assert result.as_numpy("label").tolist() == expected.labels.tolist()  # type: ignore[union-attr]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(records), 2)
    assert np.abs(probabilities - expected.probabilities).max() < 1e-12


def test_tritonclient_default_is_binary_outputs_for_a_version(
        client: triton.InferenceServerClient, holder: ModelHolder,
        records: list[dict[str, Any]]) -> None:
    result = client.infer("credit.model", _triton_inputs(records[:3], True), model_version="1")
    assert result.get_response()["model_version"] == "1"
    assert "binary_data_size" in result.get_output("label")["parameters"]
    expected = holder.current.predict_records(records[:3])
    assert result.as_numpy("label").tolist() == expected.labels.tolist()  # type: ignore[union-attr]


def test_tritonclient_health_metadata_and_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("credit.model") and client.is_model_ready("credit.model", "1")
    assert not client.is_model_ready("credit.model", "9")
    metadata = client.get_model_metadata("credit.model")
    assert metadata["versions"] == ["1"]
    inputs = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert inputs["age"] == "FP64" and inputs["term_months"] == "INT64"
    assert inputs["region"] == "BYTES" and inputs["application_date"] == "BYTES"
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    with pytest.raises(InferenceServerException, match="model 'nope' is not served here"):
        client.get_model_metadata("nope")


def _json_request(records: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    inputs = [{"name": name, "shape": [len(records), 1],
               "datatype": "BYTES" if isinstance(value, str)
               else "FP64" if name in _FLOATS else "INT64",
               "data": [[record[name]] for record in records]}
              for name, value in records[0].items()]
    return {"inputs": inputs, **extra}


def test_plain_json_selects_outputs(server: str, holder: ModelHolder,
                                    records: list[dict[str, Any]]) -> None:
    body = _json_request(records[:4], outputs=[{"name": "label"}])
    response = httpx.post(f"{server}/v2/models/credit.model/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["model_name"], answer["model_version"]) == ("credit.model", "1")
    [label] = answer["outputs"]
    assert label["name"] == "label" and label["shape"] == [4]
    assert label["data"] == holder.current.predict_records(records[:4]).predictions


def _binary_body(records: list[dict[str, Any]], tamper: int = 0) -> tuple[bytes, dict[str, str]]:
    request = _json_request(records)
    raw = b""
    for tensor in request["inputs"]:
        values = [row[0] for row in tensor.pop("data")]
        if tensor["datatype"] == "BYTES":
            chunk = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
        else:
            chunk = np.asarray(values, dtype="<f8" if tensor["datatype"] == "FP64"
                               else "<i8").tobytes()
        tensor["parameters"] = {"binary_data_size": len(chunk)}
        raw += chunk
    header = json.dumps(request).encode()
    return header + raw[:len(raw) - tamper], {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize(("mutate", "status", "message"), [
    (lambda b: b["inputs"].pop(), 400, "missing input tensor(s) ['application_date']"),
    (lambda b: b["inputs"][0].update(datatype="BYTES", data=[["x"]] * 2), 400,
     "input tensor 'age': datatype BYTES does not fit a float field; send FP64"),
    (lambda b: b["inputs"][0].update(shape=[2, 2]), 400,
     "input tensor 'age': shape [2, 2] is not [n] or [n, 1]"),
    (lambda b: b["inputs"][0].update(shape=[3, 1]), 400,
     "input tensor 'age': shape [3, 1] needs 3 elements, the data has 2"),
    (lambda b: b["inputs"][0].update(shape=["two"]), 400,
     "input tensor 'age': 'shape' must be a list of non-negative integers"),
    (lambda b: b["inputs"][3].update(data=[[1.5], [2]]), 400,
     "input tensor 'loan_amount': INT64 elements must be integers, got 1.5"),
    (lambda b: b["inputs"][4].update(data=[[18], [36]]), 422,
     "record 0, field 'term_months': 18 is not an allowed value"),
    (lambda b: b["inputs"].append({"name": "zip", "datatype": "BYTES", "shape": [2],
                                   "data": ["a", "b"]}), 400,
     "input tensor 'zip' is not an input of the model"),
    (lambda b: b.update(outputs=[{"name": "logits"}]), 400, "requested output(s) ['logits']"),
    (lambda b: b.update(inputs="all"), 400, "'inputs' must be a non-empty list"),
])
def test_bad_tensors_are_named(server: str, records: list[dict[str, Any]], mutate: Any,
                               status: int, message: str) -> None:
    body = _json_request(records[:2])
    mutate(body)
    response = httpx.post(f"{server}/v2/models/credit.model/infer", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_binary_inputs_over_plain_http(server: str, holder: ModelHolder,
                                       records: list[dict[str, Any]]) -> None:
    body, headers = _binary_body(records[:5])
    response = httpx.post(f"{server}/v2/models/credit.model/infer", content=body,
                          headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == \
        holder.current.predict_records(records[:5]).predictions


@pytest.mark.parametrize(("tamper", "header", "message"), [
    (3, None, "binary_data_size"),
    (0, "99999", "Inference-Header-Content-Length '99999' is not a length"),
    (0, "abc", "Inference-Header-Content-Length 'abc'"),
])
def test_broken_binary_bodies_are_400(server: str, records: list[dict[str, Any]], tamper: int,
                                      header: str | None, message: str) -> None:
    body, headers = _binary_body(records[:2], tamper)
    if header is not None:
        headers["Inference-Header-Content-Length"] = header
    response = httpx.post(f"{server}/v2/models/credit.model/infer", content=body,
                          headers=headers)
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/other/infer",
                                  "/v2/models/credit.model/versions/2/infer"])
def test_unknown_model_or_version_is_404(server: str, records: list[dict[str, Any]],
                                         path: str) -> None:
    response = httpx.post(server + path, json=_json_request(records[:1]))
    assert response.status_code == 404
    assert "not served here" in response.json()["error"] or "no version '2'" in \
        response.json()["error"]
