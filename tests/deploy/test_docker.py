"""``mlstrata deploy docker``: the build context, hadolint, and the proof that the image serves —
the Dockerfile's own install and entry point run in a fresh venv (no mlstrata installed)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import yaml

from mlstrata.deploy.docker import BASE_IMAGE, PROMETHEUS_IMAGE, DockerContext, render_docker
from mlstrata.deploy.output import DeployError
from mlstrata.runtime.model import load
from mlstrata.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc

from .._processes import free_port
from ..serve._tensors import typed_infer_request
from ..serve.conftest import valid_records
from ._dockerfile import Replayed, parse

MODEL = "credit.model"
TRAINING_STACK = ("sklearn", "pandas", "mlflow", "duckdb", "pyarrow", "scipy", "skl2onnx",
                  "lightgbm", "xgboost", "typer", "rich", "pydantic", "jinja2", "yaml")


# --- the context as text ---------------------------------------------------------------------

def test_the_context_holds_what_the_dockerfile_copies(docker_context: DockerContext) -> None:
    out = docker_context.out
    assert {"Dockerfile", ".dockerignore", "constraints.txt", "docker-compose.yml",
            "prometheus.yml", "README.md", "model/manifest.json", "model/model.onnx",
            f"wheels/{next(out.glob('wheels/*.whl')).name}"} <= set(docker_context.files)
    manifest = json.loads((out / "model/manifest.json").read_text())
    assert sorted(p.name for p in (out / "model").iterdir()) == sorted(
        [*manifest["files"], "manifest.json"])
    ignored = (out / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and "!model/**" in ignored and "!wheels/*.whl" in ignored


def test_hadolint_finds_nothing(docker_context: DockerContext) -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run([str(hadolint), "--no-color", str(docker_context.out / "Dockerfile")],
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_hadolint_would_catch_a_regression(docker_context: DockerContext,
                                           tmp_path: Path) -> None:
    """The lint is real: a floating base and a server running as root are reported."""
    text = (docker_context.out / "Dockerfile").read_text()
    bad = tmp_path / "Dockerfile"
    bad.write_text(text.replace("FROM ${PYTHON_IMAGE} AS builder", "FROM python:latest AS builder")
                   .replace("USER 10001:10001", "USER root"))
    done = subprocess.run([str(Path(sys.executable).with_name("hadolint")), "--no-color",
                           str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "DL3007" in done.stdout and "DL3002" in done.stdout


def test_the_dockerfile_is_multi_stage_pinned_non_root_and_exec_form(
        docker_context: DockerContext) -> None:
    args, stages = parse((docker_context.out / "Dockerfile").read_text())
    assert args == {"PYTHON_IMAGE": BASE_IMAGE}
    assert "-slim-bookworm@sha256:" in BASE_IMAGE
    builder, final = stages
    assert (builder.base, builder.name, final.base, final.name) == (BASE_IMAGE, "builder",
                                                                    BASE_IMAGE, None)
    [user] = final.all("USER")
    assert user.arguments == "10001:10001"
    [setup] = [i.arguments for i in final.all("RUN") if i.exec_form is None]
    assert "--uid 10001" in setup and "--gid 10001" in setup
    assert "install -d -o 10001 -g 10001 -m 0750 /var/lib/mlstrata /var/lib/mlstrata/predictions" \
        in setup
    copies = [i.arguments for i in final.all("COPY")]
    assert copies == ["--from=builder ${MLSTRATA_VENV} ${MLSTRATA_VENV}",
                      "model/ ${MLSTRATA_MODEL}/"]
    assert final.instructions.index(user) > max(map(final.instructions.index, final.all("COPY")))
    assert [i.arguments for i in final.all("EXPOSE")] == ["8080 8081"]
    assert [i.arguments for i in final.all("STOPSIGNAL")] == ["SIGTERM"]
    assert [i.exec_form for i in final.all("ENTRYPOINT")] == [["mlstrata-serve"]]
    [health] = final.all("HEALTHCHECK")
    assert '--interval=10s' in health.arguments and "CMD [" in health.arguments
    assert "urllib.request.urlopen" in health.arguments and "/v2/health/ready" in health.arguments
    env_text = " ".join(i.arguments for i in final.all("ENV"))
    for setting in ("MLSTRATA_HOST=0.0.0.0", "MLSTRATA_PORT=8080", "MLSTRATA_GRPC_PORT=8081",
                    "MLSTRATA_WORKERS=1", "MLSTRATA_MODEL=/opt/mlstrata/model"):
        assert setting in env_text


def test_compose_runs_the_server_and_prometheus_scrapes_it(
        docker_context: DockerContext) -> None:
    out = docker_context.out
    compose = yaml.safe_load((out / "docker-compose.yml").read_text())
    server = compose["services"]["credit-model"]
    assert server["build"] == "." and server["image"] == "credit-model:1"
    assert server["ports"] == ["8080:8080", "8081:8081"]
    assert server["read_only"] is True and server["cap_drop"] == ["ALL"]
    assert server["environment"]["MLSTRATA_LOG"] == "/var/lib/mlstrata/predictions"
    prometheus = compose["services"]["prometheus"]
    assert prometheus["image"] == PROMETHEUS_IMAGE
    assert prometheus["depends_on"] == {"credit-model": {"condition": "service_healthy"}}
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    scrape = yaml.safe_load((out / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == ["credit-model:8080"]


def test_the_readme_has_the_exact_commands(docker_context: DockerContext) -> None:
    readme = (docker_context.out / "README.md").read_text()
    for line in docker_context.commands().values():
        assert line in readme
    assert docker_context.to_dict()["commands"]["build"].startswith("docker build -t "
                                                                    "credit-model:1 ")


# --- the image's commands, run ---------------------------------------------------------------

@pytest.mark.slow
def test_the_image_venv_holds_the_lean_distribution_only(image_venv: Replayed) -> None:
    python = image_venv.venv / "bin" / "python"
    listing = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, json; print(json.dumps(sorted("
         "d.metadata['Name'].lower() for d in m.distributions())))"],
        capture_output=True, text=True, check=True)
    installed = json.loads(listing.stdout)
    assert "mlstrata-serving" in installed and "mlstrata" not in installed
    assert "pip" not in installed and "setuptools" not in installed
    assert not [name for name in installed
                if name.replace("-", "_") in TRAINING_STACK or name == "scikit-learn"]
    size = _tree_size(image_venv.venv)
    print(f"image venv: {size / 1e6:.1f} MB, {len(installed)} distributions")
    assert size < 200e6


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@dataclass
class Server:
    process: subprocess.Popen[str]
    rest: str
    grpc: str
    env: dict[str, str]
    output: str = ""


@contextlib.contextmanager
def _entrypoint(image: Replayed, **env: str) -> Iterator[Server]:
    """The image's ENTRYPOINT with its environment (ports mapped), until it answers ready."""
    port, grpc_port = free_port(), free_port()
    settings = {**image.env, "MLSTRATA_PORT": str(port), "MLSTRATA_GRPC_PORT": str(grpc_port),
                **env}
    process = subprocess.Popen(image.entrypoint, env=settings, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd="/")
    server = Server(process, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", settings)
    try:
        deadline = time.monotonic() + 60
        while _healthcheck(image, settings) != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"the server did not become ready:\n"
                                     f"{process.communicate()[0]}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        server.output = process.communicate()[0]


def _healthcheck(image: Replayed, env: dict[str, str]) -> int:
    """The image's HEALTHCHECK command, run as Docker would."""
    return subprocess.run(image.healthcheck, env=env, capture_output=True, check=False,
                          timeout=10).returncode


@pytest.mark.slow
def test_the_image_entrypoint_serves_the_packages_predictions(
        image_venv: Replayed, credit_package: Path) -> None:
    records = valid_records(credit_package)
    expected = load(credit_package).predict_records(records)
    with _entrypoint(image_venv, PYTHONPROFILEIMPORTTIME="1") as server:
        assert httpx.get(f"{server.rest}/v2/health/ready").json() == {"ready": True}
        answer = httpx.post(f"{server.rest}/v1/predict", json=records).json()
        assert answer["predictions"] == expected.to_records()
        assert (answer["model"], answer["version"]) == (MODEL, 1)
        oip = httpx.get(f"{server.rest}/v2").json()
        assert oip["name"] == "mlstrata" and oip["version"]
        with grpc.insecure_channel(server.grpc) as channel:
            response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                typed_infer_request(load(credit_package).signature, records, MODEL, "image"))
        label, probabilities = response.outputs
        assert list(label.contents.int64_contents) == expected.labels.tolist()
        np.testing.assert_array_equal(probabilities.contents.fp64_contents,
                                      expected.probabilities.ravel())
        metrics = httpx.get(f"{server.rest}/metrics").text
        assert "mlstrata" in metrics
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(40) == 0
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in server.output.splitlines() if line.startswith("import time:")}
    assert {"numpy", "onnxruntime", "uvicorn", "grpc", "mlstrata"} <= imported
    assert not imported & set(TRAINING_STACK)


@pytest.mark.slow
def test_the_image_entrypoint_takes_its_settings_from_the_environment(
        image_venv: Replayed, credit_package: Path, tmp_path: Path) -> None:
    records = valid_records(credit_package, 3)
    log = tmp_path / "predictions"
    with _entrypoint(image_venv, MLSTRATA_API_KEY="s3cret", MLSTRATA_LOG=str(log),
                     MLSTRATA_GRPC_PORT="", MLSTRATA_WORKERS="2") as server:
        assert httpx.post(f"{server.rest}/v1/predict", json=records).status_code == 401
        answer = httpx.post(f"{server.rest}/v1/predict", json=records,
                            headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(40) == 0
    assert "gRPC" not in server.output and server.output.count("Started server process") == 2
    logged = [json.loads(line) for path in log.rglob("*") if path.is_file()
              for line in path.read_bytes().splitlines() if line.strip()]
    predictions = [item for item in logged if item.get("kind") == "prediction"]
    assert [item["record"] for item in predictions] == [0, 1, 2]
    assert {item["request_id"] for item in predictions} == {answer.headers["x-request-id"]}


@pytest.mark.slow
def test_the_image_refuses_an_altered_package_in_one_line(image_venv: Replayed,
                                                          credit_package: Path,
                                                          tmp_path: Path) -> None:
    import shutil

    altered = tmp_path / "model"
    shutil.copytree(credit_package, altered)
    with (altered / "signature.json").open("a") as handle:
        handle.write(" ")
    done = subprocess.run(image_venv.entrypoint, env={**image_venv.env,
                                                      "MLSTRATA_MODEL": str(altered)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "signature.json: sha256" in done.stderr


@pytest.mark.slow
def test_a_postgres_log_without_psycopg_is_refused_in_one_line(image_venv: Replayed) -> None:
    done = subprocess.run(image_venv.entrypoint, env={
        **image_venv.env, "MLSTRATA_LOG": "postgresql://mlstrata@127.0.0.1:1/log"},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "MLSTRATA_LOG is a PostgreSQL URL but psycopg is not installed" in done.stderr
    assert "--postgres" in done.stderr


def test_postgres_adds_psycopg_to_the_install(credit_package: Path, tmp_path: Path) -> None:
    context = render_docker(credit_package, tmp_path / "pg", postgres=True,
                            image="registry.example.com/team/credit:1.0")
    dockerfile = (context.out / "Dockerfile").read_text()
    assert "-py3-none-any.whl[server,postgres]" in dockerfile
    assert "psycopg==" in (context.out / "constraints.txt").read_text()
    assert "lacks" not in (context.out / "README.md").read_text()
    compose = yaml.safe_load((context.out / "docker-compose.yml").read_text())
    assert compose["services"]["credit"]["image"] == "registry.example.com/team/credit:1.0"
    done = subprocess.run([str(Path(sys.executable).with_name("hadolint")), "--no-color",
                           str(context.out / "Dockerfile")], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout) == (0, "")


# --- bad input -------------------------------------------------------------------------------

def test_a_non_empty_out_is_refused_unless_force(credit_package: Path, tmp_path: Path,
                                                  cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "context"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("deploy", "docker", str(credit_package), "--out", str(out))
    assert result.code != 0 and "--force" in result.err and result.err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    result = cli("deploy", "docker", str(credit_package), "--out", str(out), "--force",
                 "--json")
    assert result.code == 0
    report = json.loads(result.out)
    assert report["model"] == "credit.model@1" and not (out / "keep.txt").exists()
    assert report["installs"] == "mlstrata-serving[server]"
    assert (out / "Dockerfile").is_file() and report["image"] == "credit-model:1"


@pytest.mark.parametrize(("args", "message"), [
    (["nosuch.model"], "nosuch.model"),
    (["PACKAGE", "--tag", "Bad/Name:1"], "--tag 'Bad/Name:1' is not a valid image reference"),
])
def test_bad_input_answers_one_line_and_writes_nothing(
        credit_package: Path, tmp_path: Path, cli, args: list[str],  # type: ignore[no-untyped-def]
        message: str) -> None:
    out = tmp_path / "context"
    args = [str(credit_package) if a == "PACKAGE" else a for a in args]
    project = credit_package.parent.parent  # the workspace the package was built in
    result = cli("deploy", "docker", *args, "--out", str(out), cwd=project)
    assert result.code != 0 and message in result.err and result.err.strip().count("\n") == 0
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []


def test_a_package_without_onnx_is_refused(credit_package: Path, tmp_path: Path) -> None:
    import shutil

    package = tmp_path / "pkg"
    shutil.copytree(credit_package, package)
    manifest = json.loads((package / "manifest.json").read_text())
    del manifest["files"]["model.onnx"]
    (package / "model.onnx").unlink()
    (package / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DeployError, match="no model.onnx"):
        render_docker(package, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_context_is_rendered_the_same_twice(credit_package: Path, tmp_path: Path,
                                                 docker_context: DockerContext) -> None:
    again = render_docker(credit_package, tmp_path / "again")
    assert again.files == docker_context.files
    for name in docker_context.files:
        if name != "README.md":  # it names the --out path in its commands
            assert (again.out / name).read_bytes() == (docker_context.out / name).read_bytes()
    assert os.listdir(tmp_path) == ["again"]
