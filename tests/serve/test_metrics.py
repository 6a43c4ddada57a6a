"""``GET /metrics``: real requests to a real server, counted right, in a format promtool accepts.

Every count is checked against what the requests sent and what the server answered, on REST and
gRPC in one process, and across two worker processes of ``mlstrata serve --workers 2``.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from mlstrata.predlog import open_log
from mlstrata.runtime.inputs import columns_from_records
from mlstrata.runtime.model import Predictions
from mlstrata.runtime.signature import InputField, Signature
from mlstrata.serve._proto import grpc_predict_v2_pb2 as pb
from mlstrata.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from mlstrata.serve._tally import Tally
from mlstrata.serve.app import create_app
from mlstrata.serve.grpc_server import start_grpc_server
from mlstrata.serve.holder import ModelHolder
from mlstrata.serve.metrics import (
    FLUSH_SECONDS,
    PROBABILITY_BUCKETS,
    ServeMetrics,
    problem_rule,
)

from .conftest import free_port, running, serve_process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
INFER = "/inference.GRPCInferenceService/ModelInfer"


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the exposition has no such sample)."""
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, key), v in found.items() if n == name and wanted <= set(key))


def promtool_check(text: str) -> None:
    """``promtool check metrics`` accepts the exposition (lint included)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'; .ci/run installs it)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def broken(holder: ModelHolder, record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``record`` with its first number field sent as text (a type refusal), and that field."""
    field = next(f.name for f in holder.current.signature.inputs if f.is_numeric)
    return {**record, field: "many"}, field


@pytest.fixture()
def metrics() -> ServeMetrics:
    return ServeMetrics()


@pytest.fixture()
def url(holder: ModelHolder, metrics: ServeMetrics) -> Iterator[str]:
    with running(create_app(holder, metrics=metrics)) as served:
        yield served


def test_rest_requests_are_counted_by_route_status_records_and_predictions(
    url: str, holder: ModelHolder, records: list[dict[str, Any]], credit_package: Path
) -> None:
    answers = []
    with httpx.Client(base_url=url) as http:
        for size in (1, 3, 5):
            answer = http.post("/v1/predict", json=records[:size])
            assert answer.status_code == 200
            answers += answer.json()["predictions"]
        predicted = samples(http.get("/metrics").text)
        assert http.post("/invocations", json={"dataframe_records": records[:4]}) \
            .status_code == 200
        bad, field = broken(holder, records[0])
        assert http.post("/v1/predict", json=[records[1], bad]).status_code == 422
        assert http.get("/nowhere").status_code == 404
        assert http.get("/v2/models/credit.model/ready").status_code == 200
        found = samples(http.get("/metrics").text)
    assert value(found, "mlstrata_requests_total", route="/v1/predict", status="200") == 3
    assert value(found, "mlstrata_requests_total", route="/v1/predict", status="422") == 1
    assert value(found, "mlstrata_requests_total", route="/invocations", status="200") == 1
    assert value(found, "mlstrata_requests_total", route="other", status="404") == 1
    assert value(found, "mlstrata_requests_total", route="/v2/models/{name}/ready",
                 status="200") == 1
    assert value(found, "mlstrata_request_duration_seconds_count", route="/v1/predict") == 4
    assert value(found, "mlstrata_request_records_sum", route="/v1/predict") == 9
    assert value(found, "mlstrata_request_records_count", route="/v1/predict") == 3
    assert value(found, "mlstrata_request_records_sum", route="/invocations") == 4
    assert value(found, "mlstrata_batch_records_sum") == 13  # one call per request, in turn
    assert value(found, "mlstrata_batch_records_count") == 4
    assert value(found, "mlstrata_refusals_total", field=field, rule="type") == 1
    assert total(found, "mlstrata_refusals_total") == 1
    model = holder.current
    labels = {"model": model.name, "version": str(model.version)}
    assert total(found, "mlstrata_predicted_class_total", **labels) == 13
    # the distribution of the nine predictions /v1/predict answered, exactly
    by_class: dict[str, int] = {}
    for answer in answers:
        key = str(answer["prediction"]).lower() if isinstance(answer["prediction"], bool) \
            else str(answer["prediction"])
        by_class[key] = by_class.get(key, 0) + 1
    assert total(predicted, "mlstrata_predicted_class_total", **labels) == 9
    for key, count in by_class.items():
        assert value(predicted, "mlstrata_predicted_class_total", **labels,
                     **{"class": key}) == count
    positive = list(answers[0]["probabilities"])[-1]
    probabilities = [answer["probabilities"][positive] for answer in answers]
    for bound in PROBABILITY_BUCKETS:
        assert value(predicted, "mlstrata_prediction_probability_bucket", **labels,
                     **{"class": positive, "le": str(float(bound))}) \
            == sum(p <= bound for p in probabilities)
    assert value(predicted, "mlstrata_prediction_probability_count", **labels,
                 **{"class": positive}) == 9
    assert value(predicted, "mlstrata_prediction_probability_sum", **labels,
                 **{"class": positive}) == pytest.approx(sum(probabilities))
    package = hashlib.sha256((credit_package / "manifest.json").read_bytes()).hexdigest()
    assert value(found, "mlstrata_model_info", **labels, package=package) == 1


def test_the_exposition_passes_promtool(url: str, holder: ModelHolder,
                                        records: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=url) as http:
        http.post("/v1/predict", json=records[:3])
        http.post("/v1/predict", json=[broken(holder, records[0])[0]])
        text = http.get("/metrics").text
    assert "mlstrata_requests_total" in text
    promtool_check(text)


def test_values_scored_with_a_warning_are_counted_by_field_and_rule(
    url: str, holder: ModelHolder, records: list[dict[str, Any]]
) -> None:
    """``contract infer`` writes observed ranges as warn rules: a value past one is scored."""
    field = next(f for f in holder.current.signature.inputs
                 if f.is_numeric and f.max is not None and "max" in f.warn)
    above = {**records[0], field.name: float(field.max) + 1}
    with httpx.Client(base_url=url) as http:
        answer = http.post("/v1/predict", json=[records[1], above, above])
        assert answer.status_code == 200
        assert [len(p.get("warnings", ())) for p in answer.json()["predictions"]] == [0, 1, 1]
        found = samples(http.get("/metrics").text)
    assert value(found, "mlstrata_warnings_total", field=field.name, rule="max") == 2
    assert total(found, "mlstrata_warnings_total") == 2
    assert total(found, "mlstrata_refusals_total") == 0


def test_metrics_need_no_api_key_and_count_refused_keys(holder: ModelHolder,
                                                        records: list[dict[str, Any]]) -> None:
    with running(create_app(holder, api_key="secret", metrics=ServeMetrics())) as served, \
            httpx.Client(base_url=served) as http:
        assert http.post("/v1/predict", json=records[0]).status_code == 401
        answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert value(samples(answer.text), "mlstrata_requests_total", route="/v1/predict",
                 status="401") == 1


def test_grpc_calls_count_in_the_same_metrics_as_rest(
    holder: ModelHolder, metrics: ServeMetrics, url: str, records: list[dict[str, Any]]
) -> None:
    server = start_grpc_server(holder, port=0, metrics=metrics)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            signature = holder.current.signature
            stub.ModelInfer(_infer_request(signature, records[:3]))
            field = next(f.name for f in signature.inputs
                         if f.logical_type == "float" and not f.nullable)
            with pytest.raises(grpc.RpcError) as refused:  # NaN: a required value is missing
                stub.ModelInfer(_infer_request(signature, [{**records[0], field: math.nan}]))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            stub.ServerLive(pb.ServerLiveRequest())
    finally:
        server.stop(grace=1)
    httpx.post(f"{url}/v1/predict", json=records[:2])
    found = samples(httpx.get(f"{url}/metrics").text)
    assert value(found, "mlstrata_requests_total", route=INFER, status="OK") == 1
    assert value(found, "mlstrata_requests_total", route=INFER, status="INVALID_ARGUMENT") == 1
    assert value(found, "mlstrata_requests_total",
                 route="/inference.GRPCInferenceService/ServerLive", status="OK") == 1
    assert value(found, "mlstrata_request_records_sum", route=INFER) == 3
    assert value(found, "mlstrata_refusals_total", field=field, rule="not_null") == 1
    assert value(found, "mlstrata_batch_records_sum") == 5  # 3 over gRPC, 2 over REST


def _infer_request(signature: Signature, rows: list[dict[str, Any]]) -> pb.ModelInferRequest:
    """An OIP v2 request with one typed tensor per field (FP64, INT64, BOOL; text and dates
    BYTES), one element per record."""
    request = pb.ModelInferRequest(model_name="credit.model")
    for field in signature.inputs:
        datatype, contents = _TENSORS.get(field.logical_type, ("BYTES", "bytes_contents"))
        tensor = request.inputs.add(name=field.name, datatype=datatype, shape=[len(rows)])
        values = [row[field.name] for row in rows]
        getattr(tensor.contents, contents).extend(
            [str(v).encode() for v in values] if datatype == "BYTES" else values)
    return request


_TENSORS = {"float": ("FP64", "fp64_contents"), "integer": ("INT64", "int64_contents"),
            "boolean": ("BOOL", "bool_contents")}


@pytest.mark.slow
def test_two_workers_add_up_and_their_directory_goes_with_the_server(
    credit_package: Path, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    grpc_port = free_port()
    with serve_process(str(credit_package), "--workers", "2", "--grpc-port", str(grpc_port),
                       env={"TMPDIR": str(tmp_path)}, timeout=90) as served:
        assert len(list(tmp_path.glob("mlstrata-metrics-*"))) == 1
        workers, sent = _predict_until_two_workers_answer(served.url, records[:2])
        assert len(workers) == 2, "every request went to one worker"
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            signature = Signature.from_file(credit_package / "signature.json")
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                _infer_request(signature, records[:3]))
        time.sleep(FLUSH_SECONDS * 1.5)  # each worker pushes its counts every FLUSH_SECONDS
        scrapes = [httpx.get(f"{served.url}/metrics", headers={"connection": "close"}).text
                   for _ in range(4)]  # new connections: either worker may answer
    for text in scrapes:
        found = samples(text)
        assert value(found, "mlstrata_requests_total", route="/v1/predict",
                     status="200") == sent
        assert value(found, "mlstrata_request_records_sum", route="/v1/predict") == 2 * sent
        assert value(found, "mlstrata_requests_total", route=INFER, status="OK") == 1
        assert total(found, "mlstrata_predicted_class_total") == 2 * sent + 3
        assert value(found, "mlstrata_model_info", model="credit.model", version="1",
                     package=hashlib.sha256((credit_package / "manifest.json").read_bytes())
                     .hexdigest()) == 1
    promtool_check(scrapes[0])
    assert list(tmp_path.glob("mlstrata-metrics-*")) == []


def _predict_until_two_workers_answer(url: str, body: list[dict[str, Any]]) -> tuple[set[str],
                                                                                     int]:
    """Concurrent bursts of requests, each on a new connection, until two worker processes
    answered (told apart by their request ids' per-process prefix); the prefixes and the count
    of requests sent."""
    def one(_: int) -> str:
        answer = httpx.post(f"{url}/v1/predict", json=body, headers={"connection": "close"})
        assert answer.status_code == 200
        return str(answer.json()["request_id"]).rsplit("-", 1)[0]

    workers: set[str] = set()
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(workers) < 2 and sent < 800:
            workers.update(pool.map(one, range(16)))
            sent += 16
    return workers, sent


def test_the_prediction_logs_written_and_dropped_records_are_reported(
    holder: ModelHolder, records: list[dict[str, Any]], tmp_path: Path
) -> None:
    metrics = ServeMetrics()
    log = open_log(tmp_path / "predictions", capacity=5)  # a request of 6 records cannot queue
    try:
        with running(create_app(holder, metrics=metrics, prediction_log=log)) as served, \
                httpx.Client(base_url=served) as http:
            assert http.post("/v1/predict", json=records[:3]).status_code == 200
            deadline = time.monotonic() + 10
            while log.pending and time.monotonic() < deadline:
                time.sleep(0.01)
            assert http.post("/v1/predict", json=records[:6]).status_code == 200  # not logged
            found = samples(http.get("/metrics").text)
    finally:
        log.close()
    assert value(found, "mlstrata_prediction_log_written_total") == 3
    assert value(found, "mlstrata_prediction_log_dropped_total") == 6


def test_a_regressor_and_a_multiclass_model_show_their_distributions(
    metrics: ServeMetrics, tmp_path: Path
) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    regressor = _Model("price", 2, tmp_path, None)
    metrics.scored(regressor, Predictions(values=np.array([-3.0, 0.05, 0.5, 50.0, 2e6])))
    species = _Model("iris", 1, tmp_path, ["a", "b", "c"])
    metrics.scored(species, Predictions(labels=np.array(["a", "c", "c"], dtype=object),
                                        probabilities=np.array([[0.7, 0.2, 0.1],
                                                                [0.1, 0.3, 0.6],
                                                                [0.0, 0.1, 0.9]]),
                                        classes=("a", "b", "c")))
    found = samples(metrics.exposition().decode())
    price = {"model": "price", "version": "2"}
    assert value(found, "mlstrata_prediction_value_bucket", **price, le="-1.0") == 1
    assert value(found, "mlstrata_prediction_value_bucket", **price, le="0.1") == 2
    assert value(found, "mlstrata_prediction_value_bucket", **price, le="1.0") == 3
    assert value(found, "mlstrata_prediction_value_bucket", **price, le="1e+06") == 4
    assert value(found, "mlstrata_prediction_value_count", **price) == 5
    iris = {"model": "iris", "version": "1"}
    assert value(found, "mlstrata_predicted_class_total", **iris, **{"class": "c"}) == 2
    assert value(found, "mlstrata_prediction_probability_bucket", **iris,
                 **{"class": "b", "le": "0.2"}) == 2
    assert value(found, "mlstrata_prediction_probability_count", **iris, **{"class": "a"}) == 3
    # the model served last is the one the info says is served
    assert value(found, "mlstrata_model_info", **iris, package=hashlib.sha256(b"{}")
                 .hexdigest()) == 1
    assert value(found, "mlstrata_model_info", **price, package=hashlib.sha256(b"{}")
                 .hexdigest()) == 0


class _Model:
    """What the metrics read of a loaded model: name, version, package directory, classes."""

    def __init__(self, name: str, version: int, directory: Path, classes: list[Any] | None):
        self.name, self.version, self.directory = name, version, directory
        self.signature = SimpleNamespace(classes=classes)


def test_the_fast_observer_counts_as_prometheus_client_does() -> None:
    bounds = (0.1, 0.5, 1.0, 10.0)
    rng = np.random.default_rng(7)
    values = np.concatenate([np.array(bounds), rng.normal(1, 3, 500), [np.nextafter(0.5, 1)]])
    reference, batched, single = (Histogram("h", "h", buckets=bounds,
                                            registry=CollectorRegistry()) for _ in range(3))
    tally = Tally()
    one_by_one, at_once = tally.histogram(single, bounds), tally.histogram(batched, bounds)
    for v in values.tolist():
        reference.observe(v)
        one_by_one.observe(v)
    at_once.observe_all(values[:300])  # numpy: more than a few values
    tally.flush()
    at_once.observe_all(values[300:])  # only the change goes in at the next flush
    tally.flush()
    tally.flush()

    def seen(histogram: Histogram) -> list[tuple[str, float]]:
        return [(s.name + str(s.labels), round(s.value, 9))
                for s in histogram.collect()[0].samples if not s.name.endswith("_created")]

    assert seen(batched) == seen(reference)
    assert seen(single) == seen(reference)


def test_each_kind_of_refusal_is_named_by_its_rule() -> None:
    signature = Signature("m@1", "binary", "y", (
        InputField("age", "integer", False, min=18, max=99),
        InputField("city", "text", True, allowed=("a", "b"), strict=True),
        InputField("code", "text", True, pattern="[0-9]{4}")), (),
        (("age", "double"), ("city", "string"), ("code", "string")), ())
    sent = [{"age": 12, "city": "a", "code": "1234"}, {"age": 120, "city": "z", "code": "x"},
            {"age": None, "city": "a", "code": None}, {"age": "old", "city": 3, "code": None},
            {"city": "a", "code": None}]
    _, problems = columns_from_records(signature, sent)
    rules = {(p.row, p.field): problem_rule(p) for p in problems}
    assert rules == {(0, "age"): "min", (1, "age"): "max", (1, "city"): "allowed",
                     (1, "code"): "pattern", (2, "age"): "not_null", (3, "age"): "type",
                     (3, "city"): "type", (4, "age"): "missing"}
