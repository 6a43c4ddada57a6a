"""Fixtures of the online tests: a workspace with an online model on the test stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlstrata.online.creation import CreateRequest, create_online
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.workspace import Workspace

from . import _redis, _stream


@pytest.fixture
def online_ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    """A workspace holding the online logistic regression ``loans`` (no events yet)."""
    contract = _stream.write_contract(tmp_path / "contract.yaml")
    create_online(workspace, CreateRequest(name="loans", target="paid", contract=contract),
                  CheckpointPolicy(events=100))
    return workspace


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real ``redis-server`` on 127.0.0.1 for the session (skipped when not installed)."""
    with _redis.redis_server() as url:
        yield url
