"""The OpenAPI document comes from the signature; Swagger UI works offline; schemathesis finds
no server error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def test_record_schema_carries_the_contract(server: str) -> None:
    document = httpx.get(f"{server}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    record = document["components"]["schemas"]["Record"]
    fields = record["properties"]
    assert len(record["required"]) == 13
    assert fields["term_months"] == {"type": "integer", "enum": [12, 24, 36, 48, 60]}
    assert fields["interest_rate"] == {"type": "number", "minimum": 1.47, "maximum": 13.77}
    assert fields["region"]["type"] == "string" and "madrid" in fields["region"]["enum"]
    assert fields["application_date"]["format"] == "date"
    assert {"/v1/predict", "/invocations", "/v2/models/{model_name}/infer",
            "/v2/health/ready"} <= set(document["paths"])
    name = document["paths"]["/v2/models/{model_name}"]["get"]["parameters"][0]
    assert name["schema"]["enum"] == ["credit.model"]


def test_swagger_ui_is_served_from_local_files(server: str) -> None:
    page = httpx.get(f"{server}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "SwaggerUIBundle" in page.text and "credit.model v1" in page.text
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        response = httpx.get(f"{server}/docs/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert len(response.content) > 10_000


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(server: str, tmp_path: Path) -> None:
    """Positive and negative requests from the schema; every check but "valid data is
    accepted" (a date's minimum, and tensors agreeing in length, have no JSON Schema form)."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run", f"{server}/openapi.json",
         "--max-examples", "25", "--mode", "all", "--generation-deterministic",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "passed" in run.stdout and "not_a_server_error" not in run.stdout
