"""Start a throw-away PostgreSQL server from the machine's binaries (initdb + pg_ctl).

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user (``.ci/run`` creates it when missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._processes import free_port, run_checked

_PG_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin"), Path("/usr/bin")]


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its URL and how to stop it."""

    url: str
    data_dir: Path
    pg_ctl: str
    run_as: list[str]

    def stop(self) -> None:
        """Stop the server immediately."""
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data_dir), "-m", "immediate",
                        "stop"], check=False, capture_output=True)


def start_postgres(base: Path) -> PostgresServer:
    """initdb a cluster under ``base`` and start it on a free loopback port."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        os.chmod(base, 0o700)
    data_dir, port = base / "data", free_port()
    run_checked([*run_as, initdb, "-D", str(data_dir), "-U", "mlstrata", "--auth=trust", "-E",
                 "UTF8"])
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off"
    run_checked([*run_as, pg_ctl, "-D", str(data_dir), "-o", options, "-l", str(base / "log"), "-w",
                 "start"])
    return PostgresServer(f"postgresql://mlstrata@127.0.0.1:{port}/postgres", data_dir, pg_ctl,
                          run_as)


def _binary(name: str) -> str:
    for folder in _PG_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} not found; install postgresql-15 (see .ci/run)")
    return found
