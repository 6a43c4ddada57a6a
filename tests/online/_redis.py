"""A real ``redis-server`` for the consumer tests: 127.0.0.1, a free port, no persistence."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from .._processes import free_port


@contextmanager
def redis_server() -> Iterator[str]:
    """Start ``redis-server`` in a temporary folder, wait for ``PING``; its URL. Stopped after."""
    binary = shutil.which("redis-server")
    if binary is None:
        import pytest

        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="mlstrata-redis-"))
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"]
    with open(folder / "redis.log", "wb") as log, \
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as server:
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait_for_ping(url, server, folder)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)
            shutil.rmtree(folder, ignore_errors=True)


def _wait_for_ping(url: str, server: subprocess.Popen[bytes], folder: Path) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 15
    while True:
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                log = (folder / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start: {log[-500:]}") from None
            time.sleep(0.05)

