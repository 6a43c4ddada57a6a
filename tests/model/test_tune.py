"""Optuna tuning: seeded TPE, fold pruning, resumable studies in SQLite and shared PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlstrata.config import TuneConfig
from mlstrata.errors import ConfigError
from mlstrata.model.candidates import CANDIDATES
from mlstrata.model.tune import FoldReport, storage_url, study_name, tune_candidate
from mlstrata.workspace import Workspace

TREE = CANDIDATES["tree"]


def _evaluate(calls: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """A cheap objective: best at max_depth 6; three folds reported one by one."""

    def evaluate(params: dict[str, Any], report: FoldReport) -> tuple[float, Any]:
        calls.append(params)
        scores = []
        for fold in range(3):
            scores.append(-abs(params["max_depth"] - 6) - 0.01 * fold)
            report(fold, scores[-1])
        return sum(scores) / 3, {"params": params}

    return evaluate


def _tune(storage: str, study: str, trials: int, calls: list[dict[str, Any]], seed: int = 0):  # type: ignore[no-untyped-def]
    config = TuneConfig(trials=trials, timeout_seconds=60)
    return tune_candidate(TREE, "binary", _evaluate(calls), greater_is_better=True,
                          config=config, storage=storage, study=study, seed=seed)


def test_storage_defaults_to_sqlite_in_the_workspace(workspace: Workspace) -> None:
    assert storage_url(workspace, TuneConfig()) == f"sqlite:///{workspace.store / 'optuna.db'}"
    shared = TuneConfig(storage="postgresql://me@127.0.0.1:5432/optuna")
    assert storage_url(workspace, shared) == "postgresql+psycopg://me@127.0.0.1:5432/optuna"
    name = study_name("f" * 64, "tree", "binary", "roc_auc")
    assert name == "mlstrata-ffffffffffff-tree-binary-roc_auc"


def test_tuning_is_seeded_and_keeps_the_best_result(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        calls: list[dict[str, Any]] = []
        tuning = _tune(f"sqlite:///{tmp_path / name}.db", "s", 6, calls)
        runs.append(calls)
    assert runs[0] == runs[1]
    assert tuning.trials == tuning.new_trials == 6
    assert tuning.best_score == max(-abs(c["max_depth"] - 6) - 0.01 for c in runs[1])
    assert tuning.result == {"params": tuning.best_params}
    assert tuning.to_dict()["best_params"] == tuning.best_params


def test_a_rerun_resumes_the_study(workspace: Workspace) -> None:
    storage = storage_url(workspace, TuneConfig())
    first = _tune(storage, "s", 3, [])
    again_calls: list[dict[str, Any]] = []
    again = _tune(storage, "s", 3, again_calls)
    assert again_calls == [] and again.new_trials == 0 and again.trials == 3
    assert again.best_params == first.best_params and again.result is None
    more = _tune(storage, "s", 5, [])
    assert (more.trials, more.new_trials) == (5, 2)


def test_trials_trailing_the_median_are_pruned(tmp_path: Path) -> None:
    tuning = _tune(f"sqlite:///{tmp_path / 'p'}.db", "s", 12, [])
    assert tuning.pruned > 0
    assert tuning.trials == 12


def test_a_trial_running_past_the_time_budget_is_pruned_at_its_next_fold(
    tmp_path: Path,
) -> None:
    folds: list[int] = []

    def slow(params: dict[str, Any], report: FoldReport) -> tuple[float, Any]:
        for fold in range(3):
            time.sleep(0.3)
            folds.append(fold)
            report(fold, 0.5)
        return 0.5, None

    tuning = tune_candidate(TREE, "binary", slow, greater_is_better=True,
                            config=TuneConfig(trials=5, timeout_seconds=60),
                            storage=f"sqlite:///{tmp_path / 't'}.db", study="s", seed=0,
                            timeout_seconds=0.1)
    assert folds == [0] and (tuning.trials, tuning.pruned) == (1, 1)
    assert tuning.best_params == {}


def test_bad_storage_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.tune.storage: cannot open Optuna storage"):
        _tune("nosuchdb://x", "s", 1, [])


@pytest.mark.postgres
def test_two_machines_share_one_study_in_postgres(postgres) -> None:  # type: ignore[no-untyped-def]
    storage = storage_url(None, TuneConfig(storage=postgres.url))  # type: ignore[arg-type]
    first_calls: list[dict[str, Any]] = []
    second_calls: list[dict[str, Any]] = []
    first = _tune(storage, "shared", 3, first_calls, seed=1)
    second = _tune(storage, "shared", 6, second_calls, seed=2)
    assert (first.trials, second.trials, second.new_trials) == (3, 6, 3)
    assert len(first_calls) == len(second_calls) == 3
    assert second.best_score is not None and first.best_score is not None
    assert second.best_score >= first.best_score
    assert "postgresql+psycopg://mlstrata@" in second.to_dict()["storage"]
