"""Fixtures for the REST server tests: a real uvicorn server on 127.0.0.1, valid records."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import uvicorn

from mlstrata.serve.app import ASGIApp, create_app
from mlstrata.serve.holder import ModelHolder

from .._processes import free_port


@contextlib.contextmanager
def running(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn (uvloop + httptools) on a free port in a thread; its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", http="httptools",
                            lifespan="off", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def valid_records(package: Path, rows: int = 20) -> list[dict[str, Any]]:
    """Valid records from the project's own data, keeping the signature's inputs."""
    signature = json.loads((package / "signature.json").read_text())
    names = [field["name"] for field in signature["inputs"]]
    frame = pd.read_csv(package.parent.parent / "data" / "credit.csv",
                        dtype={"postal_code": str}).dropna(subset=names).head(rows)
    records: list[dict[str, Any]] = json.loads(
        frame[names].to_json(orient="records", date_format="iso"))
    return records


@pytest.fixture(scope="module")
def holder(credit_package: Path) -> ModelHolder:
    """The credit package, loaded once per module."""
    return ModelHolder(lambda: credit_package)


@pytest.fixture(scope="module")
def server(holder: ModelHolder) -> Iterator[str]:
    """The URL of a real server for the credit package (no API key)."""
    with running(create_app(holder, max_body_bytes=200_000)) as url:
        yield url


@pytest.fixture(scope="module")
def records(credit_package: Path) -> list[dict[str, Any]]:
    """Twenty valid credit records."""
    return valid_records(credit_package)


@dataclass
class Served:
    """A server process, its URL, and (after it stopped) everything it printed."""

    process: subprocess.Popen[str]
    url: str
    output: str = ""


@contextlib.contextmanager
def serve_process(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                  timeout: float = 30) -> Iterator[Served]:
    """``mlstrata serve ARGS --port P`` in a real process, yielded once it answers.

    Stopped with SIGTERM (then killed if it hangs) when the block ends.
    """
    port = free_port()
    command = [str(Path(sys.executable).with_name("mlstrata")), "serve", *args, "--port",
               str(port)]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(process, served.url, timeout)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            served.output = process.stdout.read()
            process.stdout.close()


def _wait_ready(process: subprocess.Popen[str], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"the server exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"the server at {url} was not ready after {timeout} s")
