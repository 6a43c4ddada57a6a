"""Serving benchmark: mlstrata vs ``mlflow models serve`` vs a hand-written FastAPI app, one run.

All three serve the same package (default: the ``make demo`` model in ./demo-workspace):
mlstrata's server (``/v1/predict``, input validation on; twice: with the prediction log off,
and on — every prediction written to a throw-away workspace's log, the cost of logging side
by side), MLflow's scoring server
(``/invocations``, env-manager local, the package's MLflow model) and a minimal FastAPI +
onnxruntime app on uvicorn[standard] (``handwritten_app.py``, same ``model.onnx``).

For each: cold start (process launch → first successful prediction), then single-record POSTs
from ``wrk`` (Lua script rotating over real records) at 1 and 8 connections — requests/s, p50,
p99, errors — with the server pinned to CPU 0 and wrk to CPU 1 (``taskset``), and the server's
RSS (process tree) after the load. Also the floor: in-process onnxruntime single-row latency.

Needs ``wrk`` (Debian: ``apt-get install wrk``). Results: ``benchmarks/results/bench_serve.json``.
Usage: ``.venv/bin/python benchmarks/bench_serve.py [--package DIR] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from _results import write_results

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SERVER_CPU, LOAD_CPU = "0", "1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def valid_records(package: Path, count: int = 200) -> list[dict[str, Any]]:
    """Records the model accepts, from the package's project data (derived columns added)."""
    import pandas as pd

    from mlstrata.runtime.inputs import InvalidInputError
    from mlstrata.runtime.model import load

    model = load(package)
    names = model.signature.input_names
    frame = pd.read_csv(package.parent.parent / "data" / "credit.csv",
                        dtype={"postal_code": str, "phone": str}).head(count * 3)
    if "loan_to_income" in names:
        frame["loan_to_income"] = frame["loan_amount"] / frame["income"].replace(0, float("nan"))
    records = json.loads(frame[names].to_json(orient="records"))
    accepted = []
    for record in records:
        try:
            model.predict_records([record])
        except InvalidInputError:
            continue
        accepted.append(record)
    return accepted[:count]


def floor_latency(package: Path, records: list[dict[str, Any]]) -> dict[str, float]:
    """In-process single-row latency: onnxruntime alone, and mlstrata's validate + score."""
    from mlstrata.runtime.inputs import columns_from_records
    from mlstrata.runtime.model import load

    model = load(package, threads=1)
    prepared = [model._feeds(columns_from_records(model.signature, [r])[0]) for r in records]
    session = model._session
    raw = _timed(lambda i: session.run(None, prepared[i % len(prepared)]), 3000)
    full = _timed(lambda i: model.predict_records([records[i % len(records)]]), 3000)
    return {"onnxruntime_p50_ms": raw[0], "onnxruntime_p99_ms": raw[1],
            "mlstrata_runtime_p50_ms": full[0], "mlstrata_runtime_p99_ms": full[1]}


def _timed(call: Any, runs: int) -> tuple[float, float]:
    for i in range(200):
        call(i)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return round(statistics.median(times), 4), round(times[int(len(times) * 0.99)], 4)


def logging_copy(package: Path, root: Path) -> Path:
    """The package copied into a fresh workspace at ``root``, whose log the logging row fills
    (the demo workspace's own log stays untouched)."""
    from mlstrata.workspace import Workspace

    Workspace.init(root, "bench-serve-logging")
    copy = root / "packages" / package.name
    shutil.copytree(package, copy)
    return copy


def log_lines(root: Path) -> int:
    """Prediction lines written under a workspace's log."""
    return sum(path.read_bytes().count(b"\n")
               for path in (root / ".mlstrata" / "predictions").rglob("*.jsonl"))


def servers(package: Path, port: int, logged: Path) -> dict[str, dict[str, Any]]:
    """How to start each server and where to POST one record (``logged``: the package copy
    the logging row serves)."""
    env = {**os.environ, "BENCH_PACKAGE": str(package), "PYTHONPATH": str(HERE)}
    return {
        "mlstrata": {"cmd": [str(BIN / "mlstrata"), "serve", str(package), "--port", str(port),
                             "--no-log"],
                     "path": "/v1/predict", "wrap": lambda r: r, "env": env},
        "mlstrata_logging": {"cmd": [str(BIN / "mlstrata"), "serve", str(logged), "--port",
                                     str(port), "--log"],
                             "path": "/v1/predict", "wrap": lambda r: r, "env": env},
        "fastapi_handwritten": {
            "cmd": [str(BIN / "uvicorn"), "handwritten_app:app", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                    "--log-level", "warning"],
            "path": "/predict", "wrap": lambda r: r, "env": env},
        "mlflow_serve": {
            "cmd": [str(BIN / "mlflow"), "models", "serve", "-m", str(package), "-p", str(port),
                    "-h", "127.0.0.1", "--env-manager", "local"],
            "path": "/invocations", "wrap": lambda r: {"dataframe_records": [r]},
            "env": {**env, "PATH": f"{BIN}:{os.environ['PATH']}"}},
    }


def start(spec: dict[str, Any], port: int, body: bytes) -> tuple[subprocess.Popen[bytes], float]:
    """Launch pinned to the server CPU; seconds until the first successful prediction."""
    began = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", SERVER_CPU, *spec["cmd"]], env=spec["env"],
                               cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}{spec['path']}"
    while time.perf_counter() - began < 120:
        if process.poll() is not None:
            raise RuntimeError(f"{spec['cmd'][0]} exited: {process.stderr.read().decode()[-800:]}"
                               if process.stderr else "server exited")
        try:
            request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return process, time.perf_counter() - began
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.005)
    raise RuntimeError(f"{spec['cmd'][0]} did not answer within 120 s")


def wrk(url: str, bodies: list[bytes], connections: int, seconds: int) -> dict[str, Any]:
    """wrk pinned to the load CPU, POSTing the bodies in turn; parsed figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        quoted = ",\n".join("[==[" + b.decode() + "]==]" for b in bodies)
        script.write(f"""bodies = {{ {quoted} }}
i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
""")
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}",
                          f"-d{seconds}s", "--latency", "-s", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return _parse_wrk(out)


def _parse_wrk(out: str) -> dict[str, Any]:
    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return round(float(found.group(1)) * scale, 3)

    requests_match = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)
    return {"requests_per_s": float(rps.group(1)) if rps else 0.0,
            "p50_ms": latency("50"), "p99_ms": latency("99"), "errors": errors,
            "requests": int(requests_match.group(1)) if requests_match else 0}


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, MB."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    return round(sum(p.memory_info().rss for p in processes if p.is_running()) / 1e6, 1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (and its children) and wait."""
    children = psutil.Process(process.pid).children(recursive=True)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    for child in children:
        if child.is_running():
            child.kill()


def bench_one(name: str, spec: dict[str, Any], port: int, records: list[dict[str, Any]],
              seconds: int) -> dict[str, Any]:
    """Cold start, load at 1 and 8 connections, RSS."""
    bodies = [json.dumps(spec["wrap"](r)).encode() for r in records]
    process, cold = start(spec, port, bodies[0])
    try:
        url = f"http://127.0.0.1:{port}{spec['path']}"
        result: dict[str, Any] = {"cold_start_s": round(cold, 3)}
        for connections in (1, 8):
            result[f"c{connections}"] = wrk(url, bodies, connections, seconds)
            print(f"  {name} c={connections}: {result[f'c{connections}']}", flush=True)
        result["rss_mb"] = tree_rss_mb(process.pid)
    finally:
        stop(process)
    print(f"  {name}: cold start {cold:.3f} s, RSS {result.get('rss_mb')} MB", flush=True)
    return result


def default_package() -> Path:
    packages = sorted((Path.cwd() / "demo-workspace" / "packages").glob("*-[0-9]*"))
    found = [p for p in packages if p.is_dir()]
    if not found:
        sys.exit("no package found: run 'make demo' first or pass --package DIR")
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=None,
                        help="servers to run (mlstrata mlstrata_logging fastapi_handwritten "
                             "mlflow_serve)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    package = (args.package or default_package()).resolve()
    records = valid_records(package)
    print(f"package {package}, {len(records)} records", flush=True)
    figures: dict[str, Any] = {"package": str(package), "seconds_per_load": args.seconds,
                               "floor": floor_latency(package, records), "servers": {}}
    print(f"  floor: {figures['floor']}", flush=True)
    logging_root = Path(tempfile.mkdtemp(prefix="bench-serve-log-"))
    logged = logging_copy(package, logging_root)
    for name, spec in servers(package, port := free_port(), logged).items():
        if args.only and name not in args.only:
            continue
        figures["servers"][name] = bench_one(name, spec, port, records, args.seconds)
    served = figures["servers"]
    if "mlstrata_logging" in served:
        answered = sum(served["mlstrata_logging"][f"c{c}"]["requests"] for c in (1, 8))
        served["mlstrata_logging"]["log_lines"] = log_lines(logging_root)
        served["mlstrata_logging"]["requests_answered"] = answered
        print(f"  mlstrata_logging: {served['mlstrata_logging']['log_lines']} log lines for "
              f"{answered} requests (+ the cold-start probes)", flush=True)
    shutil.rmtree(logging_root, ignore_errors=True)
    if "mlstrata" in served and "mlstrata_logging" in served:
        figures["logging_on_vs_off_c8"] = round(
            served["mlstrata_logging"]["c8"]["requests_per_s"]
            / served["mlstrata"]["c8"]["requests_per_s"], 3)
        print(f"  logging on / off at 8 connections: {figures['logging_on_vs_off_c8']}",
              flush=True)
    if "mlstrata" in served and "fastapi_handwritten" in served:
        figures["mlstrata_vs_handwritten_c8"] = round(
            served["mlstrata"]["c8"]["requests_per_s"]
            / served["fastapi_handwritten"]["c8"]["requests_per_s"], 2)
    if "mlstrata" in served and "mlflow_serve" in served:
        figures["mlstrata_vs_mlflow_c8"] = round(
            served["mlstrata"]["c8"]["requests_per_s"]
            / served["mlflow_serve"]["c8"]["requests_per_s"], 1)
    write_results("bench_serve", figures)


if __name__ == "__main__":
    main()
