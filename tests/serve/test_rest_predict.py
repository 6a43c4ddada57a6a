"""``POST /v1/predict``, the API key, the body limit, routing errors and the precomputed store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mlstrata.serve.app import create_app
from mlstrata.serve.holder import ModelHolder

from .conftest import running


def test_one_record_answers_a_list_of_one(server: str, holder: ModelHolder,
                                          records: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{server}/v1/predict", json=records[0])
    assert response.status_code == 200
    answer = response.json()
    assert (answer["model"], answer["version"]) == ("credit.model", 1)
    assert answer["request_id"] == response.headers["x-request-id"]
    again = httpx.post(f"{server}/v1/predict", json=records[0]).json()["request_id"]
    assert again != answer["request_id"]
    assert again.split("-")[0] == answer["request_id"].split("-")[0]  # same server process
    assert answer["predictions"] == holder.current.predict_records(records[:1]).to_records()
    assert set(answer["predictions"][0]["probabilities"]) == {"0", "1"}


def test_a_list_of_records_and_the_clients_request_id(server: str, holder: ModelHolder,
                                                      records: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{server}/v1/predict", json=records,
                          headers={"X-Request-Id": "order-42"})
    assert response.headers["x-request-id"] == "order-42"
    assert response.json()["request_id"] == "order-42"
    assert response.json()["predictions"] == holder.current.predict_records(records).to_records()


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{bad json", 400, "malformed JSON: unexpected character"),
    (b"", 400, "the request body is empty"),
    (b"[]", 400, "the list of records is empty"),
    (b"42", 400, "send one record (a JSON object) or a list of records"),
    (b'[{"age": 1}, 7]', 422, "record 1, field '*': expected an object"),
])
def test_malformed_bodies(server: str, body: bytes, status: int, message: str) -> None:
    response = httpx.post(f"{server}/v1/predict", content=body,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]


@pytest.mark.parametrize(("change", "message"), [
    ({"age": "forty"}, "record 0, field 'age': expected a number, got text 'forty'"),
    ({"loan_amount": 10.5}, "record 0, field 'loan_amount': expected an integer, got 10.5"),
    ({"term_months": 18}, "record 0, field 'term_months': 18 is not an allowed value"),
    ({"application_date": "yesterday"}, "record 0, field 'application_date'"),
    ({"region": None}, "record 0, field 'region': required"),
])
def test_invalid_values_are_422_naming_the_field(server: str, records: list[dict[str, Any]],
                                                 change: dict[str, Any], message: str) -> None:
    response = httpx.post(f"{server}/v1/predict", json={**records[0], **change})
    assert response.status_code == 422
    answer = response.json()
    assert message in answer["error"]
    assert [p["field"] for p in answer["problems"]] == list(change)


def test_a_missing_field_is_named(server: str, records: list[dict[str, Any]]) -> None:
    record = {k: v for k, v in records[0].items() if k != "purpose"}
    response = httpx.post(f"{server}/v1/predict", json=record)
    assert response.status_code == 422
    assert "field 'purpose': missing" in response.json()["error"]


def test_wrong_content_type_is_415(server: str) -> None:
    response = httpx.post(f"{server}/v1/predict", content=b"age=3",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert "send application/json" in response.json()["error"]


def test_bodies_over_the_limit_are_413_by_header_and_by_bytes(server: str) -> None:
    big = b"[" + b"{}," * 100_000 + b"{}]"
    response = httpx.post(f"{server}/v1/predict", content=big)
    assert response.status_code == 413
    assert "at most 200000" in response.json()["error"]

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(100):
            yield b"{}," * 1000
        yield b"{}]"

    response = httpx.post(f"{server}/v1/predict", content=chunks())
    assert response.status_code == 413
    assert "larger than 200000 bytes" in response.json()["error"]


@pytest.mark.parametrize(("method", "path", "status", "message"), [
    ("GET", "/v1/nothing", 404, "no route '/v1/nothing'"),
    ("GET", "/v1/predict", 405, "GET is not allowed on /v1/predict; use POST"),
    ("GET", "/docs/index.j2", 404, "no documentation file 'index.j2'"),
    ("GET", "/v1/precomputed/abc", 404, "no precomputed store"),
])
def test_routing_errors(server: str, method: str, path: str, status: int, message: str) -> None:
    response = httpx.request(method, server + path)
    assert response.status_code == status
    assert message in response.json()["error"]


class _Store:
    """A precomputed store of one key; any other key raises (a bug in the store)."""

    def lookup(self, key: str) -> dict[str, Any] | None:
        if key == "a/1":
            return {"key": key, "prediction": 1}
        if key == "boom":
            raise RuntimeError("store bug")
        return None


def test_precomputed_lookup_and_a_store_bug_is_500_json(holder: ModelHolder,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with running(create_app(holder, precomputed=_Store())) as url:
        assert httpx.get(f"{url}/v1/precomputed/a/1").json() == {"key": "a/1", "prediction": 1}
        missing = httpx.get(f"{url}/v1/precomputed/zz")
        assert missing.status_code == 404
        assert "no precomputed prediction for key 'zz'" in missing.json()["error"]
        with caplog.at_level(logging.ERROR, logger="mlstrata.serve"):
            bug = httpx.get(f"{url}/v1/precomputed/boom")
    assert bug.status_code == 500
    assert "internal server error" in bug.json()["error"]
    assert "store bug" in caplog.text


def test_precomputed_only_serves_lookups_and_health(records: list[dict[str, Any]]) -> None:
    with running(create_app(None, precomputed=_Store())) as url:
        assert httpx.get(f"{url}/v1/precomputed/a/1").json()["prediction"] == 1
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200
        for method, path in (("POST", "/v1/predict"), ("POST", "/invocations"),
                             ("GET", "/v2/models/credit.model"), ("GET", "/docs")):
            answer = httpx.request(method, url + path, json=records[0])
            assert answer.status_code == 404, path
            assert "no route" in answer.json()["error"]


def test_api_key_guards_all_but_health_and_docs(holder: ModelHolder,
                                                records: list[dict[str, Any]]) -> None:
    with running(create_app(holder, api_key="s3cret")) as url:
        for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health", "/docs",
                     "/openapi.json"):
            assert httpx.get(url + path).status_code == 200, path
        missing = httpx.post(f"{url}/v1/predict", json=records[0])
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "needs an API key" in missing.json()["error"]
        for headers in ({"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cre"},
                        {"Authorization": "Basic s3cret"}):
            assert httpx.post(f"{url}/v1/predict", json=records[0],
                              headers=headers).status_code == 401
        for headers in ({"Authorization": "Bearer s3cret"}, {"X-API-Key": "s3cret"}):
            assert httpx.post(f"{url}/v1/predict", json=records[0],
                              headers=headers).status_code == 200
        assert httpx.get(f"{url}/v2/models/credit.model").status_code == 401
