"""train(): leaderboard, tuning, ensembles, refit on training rows, stored model, report, MLflow."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pyarrow.parquet as pq
import pytest

from mlstrata.data.split import split_dataset
from mlstrata.errors import DataError
from mlstrata.model.artifact import load_model
from mlstrata.model.train import _rank, _winner, train
from mlstrata.model.train_report import Entry
from mlstrata.workspace import Workspace
from tests._factories import make_dataset

ROWS = 300
FEATURES = """
    range AS row_id,
    (hash(range) % 1000) / 1000.0 AS x1,
    (hash(range * 7) % 1000) / 1000.0 AS x2,
    CASE range % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END AS city
"""
SIGNAL = "(hash(range) % 1000) / 1000.0 + (hash(range * 7) % 1000) / 1000.0"


def _configure(ws: Workspace, body: str) -> Workspace:
    (ws.root / "mlstrata.yaml").write_text("model:\n" + body)
    return Workspace(ws.root)


def _binary(ws: Workspace) -> None:
    noise = "(hash(range * 13) % 400) / 1000.0"
    label = f"CASE WHEN {SIGNAL} + {noise} > 1.2 THEN 'yes' ELSE 'no' END"
    make_dataset(ws, f"SELECT {FEATURES}, {label} AS y FROM range({ROWS})", target="y")


def test_binary_training_end_to_end(workspace: Workspace) -> None:
    ws = _configure(workspace, """
  candidates: [logistic, tree]
  cv: {folds: 3}
  tune: {top_k: 1, trials: 2, timeout_seconds: 60}
  ensembles: [voting, bagging]
""")
    _binary(ws)
    stages: list[str] = []

    class Recorder:
        def start(self, label: str, total: int) -> None:
            stages.append(label)

        def advance(self) -> None:
            stages.append("+")

    result = train(ws, "toy", progress=Recorder())
    names = [e.name for e in result.leaderboard]
    assert set(names) == {"dummy", "logistic", "tree", "logistic-tuned", "voting", "bagging"}
    scores = [e.score("roc_auc") for e in result.leaderboard]
    assert scores == sorted(scores, reverse=True)
    winner = result.leaderboard[names.index(result.winner)]
    assert winner.eligible and winner.name != "dummy"
    assert result.leaderboard[0].score("roc_auc") >= 0.8
    assert "cross-validating logistic" in stages and stages.count("+") >= 3 * 5
    assert [e["column"] for e in result.excluded] == ["row_id"]
    assert result.tuning[0].candidate == "logistic" and result.tuning[0].trials == 2
    # the stored model
    meta = result.model.meta
    assert meta["task"] == "binary" and meta["target"] == "y" and meta["metric"] == "roc_auc"
    assert meta["classes"] == ["no", "yes"] and meta["threshold"] is None
    assert [i["name"] for i in meta["inputs"]] == ["x1", "x2", "city"]
    assert meta["cv"]["roc_auc"]["mean"] == pytest.approx(winner.score("roc_auc"))
    assert meta["mlflow_run_id"] == result.mlflow_run_id
    assert len(meta["leaderboard"]) == 6 and meta["excluded"][0]["column"] == "row_id"
    assert {role for role, _ in ws.parents(result.model.id)} == {"dataset"}
    _, pipeline = load_model(ws, result.model.ref)
    assert pipeline.predict_proba(ws_features(ws).head(3)).shape == (3, 2)
    # the report and the error analysis
    assert result.errors is not None and result.errors.confusion
    report = json.loads(result.report_paths["json"].read_text())
    assert report["winner"] == result.winner and report["model"] == result.model.ref
    html = result.report_paths["html"].read_text()
    assert "Leaderboard" in html and "data:image/png;base64," in html
    assert "<script src=" not in html
    _check_mlflow(result.tracking_uri, result.mlflow_run_id, result.model.id)


def ws_features(ws: Workspace):  # type: ignore[no-untyped-def]
    return pq.read_table(ws.path_for_read(ws.resolve("toy"))).to_pandas()


def _check_mlflow(uri: str, run_id: str, model_id: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.tags["mlstrata.model_id"] == model_id
    assert run.inputs.dataset_inputs[0].dataset.name == "toy@1"
    children = client.search_runs([run.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{run_id}'")
    assert len(children) == 6
    assert {a.path for a in client.list_artifacts(run_id, "report")} == {
        "report/toy.model-v1-train.json", "report/toy.model-v1-train.html"}
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == [
        "plots/calibration.png", "plots/confusion.png"]


def test_a_winner_whose_onnx_export_fails_is_passed_over(
    workspace: Workspace, caplog: pytest.LogCaptureFixture,
) -> None:
    ws = _configure(workspace, """
  candidates: [logistic, tree]
  cv: {folds: 2}
  tune: {top_k: 0}
  ensembles: []
""")
    _binary(ws)
    checked: list[str] = []

    def refuse_the_first(pipeline: Any, rows: Any, task: str) -> str | None:
        checked.append(type(pipeline[-1]).__name__)
        return "ONNX differs by 0.5" if len(checked) == 1 else None

    with caplog.at_level(logging.WARNING, logger="mlstrata.model.train"):
        result = train(ws, "toy", onnx_check=refuse_the_first)
    first, second = [e.name for e in result.leaderboard if e.eligible][:2]
    assert result.winner == second and len(checked) == 2
    assert f"{first} cannot win, its ONNX export fails: ONNX differs by 0.5" in caplog.text
    assert result.model.meta["entry"] == second


def test_winner_is_refitted_on_training_rows_only(workspace: Workspace) -> None:
    ws = _configure(workspace, """
  task: regression
  candidates: [tree]
  cv: {folds: 2}
  tune: {top_k: 0}
  ensembles: []
""")
    make_dataset(ws, f"SELECT {FEATURES}, {SIGNAL} * 10 AS y FROM range({ROWS})", target="y")
    split_dataset(ws, "toy", strategy="random", fraction=0.2)
    result = train(ws, "toy")
    _, pipeline = load_model(ws, result.model.ref)
    split = dict(ws.parents(result.model.id))["split"]
    subsets = pq.read_table(ws.path_for_read(split)).column("subset").to_pylist()
    validation = subsets.count("validation")
    assert 0 < validation < ROWS
    assert int(pipeline[-1].tree_.n_node_samples[0]) == ROWS - validation
    assert result.model.meta["split"] == split.id
    assert result.errors is not None and result.errors.residuals is not None
    assert result.metric == "rmse" and not result.greater_is_better


def test_an_exhausted_time_budget_skips_tuning_and_costly_ensembles(
    workspace: Workspace, caplog: pytest.LogCaptureFixture,
) -> None:
    ws = _configure(workspace, """
  candidates: [logistic, tree]
  cv: {folds: 3}
  tune: {top_k: 2, trials: 5}
  ensembles: [voting, stacking]
  time_budget_seconds: 0.001
""")
    _binary(ws)
    with caplog.at_level(logging.WARNING, logger="mlstrata.model.train"):
        result = train(ws, "toy")
    assert {e.name for e in result.leaderboard} == {"dummy", "logistic", "tree", "voting"}
    assert result.tuning == []
    assert any("ensemble stacking skipped" in r.getMessage() and "time_budget_seconds"
               in r.getMessage() for r in caplog.records)
    voting = next(e for e in result.leaderboard if e.name == "voting")
    assert voting.result.oof_mask.all() and len(voting.result.fold_scores["roc_auc"]) == 3


def test_clustering_chooses_k_and_stores_kmeans(workspace: Workspace) -> None:
    ws = _configure(workspace, """
  task: clustering
  candidates: [kmeans]
  cv: {folds: 2}
""")
    make_dataset(ws, "SELECT (range % 3) * 10 + (hash(range) % 100) / 100.0 AS a, "
                     "(range % 3) * -5 + (hash(range * 3) % 100) / 100.0 AS b FROM range(150)")
    result = train(ws, "toy")
    assert result.clusters is not None and result.errors is None
    assert result.model.meta["params"]["n_clusters"] == 3
    assert result.metric == "silhouette" and result.winner == "kmeans"
    assert result.model.meta["task"] == "clustering" and result.model.meta["classes"] is None


def _entry(name: str, kind: str, score: float, eligible: bool = True) -> Entry:
    return Entry(name, name, kind, {}, {"roc_auc": (score, 0.0)}, 0.0, 0.0,  # type: ignore[arg-type]
                 eligible, eligible)


def test_ensembles_win_only_when_strictly_better() -> None:
    board = [_entry("voting", "ensemble", 0.9), _entry("lightgbm-tuned", "tuned", 0.9),
             _entry("lightgbm", "candidate", 0.9), _entry("nan", "candidate", math.nan)]
    assert [e.name for e in _rank(board, "roc_auc")] == [
        "lightgbm", "lightgbm-tuned", "voting", "nan"]
    better = [_entry("lightgbm", "candidate", 0.9), _entry("voting", "ensemble", 0.91)]
    assert _winner(_rank(better, "roc_auc"), "roc_auc").name == "voting"


def test_an_unconvertible_model_cannot_win() -> None:
    board = [_entry("stacking", "ensemble", 0.99, eligible=False),
             _entry("dummy", "baseline", 0.98, eligible=False), _entry("tree", "candidate", 0.7)]
    assert _winner(_rank(board, "roc_auc"), "roc_auc").name == "tree"
    with pytest.raises(DataError, match="no model could win"):
        _winner(board[:2], "roc_auc")


def test_rmse_ranks_lowest_first() -> None:
    board = [_entry("a", "candidate", 2.0), _entry("b", "candidate", 1.0)]
    for e in board:
        e.metrics = {"rmse": e.metrics["roc_auc"]}
    assert [e.name for e in _rank(board, "rmse")] == ["b", "a"]
