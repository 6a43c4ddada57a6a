"""Shared fixtures: a fresh workspace, a CLI runner, a real PostgreSQL server, a model package."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from mlstrata.cli.main import main
from mlstrata.workspace import Workspace

from ._mariadb import MariaDBServer, binaries_present, start_mariadb
from ._packaged import build_credit_package, build_uncontracted_packages
from ._postgres import PostgresServer, start_postgres

os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests explore the same examples on every run, so CI cannot fail by chance.
settings.register_profile("mlstrata", derandomize=True, deadline=None)
settings.load_profile("mlstrata")


@dataclass(frozen=True)
class CliResult:
    """What one CLI invocation printed and returned."""

    code: int
    out: str
    err: str


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A freshly initialised workspace in a temporary project directory."""
    return Workspace.init(tmp_path / "project")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``mlstrata ARGS...`` in-process from ``cwd`` and return its exit code and output."""

    def run(*args: object, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main([str(arg) for arg in args])
        captured = capsys.readouterr()
        code = stop.value.code
        return CliResult(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1, started from the system's binaries, per session."""
    base = Path(tempfile.mkdtemp(prefix="mlstrata-pg-"))
    server = start_postgres(base)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """A real MariaDB server on 127.0.0.1 (Debian's mariadb-server binaries), per session;
    the tests that use it are skipped when the binaries are not installed."""
    if not binaries_present():
        pytest.skip("mariadb-server is not installed (.ci/run installs it)")
    base = Path(tempfile.mkdtemp(prefix="mlstrata-mariadb-"))
    server = start_mariadb(base)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def credit_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model package (``mlstrata run`` on synthetic credit data); copy it to modify it."""
    return build_credit_package(tmp_path_factory.mktemp("credit-package"))


@pytest.fixture(scope="session")
def uncontracted_packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two packages of a naive Bayes trained with no contract inferred: without a contract (the
    training ranges are its rules) and with a types-only contract (no ranges: 1e300 → NaN)."""
    return build_uncontracted_packages(tmp_path_factory.mktemp("uncontracted"))
