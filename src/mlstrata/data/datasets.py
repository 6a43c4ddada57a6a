"""Dataset versions as stages see them: a Parquet file in the store plus its catalog metadata.

A dataset version is the training side of an ingest (or the output of ``clean``); the sealed test
set is a separate ``testset`` artifact that only the acceptance test may open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..workspace import SEALED_KIND, Artifact, Workspace
from .engine import connect, parquet_scan

__all__ = ["DATASET_KINDS", "DatasetVersion", "open_dataset", "workspace_connection"]

DATASET_KINDS = ("dataset", SEALED_KIND)


@dataclass(frozen=True)
class DatasetVersion:
    """An opened dataset version: where its Parquet lies and what the catalog says about it."""

    artifact: Artifact
    path: Path

    @property
    def meta(self) -> Mapping[str, Any]:
        """The catalog metadata recorded at ingest (rows, columns, target, PII findings...)."""
        return self.artifact.meta

    @property
    def columns(self) -> list[dict[str, str]]:
        """``[{"name": ..., "type": ...}]`` with mlstrata's logical types."""
        return list(self.meta.get("columns", []))

    @property
    def target(self) -> str | None:
        """The target column named at ingest, if any."""
        return self.meta.get("target")

    def relation(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
        """A lazy DuckDB relation over the version's Parquet file."""
        return con.sql(f"SELECT * FROM {parquet_scan(self.path)}")


def open_dataset(ws: Workspace, ref: str, purpose: str = "training") -> DatasetVersion:
    """Resolve ``ref`` to a dataset version and check that ``purpose`` may read it."""
    artifact = ws.resolve(ref, DATASET_KINDS)
    return DatasetVersion(artifact, ws.path_for_read(artifact, purpose))


def workspace_connection(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection using the workspace's memory settings and spill folder."""
    return connect(ws.config.data, ws.store / "tmp" / "duckdb")
