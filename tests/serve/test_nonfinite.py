"""A record the model answers NaN for is a 422 (gRPC: INVALID_ARGUMENT) naming the record and the
field on every front, never a 200 with null probabilities and a made-up class."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from mlstrata.runtime.inputs import Columns
from mlstrata.runtime.model import Predictions
from mlstrata.runtime.outputs import NonFinitePredictionError, require_finite
from mlstrata.runtime.signature import InputField, Signature
from mlstrata.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from mlstrata.serve.app import create_app
from mlstrata.serve.batching import BatchScorer
from mlstrata.serve.grpc_server import start_grpc_server
from mlstrata.serve.holder import ModelHolder

from ..runtime.test_outputs import RECORD
from ._tensors import DATATYPE, typed_infer_request
from .conftest import running

BAD = {**RECORD, "income": 1e300}
MESSAGE = "record 1, field 'income': 1e+300 is above the training range ("


@pytest.fixture(scope="module")
def unbounded(uncontracted_packages: tuple[Path, Path]) -> ModelHolder:
    """The naive Bayes packaged with a types-only contract: 1e300 reaches the model."""
    return ModelHolder(lambda: uncontracted_packages[1])


@pytest.fixture(scope="module")
def url(unbounded: ModelHolder) -> Iterator[str]:
    with running(create_app(unbounded)) as served:
        yield served


def _refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["error"].startswith(MESSAGE) and "answers NaN" in body["error"]
    assert [(p["record"], p["field"]) for p in body["problems"]] == [(1, "income")]
    return body


def test_v1_predict(url: str) -> None:
    _refused(httpx.post(f"{url}/v1/predict", json=[RECORD, BAD]))
    assert httpx.post(f"{url}/v1/predict", json=[RECORD]).status_code == 200


def test_invocations_json_and_csv(url: str) -> None:
    body = _refused(httpx.post(f"{url}/invocations", json={"dataframe_records": [RECORD, BAD]}))
    assert body["error_code"] == "BAD_REQUEST"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(RECORD))
    writer.writeheader()
    writer.writerows([RECORD, BAD])
    _refused(httpx.post(f"{url}/invocations", content=text.getvalue(),
                        headers={"content-type": "text/csv"}))


def test_oip_v2_infer(url: str, unbounded: ModelHolder) -> None:
    inputs = [{"name": f.name, "datatype": DATATYPE[f.logical_type], "shape": [2],
               "data": [RECORD[f.name], BAD[f.name]]} for f in unbounded.current.signature.inputs]
    _refused(httpx.post(f"{url}/v2/models/credit.model/infer", json={"inputs": inputs}))


def test_grpc_is_invalid_argument_with_the_same_message(unbounded: ModelHolder) -> None:
    request = typed_infer_request(unbounded.current.signature, [RECORD, BAD], "credit.model")
    server = start_grpc_server(unbounded, port=0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, \
                pytest.raises(grpc.RpcError) as caught:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    finally:
        server.stop(grace=1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(MESSAGE)


class _Tripler:
    """A model answering 3x, NaN where x is not finite (as a model overflows)."""

    signature = Signature("m@1", "regression", "y",
                          (InputField("x", "float", training_min=0.0, training_max=9.0),), (),
                          (), ())

    def score(self, columns: Columns) -> Predictions:
        x = columns["x"]
        predictions = Predictions(values=np.where(x > 1e100, np.nan, x * 3))
        require_finite(self.signature, columns, predictions)
        return predictions


def test_merged_requests_fail_only_the_one_with_the_record() -> None:
    """Requests scored in one call: the NaN record's request gets the error, renumbered from
    its own first record; the others get their predictions."""
    async def three_requests() -> list[Any]:
        scorer, model = BatchScorer(), _Tripler()
        jobs = [scorer.score(model, {"x": np.array(values)}, len(values))
                for values in ([1.0], [2.0, 1e300], [4.0])]
        return await asyncio.gather(*jobs, return_exceptions=True)

    first, second, third = asyncio.run(three_requests())
    assert first.values.tolist() == [3.0] and third.values.tolist() == [12.0]
    assert isinstance(second, NonFinitePredictionError)
    assert str(second).startswith("record 1, field 'x': 1e+300 is above the training range "
                                  "(0 to 9)")
    assert second.predictions is not None and second.predictions.values[0] == 6.0
