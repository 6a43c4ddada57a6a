"""MLflow tracking: embedded SQLite default, nested candidate runs, dataset input, lineage tags."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from mlstrata.model.tracking import (
    TrackingError,
    default_tracking_uri,
    resolve_uri,
    training_run,
)
from mlstrata.workspace import Workspace


def _client(uri: str):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_default_uri_is_sqlite_in_the_store(workspace: Workspace) -> None:
    assert default_tracking_uri(workspace) == f"sqlite:///{workspace.store / 'mlflow.db'}"
    assert resolve_uri(workspace) == default_tracking_uri(workspace)
    assert resolve_uri(workspace, "http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_config_uri_overrides_the_default(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "p")
    (ws.root / "mlstrata.yaml").write_text("model:\n  tracking_uri: sqlite:///elsewhere.db\n")
    assert resolve_uri(Workspace(ws.root)) == "sqlite:///elsewhere.db"


def test_a_run_logs_candidates_dataset_tags_and_artifacts(workspace: Workspace) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    report = workspace.root / "train.json"
    report.write_text("{}")
    with training_run(workspace, run_name="toy@1") as run:
        run.log_dataset(frame, name="toy@1", digest="ab" * 32, target="y")
        child = run.log_candidate(
            "logistic", params={"C": 1.0, "penalty": ["l2"]},
            metrics={"roc_auc": {"mean": 0.9, "std": 0.01}},
            timings={"fit_seconds": 0.1, "predict_seconds": 0.01},
        )
        run.set_lineage({"dataset_id": "ab" * 32, "split_id": None, "model_id": "cd" * 32})
        run.log_metrics({"roc_auc": 0.9})
        run.log_artifacts([report])
    client = _client(run.uri)
    parent = client.get_run(run.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlstrata.dataset_id"] == "ab" * 32
    assert parent.data.tags["mlstrata.model_id"] == "cd" * 32
    assert "mlstrata.split_id" not in parent.data.tags
    assert parent.inputs.dataset_inputs[0].dataset.name == "toy@1"
    assert parent.inputs.dataset_inputs[0].dataset.digest.startswith("abab")
    nested = client.get_run(child)
    assert nested.data.tags["mlflow.parentRunId"] == run.run_id
    assert nested.info.experiment_id == parent.info.experiment_id == run.experiment_id
    assert nested.data.metrics["cv_roc_auc_mean"] == pytest.approx(0.9)
    assert nested.data.params["penalty"] == "['l2']"
    assert [a.path for a in client.list_artifacts(run.run_id, "report")] == ["report/train.json"]
    artifact_dir = workspace.store / "mlruns"
    assert any(artifact_dir.rglob("train.json"))


def test_a_failing_training_marks_the_run_failed(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError), training_run(workspace, run_name="boom") as run:
        raise RuntimeError("boom")
    assert _client(run.uri).get_run(run.run_id).info.status == "FAILED"


def test_unreachable_server_fails_fast_with_one_line(workspace: Workspace) -> None:
    started = time.monotonic()
    with pytest.raises(TrackingError) as caught, training_run(
        workspace, uri="http://127.0.0.1:9", run_name="x"
    ):
        pytest.fail("the body must not run")
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "http://127.0.0.1:9" in message and "--tracking-uri" in message
    assert "\n" not in message
