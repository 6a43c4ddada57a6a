"""Start a throw-away S3-compatible server — moto's standalone server, in its own process — on a
free loopback port, with credentials that it checks.

The server starts open, a user with an S3 policy and an access key is created, then
authentication is switched on (``/moto-api/reset-auth``): from then on a wrong secret or an
unknown key id is refused as a real store refuses it. Used by the tests and by
``benchmarks/bench_data.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._processes import free_port

__all__ = ["S3Server", "start_s3"]

_POLICY = {"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, a valid key pair, the key pair of a user without any
    permission (``stranger``), and the process to stop."""

    endpoint: str
    access_key: str
    secret_key: str
    stranger: tuple[str, str]
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """The environment variables a client of this server sets."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self) -> Any:
        """A boto3 S3 client with the valid credentials."""
        return _boto("s3", self.endpoint, self.access_key, self.secret_key)

    def stop(self) -> None:
        """Stop the server and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_s3(log: Path) -> S3Server:
    """Start the server (its output to ``log``), create a user and key, enforce authentication."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(endpoint, process)
        iam = _boto("iam", endpoint, "setup", "setup")
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="s3",
                            PolicyDocument=json.dumps(_POLICY))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        iam.create_user(UserName="stranger")
        other = iam.create_access_key(UserName="stranger")["AccessKey"]
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"}), timeout=10).read()
    except BaseException:
        process.kill()
        process.wait()
        raise
    return S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"],
                    (other["AccessKeyId"], other["SecretAccessKey"]), process)


def _boto(service: str, endpoint: str, key: str, secret: str) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


def _wait_ready(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2).read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"moto server at {endpoint} did not answer within 30 s")

