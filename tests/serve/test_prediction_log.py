"""Every serving front logs one line per answered record; feedback attaches labels to them."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from mlstrata.predlog import PredictionLog, open_log
from mlstrata.predlog.pii import mask_value
from mlstrata.predlog.reading import read_lines
from mlstrata.runtime.manifest import MANIFEST_FILE, hash_files, load_manifest
from mlstrata.serve._proto import grpc_predict_v2_pb2 as pb
from mlstrata.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from mlstrata.serve.app import create_app
from mlstrata.serve.grpc_server import start_grpc_server
from mlstrata.serve.holder import ModelHolder

from .conftest import running


@pytest.fixture
def logged(tmp_path: Path, holder: ModelHolder) -> Iterator[tuple[str, PredictionLog, Path]]:
    """A real server over the credit package logging into a fresh directory."""
    root = tmp_path / "log"
    log = open_log(root, salt="pepper", interval=0.01)
    try:
        with running(create_app(holder, prediction_log=log)) as url:
            yield url, log, root
    finally:
        log.close()


def _lines(log: PredictionLog, root: Path, **kwargs: Any) -> list[dict[str, Any]]:
    log.close()
    return sorted(read_lines(root, **kwargs), key=lambda line: (line["time"], line["record"]))


def test_rest_invocations_and_oip_log_each_record(logged: tuple[str, PredictionLog, Path],
                                                  holder: ModelHolder,
                                                  records: list[dict[str, Any]]) -> None:
    url, log, root = logged
    predict = httpx.post(f"{url}/v1/predict", json=records[:3],
                         headers={"X-Request-Id": "client-id-1"})
    invocations = httpx.post(f"{url}/invocations", json={"dataframe_records": records[3:5]})
    oip = httpx.post(f"{url}/v2/models/credit.model/infer",
                     json={"id": "oip-7", "inputs": _tensors(records[5:6])})
    oip_no_id = httpx.post(f"{url}/v2/models/credit.model/infer",
                           json={"inputs": _tensors(records[6:7])})
    for response in (predict, invocations, oip, oip_no_id):
        assert response.status_code == 200, response.text
    generated = invocations.headers["x-request-id"]
    assert predict.headers["x-request-id"] == "client-id-1" and generated
    assert oip.headers["x-request-id"] == "oip-7" and oip_no_id.headers["x-request-id"]
    lines = _lines(log, root)
    assert [(line["source"], line["request_id"], line["record"]) for line in lines] == [
        ("rest", "client-id-1", 0), ("rest", "client-id-1", 1), ("rest", "client-id-1", 2),
        ("invocations", generated, 0), ("invocations", generated, 1), ("oip-rest", "oip-7", 0),
        ("oip-rest", oip_no_id.headers["x-request-id"], 0)]
    expected = holder.current.predict_records(records[:7])
    assert [line["prediction"] for line in lines] == expected.predictions
    assert [line["prediction"] for line in lines[:3]] == [
        p["prediction"] for p in predict.json()["predictions"]]
    package = hashlib.sha256((holder.path / MANIFEST_FILE).read_bytes()).hexdigest()
    assert {line["package"] for line in lines} == {package}
    assert all(line["latency_ms"] > 0 for line in lines)
    assert len({line["latency_ms"] for line in lines[:3]}) == 1  # the request's, per record
    assert lines[0]["inputs"]["purpose"] == records[0]["purpose"]


def test_grpc_logs_under_the_request_id_or_a_new_one(tmp_path: Path, holder: ModelHolder,
                                                     records: list[dict[str, Any]]) -> None:
    root = tmp_path / "log"
    log = open_log(root, interval=0.01)
    server = start_grpc_server(holder, port=0, prediction_log=log)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            stub.ModelInfer(_grpc_request(records[:2], "g-1"))
            _, call = stub.ModelInfer.with_call(_grpc_request(records[2:3], ""))
            trailing = dict(call.trailing_metadata())
    finally:
        server.stop(grace=1)
    lines = _lines(log, root)
    assert [(line["source"], line["request_id"], line["record"]) for line in lines] == [
        ("oip-grpc", "g-1", 0), ("oip-grpc", "g-1", 1),
        ("oip-grpc", trailing["x-request-id"], 0)]
    assert [line["prediction"] for line in lines] == \
        holder.current.predict_records(records[:3]).predictions


def test_the_packaged_pii_policy_is_applied(tmp_path: Path, credit_package: Path,
                                            records: list[dict[str, Any]]) -> None:
    package = _with_policy(credit_package, tmp_path / "pii-package", {
        "purpose": {"action": "hash", "kinds": []},
        "region": {"action": "mask", "kinds": ["name_hint"]},
        "home_ownership": {"action": "drop", "kinds": []}})
    root = tmp_path / "log"
    log = open_log(root, salt="pepper", interval=0.01)
    with running(create_app(ModelHolder(lambda: package), prediction_log=log)) as url:
        assert httpx.post(f"{url}/v1/predict", json=records[:2]).status_code == 200
    lines = _lines(log, root)
    for line, record in zip(lines, records[:2], strict=True):
        inputs = line["inputs"]
        assert inputs["purpose"] == hashlib.sha256(
            ("pepper" + record["purpose"]).encode()).hexdigest()
        assert inputs["region"] == mask_value(record["region"], ["name_hint"]) != \
            record["region"]
        assert "home_ownership" not in inputs
        assert inputs["income"] == record["income"]


def test_feedback_by_request_id_and_key(tmp_path: Path, credit_package: Path,
                                        records: list[dict[str, Any]]) -> None:
    package = _with_policy(credit_package, tmp_path / "keyed", {}, key="application_id")
    root = tmp_path / "log"
    log = open_log(root, interval=0.01)
    keyed = [{**record, "application_id": f"A{n}"} for n, record in enumerate(records[:3])]
    with running(create_app(ModelHolder(lambda: package), prediction_log=log)) as url:
        answer = httpx.post(f"{url}/v1/predict", json=keyed)
        rid = answer.headers["x-request-id"]

        def post(body: Any) -> httpx.Response:
            return httpx.post(f"{url}/v1/feedback", json=body)

        one = post({"request_id": rid, "record": 1, "label": "1"})
        assert (one.status_code, one.json()) == (200, {"accepted": 1, "unmatched": 0})
        many = post([{"request_id": rid, "label": 0}, {"key": "A2", "label": "0"},
                     {"request_id": "nope", "label": 1}, {"key": "A9", "label": 0},
                     {"request_id": rid, "record": 7, "label": 1}])
        assert many.json() == {"accepted": 2, "unmatched": 3}
        unknown = post({"request_id": "nope", "label": 1})
        assert unknown.status_code == 404 and "'nope'" in unknown.json()["error"]
        for bad, words in [({"request_id": rid, "label": "maybe"}, "not one of the model's "
                            "classes [0, 1]"),
                           ({"label": 1}, "name the prediction with 'request_id' or 'key'"),
                           ([], "non-empty list"), ({"request_id": rid}, "'label' is missing"),
                           ([{"request_id": rid, "label": 1}, {"key": 5, "label": 1}],
                            "item 1: 'key' must be non-empty text"),
                           ({"request_id": rid, "label": 1, "extra": 2}, "unknown field")]:
            refused = post(bad)
            assert refused.status_code == 400 and words in refused.json()["error"], bad
        assert httpx.post(f"{url}/v1/feedback", content=b"{oops",
                          headers={"content-type": "application/json"}).status_code == 400
    predictions = _lines(log, root)
    assert [line["key"] for line in predictions] == ["A0", "A1", "A2"]
    feedback = sorted(read_lines(root, feedback=True),
                      key=lambda f: (str(f["label"]), str(f["key"])))
    assert [(f["request_id"], f["record"], f["key"], f["label"]) for f in feedback] == [
        (None, None, "A2", 0), (rid, None, None, 0), (rid, 1, None, 1)]


def test_feedback_needs_a_log(server: str) -> None:
    refused = httpx.post(f"{server}/v1/feedback", json={"request_id": "x", "label": 1})
    assert refused.status_code == 404 and "no prediction log" in refused.json()["error"]


def test_feedback_finds_ids_another_process_logged(tmp_path: Path, holder: ModelHolder,
                                                   records: list[dict[str, Any]]) -> None:
    root = tmp_path / "log"
    with open_log(root) as other:  # another worker answered the prediction
        checked = holder.current.check_records(records[:2])
        other.log_predictions(holder.current, request_id="elsewhere", source="rest",
                              columns=checked.columns,
                              predictions=holder.current.score(checked.columns), latency_ms=1)
    log = open_log(root, interval=0.01)
    with running(create_app(holder, prediction_log=log)) as url:
        found = httpx.post(f"{url}/v1/feedback", json={"request_id": "elsewhere", "label": 1})
    log.close()
    assert found.json() == {"accepted": 1, "unmatched": 0}


def _with_policy(package: Path, target: Path, policy: dict[str, dict[str, Any]],
                 key: str | None = None) -> Path:
    """A copy of ``package`` whose signature carries ``policy`` (and ``key``), re-hashed."""
    shutil.copytree(package, target)
    signature = json.loads((target / "signature.json").read_text())
    for entry in signature["inputs"]:
        if entry["name"] in policy:
            entry["pii"] = policy[entry["name"]]
    if key is not None:
        signature["key"] = key
    (target / "signature.json").write_text(json.dumps(signature))
    manifest = load_manifest(target)
    data = json.loads(manifest.to_json())
    data["files"] = {name: {"sha256": e.sha256, "size": e.size}
                     for name, e in hash_files(target).items()}
    (target / MANIFEST_FILE).write_text(json.dumps(data))
    return target


def _tensors(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "shape": [len(records)],
             "datatype": "BYTES" if isinstance(value, str) else
             "FP64" if isinstance(value, float) else "INT64",
             "data": [record[name] for record in records]}
            for name, value in records[0].items()]


def _grpc_request(records: list[dict[str, Any]], request_id: str) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="credit.model", id=request_id)
    for name, value in records[0].items():
        tensor = request.inputs.add(name=name, shape=[len(records)])
        values = [record[name] for record in records]
        if isinstance(value, str):
            tensor.datatype = "BYTES"
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        elif isinstance(value, float):
            tensor.datatype = "FP64"
            tensor.contents.fp64_contents.extend(float(v) for v in values)
        else:
            tensor.datatype = "INT64"
            tensor.contents.int64_contents.extend(int(v) for v in values)
    return request


def test_the_openapi_document_describes_feedback(logged: tuple[str, PredictionLog, Path],
                                                 records: list[dict[str, Any]]) -> None:
    """The documented feedback item is what the server takes: a documented label for an
    answered request is accepted, one outside the enum is refused, record needs request_id."""
    url, _, _ = logged
    document = httpx.get(f"{url}/openapi.json").json()
    item = document["components"]["schemas"]["FeedbackItem"]
    assert item["properties"]["label"] == {"enum": [0, 1, "0", "1"]}
    assert "/v1/feedback" in document["paths"]
    answered = httpx.post(f"{url}/v1/predict", json=records[0]).json()["request_id"]
    for label in item["properties"]["label"]["enum"]:
        body = {"request_id": answered, "record": 0, "label": label}
        assert httpx.post(f"{url}/v1/feedback", json=body).json() == {"accepted": 1,
                                                                     "unmatched": 0}
    for body in ({"request_id": answered, "label": 2},
                 {"key": "A1", "record": 0, "label": 1},
                 {"request_id": None, "key": "A1", "label": 1}):
        assert httpx.post(f"{url}/v1/feedback", json=body).status_code == 400, body
