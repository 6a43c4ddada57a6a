"""The OpenAPI document comes from the signature and says what the server accepts; Swagger UI
works offline; schemathesis with all its checks finds no request the document and the server
disagree on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from mlstrata.serve.app import create_app
from mlstrata.serve.holder import ModelHolder

from .conftest import running

# OIP tensors must name every input once and agree in length: JSON Schema has no form for that
# (the document says it in words), so a schema-valid infer request may be refused with a 400.
SCHEMATHESIS_CONFIG = """\
[[operations]]
include-path-regex = "/infer$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]
"""
# Without --strict, warn rules (the inferred ranges) are no constraints: a schema-valid record
# may hold 1e308, which the model answers NaN for — a 422 the document cannot rule out, since no
# JSON Schema says which combinations of numbers a model cannot score. Such a 422 is accepted
# only when every problem it names is the model's NaN or infinity (the hook's own check).
LENIENT_CONFIG = """\
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "422"]

[[operations]]
include-path-regex = "/infer$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "422"]
"""
NAN_REFUSALS_ONLY = """\
import schemathesis


@schemathesis.check
def only_nan_answers_refuse_valid_data(ctx, response, case):
    meta = case.meta
    if response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
        return None
    problems = response.json().get("problems") or []
    if not problems or not all("the model answers" in p["message"] for p in problems):
        raise AssertionError("a schema-valid request was refused for another reason than a NaN "
                             "answer: " + response.text[:300])
    return None
"""


@pytest.fixture(scope="module")
def bounded_server(uncontracted_packages: tuple[Path, Path]) -> Iterator[str]:
    """A model trained with no contract inferred (text, float, integer inputs, all nullable)."""
    holder = ModelHolder(lambda: uncontracted_packages[0])
    with running(create_app(holder, max_body_bytes=200_000)) as url:
        yield url


@pytest.fixture(scope="module")
def strict_bounded_server(uncontracted_packages: tuple[Path, Path]) -> Iterator[str]:
    """The same model served strict: its training ranges (warn rules) refuse."""
    holder = ModelHolder(lambda: uncontracted_packages[0], strict=True)
    with running(create_app(holder, max_body_bytes=200_000)) as url:
        yield url


@pytest.fixture(scope="module")
def strict_server(credit_package: Path) -> Iterator[str]:
    """The credit package served strict (``mlstrata serve --strict``)."""
    with running(create_app(ModelHolder(lambda: credit_package, strict=True),
                            max_body_bytes=200_000)) as url:
        yield url


def test_record_schema_carries_the_contract(server: str) -> None:
    document = httpx.get(f"{server}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    record = document["components"]["schemas"]["Record"]
    fields = record["properties"]
    assert len(record["required"]) == 13
    assert fields["term_months"] == {"type": "integer", "enum": [12, 24, 36, 48, 60]}
    assert fields["interest_rate"] == {  # an inferred range warns: words, not a constraint
        "type": "number", "description": "scored with a warning when below 1.47 or above 13.77"}
    assert fields["region"]["type"] == "string" and "enum" not in fields["region"]
    assert "not one of andalucia, aragon" in fields["region"]["description"]
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


def test_the_document_no_longer_calls_refused_requests_valid(bounded_server: str,
                                                             strict_bounded_server: str) -> None:
    """An OIP tensor with ``shape: []`` or no element, a null element, an unknown output, an
    empty CSV body or one without records: each used to be valid by the document and 400."""
    document = httpx.get(f"{strict_bounded_server}/openapi.json").json()
    request = document["components"]["schemas"]["InferenceRequest"]
    tensor = request["properties"]["inputs"]["items"]["oneOf"][9]  # home_ownership, BYTES
    assert tensor["properties"]["name"]["enum"] == ["home_ownership"]
    valid = {"name": "home_ownership", "datatype": "BYTES", "shape": [2], "data": ["rent", ""]}
    assert jsonschema_rs.is_valid(tensor, valid)
    for change in ({"shape": []}, {"shape": [0]}, {"shape": [1, 1, 1]}, {"data": []},
                   {"data": [None]}):
        assert not jsonschema_rs.is_valid(tensor, {**valid, **change}), change
    outputs = request["properties"]["outputs"]
    assert outputs["items"]["properties"]["name"]["enum"] == ["label", "probabilities"]
    assert request["properties"]["inputs"]["minItems"] == 13
    csv = document["paths"]["/invocations"]["post"]["requestBody"]["content"]["text/csv"]
    pattern = re.compile(csv["schema"]["pattern"])
    header = ",".join(document["components"]["schemas"]["Record"]["required"])
    assert not pattern.search("") and not pattern.search(header + "\n")
    assert pattern.search(header + "\n40,30000.5,5,10000,36,5.2,0.2,3,0,rent,car,madrid,"
                          "2023-01-05\n,,,,,,,,,,,,\n")
    above = header + "\n4000,30000.5,5,10000,36,5.2,0.2,3,0,rent,car,madrid,2023-01-05"
    assert not pattern.search(above)  # age above its (training) maximum: refused when strict
    lenient = httpx.get(f"{bounded_server}/openapi.json").json()["paths"]["/invocations"][
        "post"]["requestBody"]["content"]["text/csv"]["schema"]["pattern"]
    assert re.compile(lenient).search(above)  # else scored, with a warning


def test_a_package_without_contract_documents_its_training_ranges(
        bounded_server: str, strict_bounded_server: str) -> None:
    fields = httpx.get(f"{bounded_server}/openapi.json").json()["components"]["schemas"][
        "Record"]["properties"]
    assert fields["income"]["type"] == "number" and fields["income"]["nullable"]
    assert fields["income"]["description"].startswith("scored with a warning when below ")
    assert "maximum" not in fields["income"] and "maximum" not in fields["age"]
    assert fields["region"] == {"type": "string", "nullable": True}
    strict = httpx.get(f"{strict_bounded_server}/openapi.json").json()["components"][
        "schemas"]["Record"]["properties"]
    assert 0 <= strict["income"]["minimum"] < strict["income"]["maximum"] < 1e7
    assert strict["age"]["type"] == "integer" and "maximum" in strict["age"]


def _schemathesis(url: str, cwd: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    (cwd / "schemathesis.toml").write_text(SCHEMATHESIS_CONFIG if strict else LENIENT_CONFIG)
    (cwd / "nan_refusals_only.py").write_text(NAN_REFUSALS_ONLY)
    return subprocess.run(
        [str(Path(sys.executable).with_name("st")), "--config-file", "schemathesis.toml", "run",
         f"{url}/openapi.json", "--max-examples", "25", "--mode", "all",
         "--generation-deterministic", "--checks", "all"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(cwd / "nan_refusals_only.py")})


@pytest.mark.slow
@pytest.mark.parametrize("which", ["contract", "no contract", "contract, strict",
                                   "no contract, strict"])
def test_schemathesis_with_all_checks(which: str, request: pytest.FixtureRequest,
                                      tmp_path: Path) -> None:
    """Positive and negative requests from the document, every check: no server error, answers
    as documented, valid requests accepted, invalid ones refused — on the credit model (a
    contract, dates with a minimum) and on a model trained with no contract (text, float,
    integer and missing inputs, the training ranges as its warn rules); served strict, the
    document holds every rule and a valid request is never refused."""
    strict = which.endswith("strict")
    fixture = ("strict_" if strict else "") + ("server" if which.startswith("contract")
                                              else "bounded_server")
    url: Any = request.getfixturevalue(fixture)
    run = _schemathesis(url, tmp_path, strict)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "passed" in run.stdout and "failed" not in run.stdout
