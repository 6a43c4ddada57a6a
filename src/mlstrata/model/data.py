"""Training data as the model stratum sees it: features, target, task and the validation rows.

Reads the training side of a dataset version (never the sealed test set) into pandas, attaches
the recorded train/validation split when there is one, and decides the task from the config or
the target column. The sealed test set is opened only by :func:`load_sealed_test`, for the
acceptance test, and that read is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..config import TaskSetting
from ..data.clean import fitted_recipes_since_ingest
from ..data.datasets import open_dataset, workspace_connection
from ..data.engine import parquet_scan
from ..data.recipe import apply_fitted
from ..data.split import find_split
from ..data.target import TaskType, detect_task, resolve_target
from ..data.types import ColumnInfo
from ..errors import DataError
from ..workspace import ACCEPTANCE_PURPOSE, Artifact, Workspace

__all__ = ["TrainingData", "load_sealed_test", "load_training_data"]


@dataclass(frozen=True)
class TrainingData:
    """One dataset version ready for training: a frame, its target, task and validation mask."""

    dataset: Artifact
    split: Artifact | None
    frame: pd.DataFrame
    target: str | None
    task: TaskType | str
    columns: list[ColumnInfo]
    is_validation: np.ndarray[Any, np.dtype[np.bool_]]

    @property
    def feature_columns(self) -> list[ColumnInfo]:
        """Every column except the target."""
        return [c for c in self.columns if c.name != self.target]

    def features(self, subset: str = "train") -> pd.DataFrame:
        """The feature frame of ``subset`` (``train``, ``validation`` or ``all``)."""
        return self._rows(subset)[[c.name for c in self.feature_columns]]

    def labels(self, subset: str = "train") -> pd.Series:
        """The target values of ``subset``."""
        if self.target is None:
            raise DataError("this dataset has no target; clustering has no labels to return")
        return self._rows(subset)[self.target]

    def _rows(self, subset: str) -> pd.DataFrame:
        if subset == "all":
            return self.frame
        if subset not in ("train", "validation"):
            raise ValueError(f"subset must be train, validation or all, got {subset!r}")
        mask = self.is_validation if subset == "validation" else ~self.is_validation
        return self.frame.loc[mask]


def load_training_data(ws: Workspace, ref: str, task: TaskSetting = "auto") -> TrainingData:
    """Load dataset ``ref`` (training side) with its newest split and its task.

    ``task="clustering"`` needs no target; any other task needs the dataset's target (declared at
    ingest) and checks that it is trainable (not constant, no missing labels).
    """
    dataset = open_dataset(ws, ref)
    columns = [ColumnInfo(c["name"], c["type"], c["engine_type"])  # type: ignore[arg-type]
               for c in dataset.columns]
    frame = pq.read_table(dataset.path).to_pandas()
    split = find_split(ws, dataset.artifact)
    is_validation = _validation_mask(ws, split, len(frame))
    if task == "clustering":
        return TrainingData(dataset.artifact, split, frame, None, "clustering", columns,
                            is_validation)
    target, detected = _target_and_task(ws, dataset.artifact, columns, dataset.path)
    return TrainingData(dataset.artifact, split, frame, target,
                        detected if task == "auto" else task, columns, is_validation)


def _validation_mask(
    ws: Workspace, split: Artifact | None, rows: int
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if split is None:
        return np.zeros(rows, dtype=bool)
    subset = pq.read_table(ws.path_for_read(split), columns=["subset"]).column(0).to_numpy()
    if len(subset) != rows:
        raise DataError(f"split {split.ref} has {len(subset)} rows but the dataset has {rows}; "
                        "run 'mlstrata split' again on this dataset version")
    return np.asarray(subset == "validation", dtype=bool)


def _target_and_task(
    ws: Workspace, dataset: Artifact, columns: list[ColumnInfo], path: Any
) -> tuple[str, TaskType]:
    resolved = resolve_target(columns, dataset.meta.get("target"))
    if resolved is None:
        raise DataError(f"{dataset.ref} has no target column; ingest it with --target COL "
                        "or set model.task: clustering in mlstrata.yaml")
    column, source = resolved
    con = workspace_connection(ws)
    try:
        sql = f"SELECT * FROM {parquet_scan(path)}"
        info = detect_task(con, sql, column, source)
    finally:
        con.close()
    info.require_trainable()
    if info.task is None:
        raise DataError(f"target '{column.name}' of {dataset.ref} is not a trainable type")
    return column.name, info.task


def load_sealed_test(ws: Workspace, model: Artifact) -> pd.DataFrame:
    """The sealed test set of the data a model was trained on, cleaned like its training data.

    Only the acceptance test calls this; the read is logged with the ``acceptance-test`` purpose.
    The fitted recipes between the ingested version and the training version are replayed on the
    test rows in order (their statistics were fitted on training rows, so nothing leaks).
    """
    dataset = ws.get(str(model.meta["dataset"]))
    testset_id = dataset.meta.get("testset")
    if not testset_id:
        raise DataError(f"{dataset.ref} has no sealed test set (ingested with "
                        "--test-fraction 0); the acceptance test needs one")
    path = ws.path_for_read(ws.get(str(testset_id)), ACCEPTANCE_PURPOSE)
    con = workspace_connection(ws)
    try:
        sql = f"SELECT * FROM {parquet_scan(path)}"
        for _, fitted in fitted_recipes_since_ingest(ws, dataset)[1]:
            sql = apply_fitted(con, fitted, sql)
        return con.execute(sql).df()
    finally:
        con.close()
