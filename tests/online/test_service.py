"""The live service of an online model (``mlstrata serve --online NAME``) on a real uvicorn
server on 127.0.0.1: predict, learn by request id or with features, the answers to bad
input, OIP v2, metrics, and the prediction log."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mlstrata.config import GuardConfig
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.online.guard import open_guarded
from mlstrata.online.logged import logged_model
from mlstrata.online.recovery import open_online, read_spec
from mlstrata.online.service import OnlineService, ServedModel, create_online_app
from mlstrata.predlog import open_log
from mlstrata.predlog.reading import read_lines
from mlstrata.workspace import Workspace

from ..serve.conftest import running
from . import _stream


@contextlib.contextmanager
def online_server(ws: Workspace, log: Path | None = None, guard: GuardConfig | None = None,
                  api_key: str | None = None) -> Iterator[tuple[str, OnlineService]]:
    """The service of ``loans`` served in this process (guarded with ``guard``); closed
    (checkpoint, log) after."""
    policy = CheckpointPolicy(events=100)
    model: ServedModel
    if guard is not None:
        model, _ = open_guarded(ws, "loans", policy=policy, settings=guard)
    else:
        model, _ = open_online(ws, "loans", policy=policy)
    artifact, _ = read_spec(ws, "loans")
    service = OnlineService(model, logged_model(model.spec, artifact),
                            open_log(log) if log is not None else None)
    try:
        with running(create_online_app(service, api_key=api_key)) as url:
            yield url, service
    finally:
        service.close()


def _features(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "paid"}


def test_a_label_by_request_id_changes_the_next_prediction(online_ws: Workspace) -> None:
    rows = _stream.rows(60, seed=3)
    with online_server(online_ws) as (url, service), httpx.Client(base_url=url) as client:
        first = client.post("/v1/predict", json=_features(rows[0]))
        assert first.status_code == 200
        body = first.json()
        assert first.headers["x-request-id"] == body["request_id"]
        before = body["predictions"][0]["probabilities"]
        learnt = client.post("/v1/learn", json={"request_id": body["request_id"],
                                                "label": rows[0]["paid"]})
        assert learnt.status_code == 200, learnt.text
        assert learnt.json()["accepted"] == 1 and learnt.json()["last_event"] == 1
        after = client.post("/v1/predict", json=_features(rows[0])).json()
        assert after["predictions"][0]["probabilities"] != before
        for row in rows[1:]:  # features with their label, the target's name or "label"
            sent = {"record": _features(row), "label": row["paid"]} if len(row) % 2 else row
            assert client.post("/v1/learn", json=sent).status_code == 200
        assert service.model.seq == 60


def test_bad_input_gets_a_clear_4xx_and_learns_nothing(online_ws: Workspace) -> None:
    row = _stream.rows(1)[0]
    with online_server(online_ws) as (url, service), httpx.Client(base_url=url) as client:
        malformed = client.post("/v1/learn", content=b'{"amount": ',
                                headers={"content-type": "application/json"})
        assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]
        unknown = client.post("/v1/learn", json={"request_id": "nope", "label": "yes"})
        assert unknown.status_code == 404 and "'nope'" in unknown.json()["error"]
        request_id = client.post("/v1/predict", json=_features(row)).json()["request_id"]
        outside = client.post("/v1/learn", json={"request_id": request_id, "label": "maybe"})
        assert outside.status_code == 422
        assert outside.json()["problems"][0]["field"] == "paid"
        assert outside.json()["problems"][0]["rule"] == "allowed"
        # refused, so not labelled: the right label is still taken, once
        assert client.post("/v1/learn", json={"request_id": request_id,
                                              "label": "yes"}).status_code == 200
        again = client.post("/v1/learn", json={"request_id": request_id, "label": "no"})
        assert again.status_code == 409 and "labelled already" in again.json()["error"]
        broken = client.post("/v1/learn", json=[row, {**row, "amount": -5}])
        assert broken.status_code == 422
        problem = broken.json()["problems"][0]
        assert (problem["record"], problem["field"], problem["rule"]) == (1, "amount", "min")
        refused_predict = client.post("/v1/predict", json={**_features(row), "amount": -1})
        assert refused_predict.status_code == 422
        assert client.post("/v1/learn", json=[]).status_code == 400
        assert client.get("/v1/learn").status_code == 405
        metrics = client.get("/metrics").text
    assert service.model.seq == 1  # only the one accepted label
    assert 'mlstrata_online_learns_total{model="loans",outcome="accepted"} 1' in metrics
    assert 'mlstrata_online_learns_total{model="loans",outcome="refused"} 2' in metrics
    assert 'mlstrata_requests_total{route="/v1/learn",status="409"} 1.0' in metrics


def test_oip_v2_metadata_infer_and_health(online_ws: Workspace) -> None:
    rows = _stream.rows(3, seed=5)
    inputs = [{"name": name, "datatype": "BYTES", "shape": [3],
               "data": [row[name] for row in rows]}
              for name in ("amount", "lines", "region", "opened")]
    with online_server(online_ws) as (url, _), httpx.Client(base_url=url) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2/models/loans/ready").json()["ready"] is True
        metadata = client.get("/v2/models/loans").json()
        assert [i["name"] for i in metadata["inputs"]] == ["amount", "lines", "region",
                                                           "opened"]
        assert client.get("/v2/models/other").status_code == 404
        answer = client.post("/v2/models/loans/infer", json={"id": "oip-1", "inputs": inputs})
        assert answer.status_code == 200, answer.text
        outputs = {o["name"]: o for o in answer.json()["outputs"]}
        assert outputs["probabilities"]["shape"] == [3, 2]
        direct = client.post("/v1/predict", json=[_features(r) for r in rows]).json()
        assert outputs["probabilities"]["data"] == [
            p for prediction in direct["predictions"]
            for p in prediction["probabilities"].values()]
        learnt = client.post("/v1/learn", json={"request_id": "oip-1", "record": 2,
                                                "label": rows[2]["paid"]})
        assert learnt.status_code == 200


def test_predictions_and_labels_go_to_the_prediction_log(online_ws: Workspace,
                                                         tmp_path: Path) -> None:
    rows = _stream.rows(4, seed=7)
    log = tmp_path / "predictions"
    with online_server(online_ws, log) as (url, _), httpx.Client(base_url=url) as client:
        predicted = client.post("/v1/predict", json=[_features(r) for r in rows[:2]]).json()
        client.post("/v1/learn", json={"request_id": predicted["request_id"], "record": 1,
                                       "label": rows[1]["paid"]})
        learnt = client.post("/v1/learn", json=rows[2]).json()
    lines = read_lines(log, model="loans")
    feedback = read_lines(log, model="loans", feedback=True)
    by_id = {(line["request_id"], line["record"]): line for line in lines}
    first = by_id[(predicted["request_id"], 0)]
    assert first["source"] == "rest" and first["inputs"]["region"] == rows[0]["region"]
    assert first["latency_ms"] > 0
    assert first["prediction"] == predicted["predictions"][0]["label"]
    assert set(first["probabilities"]) == {"no", "yes"}
    assert (learnt["request_id"], 0) in by_id  # a learn with features: its prediction too
    labels = {(line["request_id"], line["record"]): line["label"] for line in feedback}
    assert labels == {(predicted["request_id"], 1): rows[1]["paid"],
                      (learnt["request_id"], 0): rows[2]["paid"]}


def test_a_guarded_model_serves_and_reports_its_guard(online_ws: Workspace) -> None:
    rows = _stream.rows(40, seed=17)
    with online_server(online_ws, guard=GuardConfig(enabled=True, window=10)) as (url, service), \
            httpx.Client(base_url=url) as client:
        assert client.post("/v1/learn", json=rows).json()["accepted"] == 40
        predicted = client.post("/v1/predict", json=_features(rows[0]))
        assert predicted.status_code == 200
        metrics = client.get("/metrics").text
    assert service.model.seq == 40
    assert 'mlstrata_online_guard_rollbacks_total{model="loans"} 0' in metrics
    assert 'mlstrata_online_guard_live_window_score{model="loans"}' in metrics


def test_one_record_gets_the_same_features_as_in_a_batch(online_ws: Workspace) -> None:
    from mlstrata.online.features import featurize

    _, spec = read_spec(online_ws, "loans")
    rows = _stream.rows(300, seed=23) + [{**_stream.rows(1)[0], "opened": None}]
    batch = featurize(spec, rows)
    assert [featurize(spec, [row])[0] for row in rows] == batch
    assert [featurize(spec, [row])[0] for row in rows] == batch  # from the cache


def test_an_api_key_guards_everything_but_health_and_metrics(online_ws: Workspace) -> None:
    row = _stream.rows(1)[0]
    with online_server(online_ws, api_key="s3cret") as (url, _), \
            httpx.Client(base_url=url) as client:
        assert client.post("/v1/predict", json=_features(row)).status_code == 401
        assert client.post("/v1/learn", json=row).status_code == 401
        assert client.post("/v1/learn", json=row,
                           headers={"x-api-key": "wrong"}).status_code == 401
        assert client.post("/v1/learn", json=row,
                           headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
