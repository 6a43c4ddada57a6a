"""The server as a process: reload without dropped requests, graceful shutdown, sustained load."""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import psutil
import pytest

from mlstrata.serve.app import create_app
from mlstrata.serve.holder import ModelHolder
from mlstrata.serve.server import Reloader

from .conftest import running, serve_process


def _copy(package: Path, target: Path, version: int, corrupt: bool = False) -> Path:
    """A copy of the package that calls itself ``version`` (optionally with a bad model.onnx)."""
    shutil.copytree(package, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["model_version"] = version
    (target / "manifest.json").write_text(json.dumps(manifest))
    if corrupt:
        data = bytearray((target / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (target / "model.onnx").write_bytes(bytes(data))
    return target


def test_reload_swaps_versions_without_a_failed_request(
        credit_package: Path, tmp_path: Path, records: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture) -> None:
    first = _copy(credit_package, tmp_path / "v1", 1)
    broken = _copy(credit_package, tmp_path / "v3", 3, corrupt=True)
    second = _copy(credit_package, tmp_path / "v2", 2)
    target = [first]
    holder = ModelHolder(lambda: target[0])
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url) as http:
            while not stop.is_set():
                response = http.post("/v1/predict", json=records[:3])
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    seen.append(response.json()["version"])

    reloader = Reloader(holder, 0.05).start()
    with caplog.at_level(logging.WARNING, logger="mlstrata.serve"), \
            running(create_app(holder)) as url:
        thread = threading.Thread(target=client, args=(url,))
        thread.start()
        time.sleep(0.4)
        target[0] = broken
        time.sleep(0.4)
        target[0] = second
        time.sleep(0.6)
        stop.set()
        thread.join()
    reloader.stop()
    assert failures == []
    assert seen[0] == 1 and seen[-1] == 2 and 3 not in seen
    assert seen == sorted(seen)
    assert "still serving credit.model version 1" in caplog.text
    assert "does not match the manifest" in caplog.text
    assert caplog.text.count("could not load the new package") == 1


def test_sigterm_lets_the_request_in_flight_finish(credit_package: Path,
                                                   records: list[dict[str, Any]]) -> None:
    body = json.dumps(records[0]).encode()
    with serve_process(str(credit_package)) as served:
        process = served.process
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                               b"application/json\r\nContent-Length: " +
                               str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert process.poll() is None, "the server exited with a request in flight"
            connection.sendall(body[10:])
            answer = _read_response(connection)
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"prediction"' in answer
        process.wait(15)
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Finished server process" in served.output


def _read_response(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert match is not None
    while len(rest) < int(match.group(1)):
        rest += connection.recv(65536)
    return head + b"\r\n\r\n" + rest


@pytest.mark.slow
def test_64_connections_for_30_seconds(credit_package: Path, records: list[dict[str, Any]],
                                       tmp_path: Path) -> None:
    """wrk drives the server; zero errors, and RSS does not creep from the middle third of the
    run to the last (the regression this guards against grew 54 MiB in 30 s)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed")
    script = tmp_path / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(json.dumps(records[0]))}\n")
    with serve_process(str(credit_package)) as served:
        server, url = psutil.Process(served.process.pid), served.url
        load = subprocess.Popen([wrk, "-t2", "-c64", "-d30s", "-s", str(script),
                                 f"{url}/v1/predict"], stdout=subprocess.PIPE, text=True)
        samples = []
        while load.poll() is None:
            samples.append(server.memory_info().rss)
            time.sleep(0.5)
        report = load.communicate()[0]
    assert "Non-2xx" not in report and "Socket errors" not in report, report
    requests = int(re.search(r"(\d+) requests in", report).group(1))  # type: ignore[union-attr]
    assert requests > 1000, report
    # a creep, not a spike: the middle third (warmed up) against the last, each by its median
    # (RSS moves by a few MiB between samples as the allocator and the log's queue breathe)
    third = len(samples) // 3
    first, last = median(samples[third:2 * third]), median(samples[-third:])
    assert last - first < 5 * 2**20, f"RSS grew from {first} to {last} bytes"
    print(report, f"RSS {first / 2**20:.1f} -> {last / 2**20:.1f} MiB")
