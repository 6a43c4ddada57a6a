"""``mlstrata serve``: help, one-line errors, and real server processes from a path or a name."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.serve.conftest import serve_process, valid_records


def test_help_lists_the_flags(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("serve", "--help")
    assert result.code == 0
    for flag in ("--port", "--host", "--workers", "--api-key-env", "--max-body-bytes",
                 "--reload-interval", "--log-requests", "--grpc-port", "--precomputed"):
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


def test_serves_rest_grpc_and_precomputed_lookups_together(credit_package: Path,
                                                           tmp_path: Path) -> None:
    import tritonclient.grpc as grpcclient

    from mlstrata.batch.precompute import precompute
    from tests.serve.conftest import free_port

    project = credit_package.parent.parent
    database = tmp_path / "predictions.db"
    precompute(credit_package, str(project / "data" / "credit.csv"), key="application_id",
               db_url=f"sqlite:///{database}")
    key = valid_key(project)
    grpc_port = free_port()
    with serve_process(str(credit_package), "--grpc-port", str(grpc_port), "--precomputed",
                       f"sqlite:///{database}") as served:
        stored = httpx.get(f"{served.url}/v1/precomputed/{key}")
        unknown = httpx.get(f"{served.url}/v1/precomputed/NO-SUCH-KEY")
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        live, metadata = client.is_server_live(), client.get_model_metadata("credit.model")
        client.close()
    assert stored.status_code == 200
    assert stored.json()["key"] == key and stored.json()["model"] == "credit.model"
    assert unknown.status_code == 404
    assert live and metadata.name == "credit.model"
    assert "gRPC (Open Inference Protocol v2) on 127.0.0.1" in served.output


def test_serves_precomputed_predictions_without_a_model(credit_package: Path,
                                                        tmp_path: Path) -> None:
    from mlstrata.batch.precompute import precompute

    project = credit_package.parent.parent
    database = f"sqlite:///{tmp_path / 'predictions.db'}"
    precompute(credit_package, str(project / "data" / "credit.csv"), key="application_id",
               db_url=database)
    with serve_process("--precomputed", database) as served:
        stored = httpx.get(f"{served.url}/v1/precomputed/{valid_key(project)}")
        model_route = httpx.get(f"{served.url}/v2/models/credit.model")
    assert stored.status_code == 200 and stored.json()["model"] == "credit.model"
    assert model_route.status_code == 404


def test_serve_needs_a_model_or_a_precomputed_store(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("serve")
    assert result.code == 2
    assert "give a MODEL to serve" in result.err and "--precomputed URL" in result.err


def valid_key(project: Path) -> str:
    """An application id from the project's data."""
    return str(pd.read_csv(project / "data" / "credit.csv", nrows=1)["application_id"][0])
