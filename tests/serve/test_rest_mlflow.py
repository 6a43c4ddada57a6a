"""``POST /invocations`` in every shape MLflow's documentation gives, and its errors."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import requests

from mlstrata.serve.holder import ModelHolder


def _split(records: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(records[0])
    return {"columns": columns, "index": list(range(len(records))),
            "data": [[record[c] for c in columns] for record in records]}


def _columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [record[name] for record in records] for name in records[0]}


@pytest.mark.parametrize("shape", [
    lambda r: {"dataframe_split": _split(r)},
    lambda r: {"dataframe_records": r},
    lambda r: {"instances": r},
    lambda r: {"inputs": _columns(r)},
    lambda r: {"inputs": r},
    lambda r: {"dataframe_records": r, "params": {}},
], ids=["dataframe_split", "dataframe_records", "instances", "inputs-columns", "inputs-records",
        "with-params"])
def test_json_shapes_answer_the_runtime_labels(server: str, holder: ModelHolder,
                                               records: list[dict[str, Any]], shape: Any) -> None:
    response = requests.post(f"{server}/invocations", json=shape(records), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": holder.current.predict_records(records).predictions}


def test_csv_answers_the_same(server: str, holder: ModelHolder,
                              records: list[dict[str, Any]]) -> None:
    csv = pd.DataFrame(records).to_csv(index=False)
    response = requests.post(f"{server}/invocations", data=csv.encode(),
                             headers={"Content-Type": "text/csv; charset=utf-8"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == holder.current.predict_records(records).predictions


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b'{"dataframe_records": [', "application/json", 400, "malformed JSON"),
    (b'{"records": []}', "application/json", 400, "exactly one of the keys"),
    (b'{"inputs": {}, "instances": []}', "application/json", 400, "exactly one of the keys"),
    (b'{"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}', "application/json", 400,
     "'dataframe_split.data' row 0 must be a list of 1 values"),
    (b'{"dataframe_records": []}', "application/json", 400, "is empty"),
    (b'{"dataframe_records": [{}], "params": [1]}', "application/json", 400,
     "'params' must be an object"),
    (b'{"inputs": {"age": 3}}', "application/json", 400, "'inputs.age' must be a list"),
    (b'{"instances": [[1, 2]]}', "application/json", 422, "record 0, field '*': expected an "
     "object"),
    (b"age,income\n1", "text/csv", 400, "CSV line 2 has 1 cells; the header has 2"),
    (b"age,income\n", "text/csv", 400, "needs a header line"),
    (b"age\n\xff\n", "text/csv", 400, "not UTF-8"),
    (b"<xml/>", "application/xml", 415, "'application/xml' is not supported"),
    (b"{}", "application/json; charset=latin-1", 415, "only charset=utf-8"),
])
def test_mistakes_answer_4xx_with_mlflow_error_keys(server: str, body: bytes, content_type: str,
                                                    status: int, message: str) -> None:
    response = requests.post(f"{server}/invocations", data=body,
                             headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == status
    answer = response.json()
    assert message in answer["error"]
    assert answer["error_code"] == "BAD_REQUEST" and answer["message"] == answer["error"]


def test_invalid_values_name_record_and_field(server: str, records: list[dict[str, Any]]) -> None:
    bad = [records[0], {**records[1], "term_months": 18}]
    response = requests.post(f"{server}/invocations", json={"dataframe_records": bad}, timeout=10)
    assert response.status_code == 422
    assert response.json()["problems"] == [{"record": 1, "field": "term_months",
                                            "rule": "allowed", "message":
                                            response.json()["problems"][0]["message"]}]
    assert "record 1, field 'term_months': 18 is not an allowed value" in \
        response.json()["error"]


def test_csv_with_a_missing_column_names_it(server: str, records: list[dict[str, Any]]) -> None:
    csv = pd.DataFrame(records).drop(columns=["region"]).to_csv(index=False)
    response = requests.post(f"{server}/invocations", data=csv,
                             headers={"Content-Type": "text/csv"}, timeout=10)
    assert response.status_code == 422
    assert "field 'region': missing" in response.json()["error"]


@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_mlflow_health_checks(server: str, path: str) -> None:
    assert requests.get(server + path, timeout=10).status_code == 200
