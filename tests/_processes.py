"""What the fixtures that start real servers (PostgreSQL, MariaDB, Redis, the S3 server)
share: a free loopback port and a set-up command that must succeed."""

from __future__ import annotations

import socket
import subprocess

__all__ = ["free_port", "run_checked"]


def free_port() -> int:
    """A loopback port nothing listens on (for a server, or to test an unreachable one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_checked(command: list[str]) -> None:
    """Run a set-up command; raise with its stderr when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
