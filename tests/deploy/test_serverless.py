"""``mlstrata deploy serverless``: each bundle, run from its own files, answers like the server.

- AWS Lambda: the unzipped ``function.zip`` alone (``python -S``: no site-packages, so no
  mlstrata but the bundle's) on the Lambda runtime's Python (3.12), driven by AWS's own runtime
  client ``awslambdaric`` against a Lambda Runtime API stand-in on 127.0.0.1, with API Gateway
  REST (1.0), HTTP API (2.0) and Function URL events shaped like ``sam local generate-event``'s
  (``events/``);
- Google Cloud Functions: the real ``functions-framework`` serving ``main.py`` on 127.0.0.1;
- Azure Functions: ``azure.functions.HttpRequest`` objects handed to ``function_app.py`` in a
  process whose only paths are the bundle's.

Every answer is compared with a real server of the same package (``mlstrata serve``'s app on
uvicorn): predictions equal the runtime's, each bad request gets the same status and body.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlstrata.deploy.output import DeployError
from mlstrata.deploy.serverless import (
    PLATFORMS,
    Limit,
    ServerlessResult,
    build_serverless,
    interpreter_for,
    platform_tags,
    write_zip,
)
from mlstrata.runtime.model import load
from mlstrata.serve.app import create_app
from mlstrata.serve.holder import ModelHolder

from ..serve.conftest import free_port, running, valid_records

EVENTS = Path(__file__).with_name("events")
MLSTRATA = str(Path(sys.executable).with_name("mlstrata"))
SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))


@dataclass(frozen=True)
class Call:
    """One HTTP request every platform is sent, and the name the test gives it."""

    name: str
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"


def _calls(records: list[dict[str, Any]]) -> list[Call]:
    bad = dict(records[0], age=-5, term_months=7)
    return [
        Call("predict", "POST", "/v1/predict", json.dumps(records[:5]).encode()),
        Call("invocations", "POST", "/invocations",
             json.dumps({"dataframe_records": records[5:8]}).encode()),
        Call("malformed", "POST", "/v1/predict", b"[1,"),
        Call("invalid", "POST", "/v1/predict", json.dumps([bad]).encode()),
        Call("media", "POST", "/v1/predict", b"a,b", "text/plain"),
        Call("unknown", "GET", "/v1/nothing-here"),
        Call("method", "GET", "/v1/predict"),
        Call("ready", "GET", "/v2/health/ready"),
    ]


@pytest.fixture(scope="session")
def records(credit_package: Path) -> list[dict[str, Any]]:
    return valid_records(credit_package)


@pytest.fixture(scope="session")
def expected(credit_package: Path, records: list[dict[str, Any]]
             ) -> dict[str, tuple[int, Any]]:
    """What ``mlstrata serve``'s app on uvicorn answers each call: status and JSON body."""
    answers = {}
    with running(create_app(ModelHolder(lambda: credit_package))) as url:
        for call in _calls(records):
            answer = httpx.request(call.method, url + call.path, content=call.body,
                                   headers={"content-type": call.content_type})
            answers[call.name] = (answer.status_code, answer.json())
    return answers


def _check(name: str, status: int, body: Any, expected: dict[str, tuple[int, Any]],
           truth: dict[str, list[Any]]) -> None:
    """An answer equals the server's (predictions: the runtime's, request ids aside)."""
    want_status, want = expected[name]
    assert status == want_status, (name, body)
    if name == "predict":
        assert body["predictions"] == truth["predict"]
        assert {k: v for k, v in body.items() if k != "request_id"} == {
            k: v for k, v in want.items() if k != "request_id"}
    elif name == "invocations":
        assert body["predictions"] == truth["invocations"]
    else:
        assert body == want, name


@pytest.fixture(scope="session")
def truth(credit_package: Path, records: list[dict[str, Any]],
          expected: dict[str, tuple[int, Any]]) -> dict[str, list[Any]]:
    """The runtime's own predictions, in process (``mlstrata.runtime``)."""
    model = load(credit_package)
    return {"predict": model.predict_records(records[:5]).to_records(),
            "invocations": expected["invocations"][1]["predictions"]}


@pytest.fixture(scope="session")
def lean_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlstrata.deploy.lean import build_lean_wheel

    return build_lean_wheel(tmp_path_factory.mktemp("lean-dist"))


def _bundle(target: str, credit_package: Path, lean_wheel: Path,
            tmp_path_factory: pytest.TempPathFactory) -> ServerlessResult:
    out = tmp_path_factory.mktemp(target) / "out"
    return build_serverless(credit_package, target, out, lean_wheel=lean_wheel)


@pytest.fixture(scope="session")
def lambda_bundle(credit_package: Path, lean_wheel: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[ServerlessResult, Path]:
    """The Lambda bundle and the directory it unzips to."""
    result = _bundle("aws-lambda", credit_package, lean_wheel, tmp_path_factory)
    task_root = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(result.artifact) as archive:
        archive.extractall(task_root)
    return result, task_root


@pytest.fixture(scope="session")
def python312() -> str:
    interpreter = interpreter_for("3.12", "x86_64")
    if interpreter is None:
        pytest.skip("no Python 3.12 on this machine (Lambda's python3.12 runtime)")
    return interpreter


# ---- AWS Lambda ----

class RuntimeApi:
    """A stand-in for the Lambda Runtime API (2018-06-01) on 127.0.0.1: hands out queued
    events on ``GET /invocation/next`` and collects ``/response`` and ``/error`` posts."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.answers: dict[str, queue.Queue[tuple[str, bytes]]] = {}
        self.init_errors: list[bytes] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                assert self.path == "/2018-06-01/runtime/invocation/next"
                request_id, event = api.events.get()
                self._reply(200, event, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        "arn:aws:lambda:us-east-1:123456789012:function:credit-model",
                    "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("/")
                if parts[-2:] == ["init", "error"]:
                    api.init_errors.append(body)
                else:
                    api.answers[parts[-2]].put((parts[-1], body))
                self._reply(202, b'{"status":"OK"}', {})

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json",
                                    "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._count = 0

    def invoke(self, event: dict[str, Any], timeout: float = 60) -> tuple[str, Any]:
        """Queue ``event``; the kind of answer (response/error) and its JSON."""
        self._count += 1
        request_id = f"request-{self._count}"
        self.answers[request_id] = queue.Queue()
        self.events.put((request_id, json.dumps(event).encode()))
        kind, body = self.answers[request_id].get(timeout=timeout)
        return kind, json.loads(body)


@pytest.fixture(scope="session")
def lambda_client(lambda_bundle: tuple[ServerlessResult, Path], python312: str,
                  tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]
                  ) -> Iterator[tuple[RuntimeApi, float]]:
    """``awslambdaric`` running the unzipped bundle's handler on Python 3.12 with nothing but
    the bundle (and the runtime client, which Lambda's image provides) on its path; the stand-in
    API and the seconds from process start to the first prediction answered."""
    _, task_root = lambda_bundle
    ric = tmp_path_factory.mktemp("awslambdaric")  # what Lambda's python3.12 image provides
    tags = [arg for tag in platform_tags(PLATFORMS["aws-lambda"], "3.12", "x86_64")
            for arg in ("--platform", tag)]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(ric),
                    "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
                    *tags, "awslambdaric==4.2.2"], check=True, timeout=300)
    api = RuntimeApi()
    environment = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": api.address,
                   "LAMBDA_TASK_ROOT": str(task_root), "_HANDLER": "lambda_function.handler",
                   "PYTHONPATH": f"{task_root}{os.pathsep}{ric}",
                   "PYTHONDONTWRITEBYTECODE": "1"}
    log = (ric / "output.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen([python312, "-S", "-m", "awslambdaric",
                                "lambda_function.handler"], env=environment, cwd=task_root,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        first = Call("predict", "POST", "/v1/predict", json.dumps(records[:1]).encode())
        kind, answer = api.invoke(_v2_event(first, "apigateway-http-api-proxy.json"))
        assert (kind, answer["statusCode"]) == ("response", 200), (answer, api.init_errors)
        yield api, time.perf_counter() - began
    finally:
        process.kill()
        process.wait(10)
        log.close()
        api.server.shutdown()


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return copy.deepcopy(loaded)


def _v1_event(call: Call) -> dict[str, Any]:
    event = _event("apigateway-aws-proxy.json")
    event.update(httpMethod=call.method, path=call.path,
                 body=base64.b64encode(call.body).decode(), isBase64Encoded=True)
    event["requestContext"].update(httpMethod=call.method, path=f"/prod{call.path}")
    event["headers"]["Content-Type"] = call.content_type
    event["multiValueHeaders"]["Content-Type"] = [call.content_type]
    return event


def _v2_event(call: Call, name: str, stage: str | None = None) -> dict[str, Any]:
    event = _event(name)
    path = f"/{stage}{call.path}" if stage else call.path
    event.update(rawPath=path, body=base64.b64encode(call.body).decode(), isBase64Encoded=True)
    event["requestContext"]["http"].update(method=call.method, path=path)
    if stage:
        event["requestContext"]["stage"] = stage
    event["headers"]["content-type"] = call.content_type
    return event


def _lambda_event(call: Call, kind: str) -> dict[str, Any]:
    if kind == "rest-v1":
        return _v1_event(call)
    if kind == "function-url":
        return _v2_event(call, "lambda-function-url.json")
    return _v2_event(call, "apigateway-http-api-proxy.json",
                     "prod" if kind == "http-api-stage" else None)


def _lambda_body(answer: dict[str, Any]) -> Any:
    body = answer["body"]
    return json.loads(base64.b64decode(body) if answer["isBase64Encoded"] else body)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rest-v1", "http-api-v2", "http-api-stage", "function-url"])
def test_lambda_bundle_answers_every_event_kind_like_the_server(
        lambda_client: tuple[RuntimeApi, float], records: list[dict[str, Any]],
        expected: dict[str, tuple[int, Any]], truth: dict[str, list[Any]], kind: str) -> None:
    api, _ = lambda_client
    for call in _calls(records):
        outcome, answer = api.invoke(_lambda_event(call, kind))
        assert outcome == "response", answer
        assert ("multiValueHeaders" in answer) == (kind == "rest-v1")
        headers = answer.get("headers") or {
            name: values[-1] for name, values in answer["multiValueHeaders"].items()}
        assert headers["content-type"] == "application/json"
        _check(call.name, answer["statusCode"], _lambda_body(answer), expected, truth)


@pytest.mark.slow
def test_lambda_bundle_refuses_an_event_that_is_not_http(
        lambda_client: tuple[RuntimeApi, float]) -> None:
    api, _ = lambda_client
    outcome, answer = api.invoke({"Records": [{"eventSource": "aws:sqs"}]})
    assert outcome == "error"
    assert "HTTP events only" in answer["errorMessage"]


@pytest.mark.slow
def test_lambda_bundle_imports_only_its_own_files(lambda_bundle: tuple[ServerlessResult, Path],
                                                  python312: str) -> None:
    """mlstrata, onnxruntime and numpy come from the bundle; nothing of training is in it."""
    result, task_root = lambda_bundle
    script = ("import lambda_function, mlstrata, numpy, onnxruntime, sys\n"
              "print(mlstrata.__file__, numpy.__file__, onnxruntime.__file__)\n"
              "for name in ('mlstrata.model', 'sklearn', 'pandas', 'uvicorn', 'grpc'):\n"
              "    try:\n        __import__(name)\n    except ImportError:\n        continue\n"
              "    sys.exit(name + ' is importable')\n")
    done = subprocess.run([python312, "-S", "-c", script], cwd=task_root, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(task_root)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert all(Path(path).is_relative_to(task_root) for path in done.stdout.split())
    assert result.runtime == "python3.12" and result.zipped <= 50 * 1024 * 1024
    assert result.unzipped <= 250 * 1024 * 1024


@pytest.mark.slow
def test_cold_start_is_measured_and_short(lambda_bundle: tuple[ServerlessResult, Path],
                                          lambda_client: tuple[RuntimeApi, float]) -> None:
    result, _ = lambda_bundle
    _, first_answer = lambda_client
    print(f"cold start: {result.cold_start:.3f} s (import + load + first answer, measured by "
          f"the command), {first_answer:.3f} s (awslambdaric process start to the first "
          f"prediction); {result.zipped} bytes zipped, {result.unzipped} unzipped")
    assert result.cold_start is not None and result.cold_start < 3
    assert first_answer < 5


# ---- Google Cloud Functions ----

@pytest.fixture(scope="session")
def gcf_url(credit_package: Path, lean_wheel: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    """The GCF bundle served by the real functions-framework on 127.0.0.1."""
    result = _bundle("gcp-functions", credit_package, lean_wheel, tmp_path_factory)
    source = result.artifact
    port = free_port()
    log_path = tmp_path_factory.mktemp("functions-framework") / "output.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("functions-framework")), "--target", "handle",
         "--source", str(source / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=source, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/v2/health/ready").status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, \
                log_path.read_text()
            time.sleep(0.2)
        yield url, source, process.pid
    finally:  # the server and its gunicorn worker: the process group it leads
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _loaded_from(pid: int) -> str:
    """Every file mapped by ``pid`` and its child processes (gunicorn workers)."""
    maps = []
    pids = [pid]
    while pids:
        current = pids.pop()
        with contextlib.suppress(OSError):
            maps.append(Path(f"/proc/{current}/maps").read_text())
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(child) for child in children)
    return "\n".join(maps)


@pytest.mark.slow
def test_gcf_bundle_under_functions_framework_answers_like_the_server(
        gcf_url: tuple[str, Path, int], records: list[dict[str, Any]],
        expected: dict[str, tuple[int, Any]], truth: dict[str, list[Any]]) -> None:
    url, source, pid = gcf_url
    for call in _calls(records):
        answer = httpx.request(call.method, url + call.path, content=call.body,
                               headers={"content-type": call.content_type})
        assert answer.headers["content-type"] == "application/json"
        _check(call.name, answer.status_code, answer.json(), expected, truth)
    # the bundle's own onnxruntime was loaded, not this venv's
    loaded = _loaded_from(pid)
    assert str(source / "onnxruntime") in loaded
    assert str(SITE / "onnxruntime") not in loaded


# ---- Azure Functions ----

_AZURE_DRIVER = """\
import json, sys
import azure.functions as func
import function_app, mlstrata
calls = json.loads(sys.stdin.read())
answers = []
for method, path, body, content_type in calls:
    request = func.HttpRequest(method, "https://credit.azurewebsites.net" + path,
                               headers={"Content-Type": content_type}, body=body.encode())
    response = function_app.mlstrata(request)
    answers.append([response.status_code, response.mimetype, response.get_body().decode()])
print(json.dumps({"answers": answers, "mlstrata": mlstrata.__file__}))
"""


@pytest.mark.slow
def test_azure_bundle_answers_http_requests_like_the_server(
        credit_package: Path, lean_wheel: Path, tmp_path_factory: pytest.TempPathFactory,
        records: list[dict[str, Any]], expected: dict[str, tuple[int, Any]],
        truth: dict[str, list[Any]]) -> None:
    result = _bundle("azure-functions", credit_package, lean_wheel, tmp_path_factory)
    app = result.artifact
    assert json.loads((app / "host.json").read_text())["extensions"]["http"]["routePrefix"] == ""
    worker = tmp_path_factory.mktemp("azure-worker")  # what the Python worker provides
    for name in ("azure", "werkzeug", "markupsafe"):  # azure.functions and its needs
        (worker / name).symlink_to(SITE / name)
    calls = _calls(records)
    site = app / ".python_packages/lib/site-packages"
    done = subprocess.run(
        [sys.executable, "-S", "-c", _AZURE_DRIVER], cwd=app, timeout=120,
        input=json.dumps([[c.method, c.path, c.body.decode(), c.content_type] for c in calls]),
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(map(str, (site, app,
                                                                              worker)))},
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert Path(output["mlstrata"]).is_relative_to(site)
    for call, (status, mimetype, body) in zip(calls, output["answers"], strict=True):
        assert mimetype == "application/json"
        _check(call.name, status, json.loads(body), expected, truth)


# ---- the command ----

@pytest.mark.slow
def test_a_bundle_over_a_limit_is_refused_in_one_line_and_nothing_is_written(
        credit_package: Path, lean_wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tiny = Limit("test direct upload (zipped)", "zipped", 1_000_000, "https://example.test")
    with pytest.raises(DeployError) as refused:
        build_serverless(credit_package, "aws-lambda", out, lean_wheel=lean_wheel,
                         limits=[tiny], measure=False)
    message = str(refused.value)
    assert "\n" not in message
    assert "over the test direct upload (zipped) limit of 1.0 MB" in message
    assert "biggest: onnxruntime" in message and "container image" in message
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLSTRATA, "deploy", "serverless", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("args", "says"), [
    (["--target", "aws-lamda"], "did you mean aws-lambda?"),
    (["--target", "aws-lambda", "--python", "3.11"], "Amazon Linux 2 (glibc 2.26)"),
    (["--target", "azure-functions", "--arch", "arm64"], "--arch 'arm64' is not available"),
    (["--target", "gcp-functions", "--python", "2.7"], "is not a gcp-functions Python"),
])
def test_bad_options_answer_one_line_and_write_nothing(credit_package: Path, tmp_path: Path,
                                                       args: list[str], says: str) -> None:
    out = tmp_path / "out"
    done = _cli(str(credit_package), "--out", str(out), *args)
    assert done.returncode != 0
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


def test_a_non_empty_out_is_refused(credit_package: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    done = _cli(str(credit_package), "--target", "gcp-functions", "--out", str(tmp_path))
    assert done.returncode != 0 and "is not empty" in done.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


def test_the_zip_is_deterministic(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg/a.py").write_text("A = 1\n")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    write_zip(tree, tmp_path / "one.zip")
    os.utime(tree / "pkg/a.py", (0, 0))
    write_zip(tree, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        modes = {info.filename: info.external_attr >> 16 & 0o777 for info in archive.infolist()}
    assert modes == {"pkg/a.py": 0o644, "run.sh": 0o755}


def test_a_model_that_does_not_exist_is_named(credit_package: Path, tmp_path: Path) -> None:
    project = credit_package.parent.parent
    done = _cli("nosuch@1", "--target", "aws-lambda", "--out", str(tmp_path / "out"),
                "-w", str(project))
    assert done.returncode != 0 and "no registered model named 'nosuch'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_altered_package_is_refused_before_anything_is_built(credit_package: Path,
                                                                 tmp_path: Path) -> None:
    altered = tmp_path / "package"
    shutil.copytree(credit_package, altered)
    with (altered / "model.onnx").open("ab") as onnx:
        onnx.write(b"\0")
    done = _cli(str(altered), "--target", "gcp-functions", "--out", str(tmp_path / "out"))
    assert done.returncode != 0 and "model.onnx" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
