"""``mlstrata automl``: JSON contract, refused budgets, and an ordinary model afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlstrata.workspace import Workspace
from tests.model._fitted import (  # noqa: F401
    _empty_mlflow_db,
    _template,
    credit,
    tracked,
)


def test_refused_budgets_are_one_line_and_store_nothing(credit: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    small = cli("automl", "credit", "--time-budget", "2", cwd=credit.root)
    assert small.code == 2 and "\n" not in small.err.strip()
    assert "too small to fit even one model on 900 rows; the minimum is 10 s" in small.err
    both = cli("automl", "credit", "--time-budget", "30", "--trials", "3", cwd=credit.root)
    assert both.code == 2 and "give --time-budget or --trials, not both" in both.err
    assert credit.artifacts("model") == []


@pytest.mark.slow
def test_automl_json_then_package_evaluate_test_register(tracked: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    result = cli("automl", "credit", "--trials", "10", "--json", cwd=tracked.root)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"] == "credit.model@1" and report["metric"] == "roc_auc"
    assert report["winner"] in {e["name"] for e in report["leaderboard"]}
    assert 0.6 < report["cv_score"] <= 1 and report["elapsed_seconds"] > 0
    search = report["search"]
    assert search["trials_requested"] == 10 and search["trials"] == 10
    assert search["budget_seconds"] is None and len(search["history"]) == 10
    packaged = cli("package", "credit.model", "--json", cwd=tracked.root)
    assert packaged.code == 0, packaged.err
    assert cli("evaluate", "credit.model", cwd=tracked.root).code == 0
    assert cli("test", "credit.model", "--n-boot", "20", cwd=tracked.root).code == 0
    registered = cli("models", "register", "credit.model", "--json", cwd=tracked.root)
    assert registered.code == 0, registered.err


@pytest.mark.slow
def test_time_budget_holds_for_the_whole_process(tracked: Workspace) -> None:  # noqa: F811
    """The wall time of the real command — interpreter start, imports, search, refit, ONNX
    check, report, exit — stays within the budget plus the 10% the issue allows. (30 s: on the
    2-core machine under load a 20 s budget went to start-up and the first trial.)"""
    budget = 30.0
    command = [str(Path(sys.executable).with_name("mlstrata")), "automl", "credit",
               "--time-budget", f"{budget:g}", "--json"]
    begun = time.monotonic()
    done = subprocess.run(command, cwd=tracked.root, capture_output=True, text=True, check=False)
    wall = time.monotonic() - begun
    assert done.returncode == 0, done.stderr
    search = json.loads(done.stdout)["search"]
    shown = {k: search[k] for k in ("elapsed_seconds", "search_seconds", "trials", "stopped")}
    assert search["trials"] >= 1 and search["within_budget"] is True, shown
    assert search["elapsed_seconds"] <= wall
    assert wall <= 1.1 * budget, (wall, shown)
