"""The budgeted search: greedy ensemble selection, the budget, reproducibility, text labels."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlstrata.errors import ConfigError
from mlstrata.model.automl import automl
from mlstrata.model.cv import CVResult
from mlstrata.model.search_ensemble import select_weights
from mlstrata.model.search_space import FAMILIES, families_for
from mlstrata.model.train import train
from mlstrata.package.onnx_export import onnx_problem
from mlstrata.workspace import Workspace
from tests._factories import make_dataset
from tests.model._fitted import _empty_mlflow_db, _template, write_config  # noqa: F401


def _oof(proba: list[list[float]]) -> CVResult:
    values = np.array(proba, dtype=float)
    pred = np.array(["a", "b"], dtype=object)[values.argmax(axis=1)]
    return CVResult("m", {}, {}, 0.0, 0.0, pred, values, np.ones(len(values), dtype=bool),
                    classes=["a", "b"])


def test_greedy_selection_blends_models_that_err_on_different_rows() -> None:
    y = np.array(["a", "a", "b", "b"], dtype=object)
    # each model ranks one pair of rows wrongly; their average ranks every row right
    left = _oof([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.2, 0.8]])
    right = _oof([[0.4, 0.6], [0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    useless = _oof([[0.5, 0.5]] * 4)
    weights = select_weights([left, right, useless], y, "roc_auc")
    assert weights[0] > 0 and weights[1] > 0 and weights[2] == 0


def test_families_start_cheap_and_knn_only_on_small_data() -> None:
    for family in FAMILIES.values():
        start = family.initial()
        assert start.get("n_estimators", 4) == 4 and start.get("max_iter", 4) == 4
        assert family.from_unit(family.to_unit(start)).keys() == start.keys()
    assert "knn" in [f.candidate for f in families_for("binary", 1_000)]
    assert "knn" not in [f.candidate for f in families_for("binary", 50_000)]
    assert [f.candidate for f in families_for("regression", 100, ["ridge", "lightgbm"])] == [
        "ridge", "lightgbm"]


def _credit(template: Path, mlflow_db: Path, where: Path) -> Workspace:
    shutil.copytree(template, where)
    shutil.copy(mlflow_db, where / ".mlstrata" / "mlflow.db")
    return Workspace(where)


def test_a_budget_below_the_minimum_is_refused_before_anything_is_fitted(
    _template: Path, _empty_mlflow_db: Path, tmp_path: Path,  # noqa: F811
) -> None:
    ws = _credit(_template, _empty_mlflow_db, tmp_path / "p")
    with pytest.raises(ConfigError, match=r"too small to fit even one model on 900 rows; the "
                                          r"minimum is 10 s"):
        automl(ws, "credit", time_budget=3)
    with pytest.raises(ConfigError, match="give --time-budget or --trials, not both"):
        automl(ws, "credit", time_budget=30, trials=3)
    assert ws.artifacts("model") == []


@pytest.mark.slow
def test_trials_give_the_same_winner_and_the_same_model_bytes(
    _template: Path, _empty_mlflow_db: Path, tmp_path: Path,  # noqa: F811
) -> None:
    results = [automl(_credit(_template, _empty_mlflow_db, tmp_path / name), "credit",
                      trials=14, onnx_check=onnx_problem) for name in ("one", "two")]
    first, second = results
    assert first.search is not None and len(first.search.trials) == 14
    assert first.search.budget_seconds is None and first.search.trials_requested == 14
    assert first.winner == second.winner
    assert [e.name for e in first.leaderboard] == [e.name for e in second.leaderboard]
    assert [e.score("roc_auc") for e in first.leaderboard] == [
        e.score("roc_auc") for e in second.leaderboard]
    # the artifact id is the sha256 of the stored model file
    assert first.model.id == second.model.id


class _Labels:
    """A progress display that keeps the label of every progress line it was shown."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def start(self, label: str, total: int) -> None:
        self.labels.append(label)

    def advance(self) -> None:
        pass


@pytest.mark.slow
def test_small_data_runs_two_trials_at_once(
    _template: Path, _empty_mlflow_db: Path, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlstrata.model import search

    monkeypatch.setattr(search, "_idle_core", lambda: True)  # as on a quiet machine
    shown = _Labels()
    result = automl(_credit(_template, _empty_mlflow_db, tmp_path / "p"), "credit",
                    time_budget=15, progress=shown)
    assert result.search is not None
    pairs = [label for label in shown.labels if " + " in label]
    assert pairs, shown.labels  # e.g. "trial 3: lightgbm + trial 4: xgboost"
    numbers = [t.number for t in result.search.trials]
    assert numbers == list(range(len(numbers)))  # listed in the order they were started
    assert "running" not in {t.state for t in result.search.trials}


@pytest.mark.slow
def test_train_searches_by_default_within_its_one_budget(
    _template: Path, _empty_mlflow_db: Path, tmp_path: Path,  # noqa: F811
) -> None:
    from mlflow import MlflowClient

    ws = write_config(_credit(_template, _empty_mlflow_db, tmp_path / "p"),
                      "model: {search: {time_budget_seconds: 25}}")
    result = train(ws, "credit", onnx_check=onnx_problem)
    summary = result.search
    assert summary is not None and summary.budget_seconds == 25
    assert summary.trials[0].candidate == "logistic" and summary.trials[0].state == "complete"
    assert summary.elapsed_seconds <= 1.1 * 25, summary.to_dict()
    assert summary.within_budget
    report = result.to_dict()
    assert report["search"]["budget_seconds"] == 25 and report["cv_score"] == pytest.approx(
        result.cv_score)
    assert report["elapsed_seconds"] == pytest.approx(summary.elapsed_seconds, abs=1e-3)
    metrics = MlflowClient(result.tracking_uri).get_run(result.mlflow_run_id).data.metrics
    assert metrics["budget_requested_seconds"] == 25
    assert metrics["budget_actual_seconds"] == pytest.approx(summary.elapsed_seconds)
    assert {"dummy"} < {e.name for e in result.leaderboard}
    assert not math.isnan(result.cv_score) and result.cv_score > 0.7


LABELS = """CASE WHEN x1 + x2 > 1.3 THEN 'high' WHEN x1 + x2 > 0.7 THEN 'mid' ELSE 'low' END"""


@pytest.mark.slow
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_text_multiclass_and_regression_search_to_an_onnx_model(
    workspace: Workspace, task: str,
) -> None:
    inner = ("SELECT (hash(range) % 1000) / 1000.0 AS x1, (hash(range * 7) % 1000) / 1000.0 "
             "AS x2, CASE range % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END AS city "
             "FROM range(400)")
    target = LABELS if task == "multiclass" else "x1 * 3 + x2 + (city = 'a')::INT"
    make_dataset(workspace, f"SELECT *, {target} AS y FROM ({inner})", target="y")
    result = automl(workspace, "toy", trials=10, onnx_check=onnx_problem)
    assert result.task == task and result.winner != "dummy"
    if task == "multiclass":
        assert result.model.meta["classes"] == ["high", "low", "mid"]
        assert result.cv_score > 0.8
    else:
        assert result.metric == "rmse" and result.cv_score < 0.5
    assert result.model.meta["onnx"] is True


def test_stacking_is_judged_on_out_of_fold_predictions_before_it_is_cross_validated(
    workspace: Workspace, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from mlstrata.model.search_ensemble import stacked_score

    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    a, b = y + rng.normal(scale=0.5, size=300), y + rng.normal(scale=0.5, size=300)
    pool = [CVResult("m", {}, {}, 0.0, 0.0, p, None, np.ones(300, dtype=bool)) for p in (a, b)]
    assert stacked_score(pool, y, "regression", "rmse", seed=0) < 0.45  # each alone: ~0.5
    ws = write_config(workspace, """
        model:
          candidates: [logistic, tree]
          cv: {folds: 3}
          tune: {top_k: 0}
          ensembles: [stacking]
    """)
    make_dataset(ws, "SELECT (hash(range) % 1000) / 1000.0 AS x1, (hash(range * 7) % 1000) / "
                     "1000.0 AS x2, CASE WHEN (hash(range) % 1000) + (hash(range * 7) % 1000) + "
                     "(hash(range * 13) % 600) > 1300 THEN 'yes' ELSE 'no' END AS y "
                     "FROM range(300)", target="y")
    with caplog.at_level(logging.WARNING, logger="mlstrata.model.train"):
        result = train(ws, "toy")
    assert result.search is None  # tune / ensembles configured: the classic stages
    stacked = "stacking" in [e.name for e in result.leaderboard]
    assert stacked != ("ensemble stacking skipped" in caplog.text)
