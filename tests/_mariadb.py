"""Start a throw-away MariaDB server from the machine's binaries (mariadb-install-db + mariadbd).

The server gets its own data directory, socket and free loopback port, keeps nothing after the
session, and accepts user ``root`` without a password over TCP from 127.0.0.1 plus user
``mlstrata`` with password :data:`PASSWORD` (to test credentials). MariaDB refuses to run as root
without ``--user``, so when the tests run as root the server runs as the ``mysql`` system user
(which Debian's ``mariadb-server`` package creates; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ._processes import free_port, run_checked

PASSWORD = "s3cret-Pw"
_DIRS = [Path("/usr/sbin"), Path("/usr/bin"), Path("/usr/local/bin")]


@dataclass(frozen=True)
class MariaDBServer:
    """A running server: where it listens and how to stop it."""

    port: int
    socket: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str = "mlstrata", user: str = "mlstrata",
            password: str | None = PASSWORD, scheme: str = "mysql") -> str:
        """A ``mysql://`` URL to ``database`` on this server."""
        secret = f":{password}" if password else ""
        return f"{scheme}://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str, database: str = "mlstrata") -> None:
        """Run SQL statements as root through the socket (setup of test tables)."""
        _client(self.socket, ";\n".join(statements) + ";", database)

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def binaries_present() -> bool:
    """Whether the MariaDB server binaries are installed (the tests skip when not)."""
    return all(_find(name) for name in ("mariadb-install-db", "mariadbd", "mariadb"))


def start_mariadb(base: Path) -> MariaDBServer:
    """Create a data directory under ``base`` and start a server on a free loopback port."""
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["--user=mysql"]
        shutil.chown(base, "mysql")
    data_dir, sock, port = base / "data", base / "mysqld.sock", free_port()
    run_checked([_require("mariadb-install-db"), "--no-defaults", f"--datadir={data_dir}",
          "--auth-root-authentication-method=normal", "--skip-test-db", *run_as])
    process = subprocess.Popen(
        [_require("mariadbd"), "--no-defaults", f"--datadir={data_dir}", f"--socket={sock}",
         f"--port={port}", "--skip-networking=0", "--bind-address=127.0.0.1",
         f"--pid-file={base / 'mysqld.pid'}", f"--log-error={base / 'error.log'}",
         "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
         "--skip-log-bin", *run_as],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = MariaDBServer(port, sock, process)
    _wait_ready(server, base)
    _client(sock, "CREATE DATABASE mlstrata; "
            f"CREATE USER 'mlstrata'@'%' IDENTIFIED BY '{PASSWORD}'; "
            f"CREATE USER 'mlstrata'@'localhost' IDENTIFIED BY '{PASSWORD}'; "
            "GRANT ALL ON *.* TO 'mlstrata'@'%'; GRANT ALL ON *.* TO 'mlstrata'@'localhost';",
            None)
    return server


def _wait_ready(server: MariaDBServer, base: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (base / "error.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mariadbd exited with {server.process.returncode}: {log}")
        try:
            _client(server.socket, "SELECT 1;", None)
            return
        except RuntimeError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("mariadbd did not accept connections within 60 s")


def _client(sock: Path, sql: str, database: str | None) -> None:
    command = [_require("mariadb"), "--no-defaults", f"--socket={sock}", "-uroot",
               *([database] if database else [])]
    result = subprocess.run(command, input=sql, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"mariadb client failed: {result.stderr.strip()}")


def _find(name: str) -> str | None:
    for folder in _DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    return shutil.which(name)


def _require(name: str) -> str:
    found = _find(name)
    if found is None:
        raise RuntimeError(f"MariaDB's {name} not found; install mariadb-server (see .ci/run)")
    return found
