"""The OIP v2 gRPC service against real clients: tritonclient.grpc and a stub from the proto."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

import mlstrata
from mlstrata.errors import MlstrataError
from mlstrata.runtime.model import LoadedModel
from mlstrata.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from mlstrata.serve.grpc_server import GrpcServer, start_grpc_server
from mlstrata.serve.holder import ModelHolder

from ._tensors import DATATYPE, typed_infer_request

MODEL = "credit.model"


@pytest.fixture(scope="module")
def grpc_server(holder: ModelHolder) -> Iterator[GrpcServer]:
    """A real gRPC server for the credit package (no API key); ``holder``, ``records``: conftest."""
    started = start_grpc_server(holder, port=0)
    yield started
    started.stop(grace=1)


@pytest.fixture(scope="module")
def client(grpc_server: GrpcServer) -> Iterator[triton.InferenceServerClient]:
    with _client(grpc_server) as connected:
        yield connected


def _client(server: GrpcServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{server.port}")


def _inputs(model: LoadedModel, records: list[dict[str, Any]],
            datatypes: dict[str, str | None] | None = None) -> list[triton.InferInput]:
    """One tritonclient input per model field (numbers FP64/INT64, text and dates BYTES).

    ``datatypes`` sends a field with another datatype, or not at all (None).
    """
    inputs = []
    for field in model.signature.inputs:
        datatype = (datatypes or {}).get(field.name, DATATYPE[field.logical_type])
        if datatype is None:
            continue
        values = [record[field.name] for record in records]
        array = (np.array([str(v).encode() for v in values], dtype=np.object_)
                 if datatype == "BYTES" else np.array(values, dtype=datatype.lower()
                                                      .replace("fp", "float")))
        tensor = triton.InferInput(field.name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def _error(call: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def test_health_readiness_and_metadata(
    grpc_server: GrpcServer, client: triton.InferenceServerClient, holder: ModelHolder
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "1")
    assert not client.is_model_ready("other") and not client.is_model_ready(MODEL, "2")
    server_metadata = client.get_server_metadata()
    assert (server_metadata.name, server_metadata.version) == ("mlstrata", mlstrata.__version__)
    metadata = client.get_model_metadata(MODEL, as_json=True)
    assert (metadata["name"], metadata["versions"]) == (MODEL, ["1"])
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (f.name, DATATYPE[f.logical_type]) for f in holder.current.signature.inputs]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("label", "INT64", ["-1"]), ("probabilities", "FP64", ["-1", "2"])]


def test_infer_matches_the_runtime_on_the_same_records(
    client: triton.InferenceServerClient, holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    expected = holder.current.predict_records(records)
    result = client.infer(MODEL, _inputs(holder.current, records), request_id="req-7")
    response = result.get_response()
    assert (response.id, response.model_name, response.model_version) == ("req-7", MODEL, "1")
    assert len(response.raw_output_contents) == 2  # raw in, raw out (as Triton answers)
    assert result.as_numpy("label").tolist() == expected.labels.tolist()
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(records), 2)
    np.testing.assert_allclose(probabilities, expected.probabilities, rtol=0, atol=1e-12)


def test_only_the_requested_outputs_come_back(
    client: triton.InferenceServerClient, holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    result = client.infer(MODEL, _inputs(holder.current, records[:3]),
                          outputs=[triton.InferRequestedOutput("probabilities")])
    assert [o.name for o in result.get_response().outputs] == ["probabilities"]
    assert result.as_numpy("label") is None


def test_typed_contents_get_a_typed_answer(
    grpc_server: GrpcServer, holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    """A client built from the standard proto, sending ``contents`` instead of raw bytes."""
    request = typed_infer_request(holder.current.signature, records, MODEL, "typed")
    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    expected = holder.current.predict_records(records)
    assert response.id == "typed" and not response.raw_output_contents
    label, probabilities = response.outputs
    assert list(label.contents.int64_contents) == expected.labels.tolist()
    assert list(probabilities.shape) == [len(records), 2]
    np.testing.assert_allclose(probabilities.contents.fp64_contents,
                               expected.probabilities.ravel(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("datatypes", "change", "message"), [
    ({"age": "BYTES"}, {}, "input tensor 'age': datatype BYTES does not fit a float field; "
                           "send FP64"),
    ({"region": None}, {}, "missing input tensor(s) ['region']"),
    ({"loan_amount": "FP64"}, {"loan_amount": 1000.5},
     "record 1, field 'loan_amount': expected an integer, got 1000.5"),
    ({}, {"term_months": 18}, "record 1, field 'term_months': 18 is not an allowed value"),
])
def test_bad_inputs_are_invalid_arguments_naming_the_field(
    client: triton.InferenceServerClient, holder: ModelHolder, records: list[dict[str, Any]],
    datatypes: dict[str, str | None], change: dict[str, Any], message: str,
) -> None:
    rows = [records[0], dict(records[1], **change)]
    error = _error(lambda: client.infer(MODEL, _inputs(holder.current, rows, datatypes)))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message().startswith(message)


def test_unknown_model_version_or_output(
    client: triton.InferenceServerClient, holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    inputs = _inputs(holder.current, records[:1])
    unknown = _error(lambda: client.infer("nope", inputs))
    assert unknown.status() == "StatusCode.NOT_FOUND" and "'nope'" in unknown.message()
    version = _error(lambda: client.infer(MODEL, inputs, model_version="9"))
    assert version.status() == "StatusCode.NOT_FOUND" and "version '9'" in version.message()
    metadata = _error(lambda: client.get_model_metadata("nope"))
    assert metadata.status() == "StatusCode.NOT_FOUND"
    output = _error(lambda: client.infer(MODEL, inputs,
                                         outputs=[triton.InferRequestedOutput("value")]))
    assert output.status() == "StatusCode.INVALID_ARGUMENT" and "['value']" in output.message()


def test_an_oversized_message_is_resource_exhausted(
    holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    small = start_grpc_server(holder, port=0, max_message_bytes=1024)
    try:
        with _client(small) as client:
            assert client.infer(MODEL, _inputs(holder.current, records[:1]))
            error = _error(lambda: client.infer(MODEL, _inputs(holder.current, records)))
    finally:
        small.stop(grace=1)
    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"


def test_the_api_key_is_required_except_for_health(
    holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    guarded = start_grpc_server(holder, port=0, api_key="s3cret")
    try:
        with _client(guarded) as client:
            assert client.is_server_live() and client.is_server_ready()
            missing = _error(lambda: client.is_model_ready(MODEL))
            wrong = _error(lambda: client.infer(MODEL, _inputs(holder.current, records[:1]),
                                                headers={"authorization": "Bearer guess"}))
            assert client.is_model_ready(MODEL, headers={"authorization": "Bearer s3cret"})
            assert client.get_model_metadata(MODEL, headers={"x-api-key": "s3cret"})
    finally:
        guarded.stop(grace=1)
    assert missing.status() == wrong.status() == "StatusCode.UNAUTHENTICATED"
    assert "'authorization: Bearer KEY'" in missing.message()
    assert "not this server's key" in wrong.message()


class _SlowModel:
    """The real model, taking ``delay`` seconds per prediction and telling when it starts."""

    def __init__(self, model: LoadedModel, delay: float) -> None:
        self._model = model
        self._delay = delay
        self.started = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict_columns(self, *args: Any, **kwargs: Any) -> Any:
        self.started.set()
        time.sleep(self._delay)
        return self._model.predict_columns(*args, **kwargs)


def test_stop_lets_the_call_in_flight_finish_and_refuses_new_ones(
    credit_package: Path, records: list[dict[str, Any]]
) -> None:
    slow_holder = ModelHolder(lambda: credit_package)
    slow = _SlowModel(slow_holder.current, delay=0.5)
    slow_holder.current = slow  # type: ignore[assignment]
    before = set(threading.enumerate())
    server = start_grpc_server(slow_holder, port=0)
    with _client(server) as client, ThreadPoolExecutor(1) as pool:
        inputs = _inputs(slow._model, records)
        in_flight = pool.submit(client.infer, MODEL, inputs)
        assert slow.started.wait(5)
        server.stop(grace=5)
        result = in_flight.result(timeout=5)
        refused = _error(lambda: client.infer(MODEL, inputs, client_timeout=2))
    expected = slow._model.predict_records(records)
    assert result.as_numpy("label").tolist() == expected.labels.tolist()
    assert refused.status() in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")
    assert not [t for t in set(threading.enumerate()) - before
                if t.name.startswith("mlstrata-grpc")]


def test_a_taken_port_is_a_one_line_error(grpc_server: GrpcServer, holder: ModelHolder) -> None:
    with pytest.raises(MlstrataError, match=rf"cannot serve gRPC on 127.0.0.1:{grpc_server.port}: "
                       "the port is taken"):
        start_grpc_server(holder, port=grpc_server.port)
