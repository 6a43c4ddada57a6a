"""The dataset factory used by stage tests produces a readable dataset version."""

from __future__ import annotations

from mlstrata.data.datasets import open_dataset, workspace_connection
from mlstrata.workspace import Workspace

from .._factories import make_dataset


def test_factory_dataset_opens_with_types(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS x, 'a' || range AS s FROM range(10)", target="x")
    version = open_dataset(workspace, "toy")
    assert version.target == "x"
    assert [c["type"] for c in version.columns] == ["integer", "text"]
    count = version.relation(workspace_connection(workspace)).aggregate("count(*)").fetchall()
    assert count == [(10,)]
