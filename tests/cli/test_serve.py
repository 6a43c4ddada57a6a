"""``mlstrata serve``: help, one-line errors, and real server processes from a path or a name."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import serve_process, valid_records


def test_help_lists_the_flags(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("serve", "--help")
    assert result.code == 0
    for flag in ("--port", "--host", "--workers", "--api-key-env", "--max-body-bytes",
                 "--reload-interval", "--log-requests"):
        assert flag in result.out


def test_a_missing_api_key_variable_is_one_line(cli, credit_package: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("serve", credit_package, "--api-key-env", "MLSTRATA_TEST_NO_SUCH_KEY")
    assert result.code == 2
    assert "the environment variable MLSTRATA_TEST_NO_SUCH_KEY is not set" in result.err
    assert "\n" not in result.err.strip()


def test_an_unknown_model_outside_a_workspace_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("serve", "credit@champion", cwd=tmp_path)
    assert result.code == 2
    assert "no mlstrata workspace" in result.err and "\n" not in result.err.strip()


@pytest.mark.slow
def test_serves_a_package_path_with_two_workers_and_a_key(credit_package: Path) -> None:
    record = valid_records(credit_package, rows=1)[0]
    env = {"MLSTRATA_TEST_KEY": "k-123"}
    with serve_process(str(credit_package), "--workers", "2", "--api-key-env",
                       "MLSTRATA_TEST_KEY", env=env) as served:
        refused = httpx.post(f"{served.url}/v1/predict", json=record)
        answer = httpx.post(f"{served.url}/v1/predict", json=record,
                            headers={"Authorization": "Bearer k-123"})
    assert refused.status_code == 401
    assert answer.status_code == 200
    assert answer.json()["predictions"][0]["prediction"] in (0, 1)


def test_serves_a_workspace_model_by_name(credit_package: Path) -> None:
    project = credit_package.parent.parent
    record = valid_records(credit_package, rows=1)[0]
    with serve_process("credit.model", "--reload-interval", "0.2", cwd=project) as served:
        answer = httpx.post(f"{served.url}/invocations", json={"dataframe_records": [record]})
        metadata = httpx.get(f"{served.url}/v2/models/credit.model").json()
    assert answer.status_code == 200 and json.loads(answer.text)["predictions"][0] in (0, 1)
    assert metadata["versions"] == ["1"]
    assert f"serving credit.model version 1 from {credit_package}" in served.output
