"""``mlstrata automl``: JSON contract, refused budgets, and an ordinary model afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
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
    check, report, exit — stays within the budget plus the 10% the issue allows.

    On a machine loaded beyond its cores (CI runs the suite on 2 shared ones) every step runs
    slower than when it was measured. The search itself reads the clock and cannot run over
    by more than a fold; what can is the rest — start-up and the finish, timed against an
    estimate. So the allowance is that rest stretched by how far the load average sampled
    during the run exceeded the cores: none on a machine with a core to spare (the strict
    bound), and a run that overshoots its own finish estimate still fails."""
    budget = 30.0
    command = [str(Path(sys.executable).with_name("mlstrata")), "automl", "credit",
               "--time-budget", f"{budget:g}", "--json"]
    with _LoadSampler() as load:
        begun = time.monotonic()
        done = subprocess.run(command, cwd=tracked.root, capture_output=True, text=True,
                              check=False)
        wall = time.monotonic() - begun
    assert done.returncode == 0, done.stderr
    search = json.loads(done.stdout)["search"]
    shown = {k: search[k] for k in ("elapsed_seconds", "search_seconds", "trials", "stopped")}
    assert search["trials"] >= 1 and search["elapsed_seconds"] <= wall
    stretch = max(1.0, load.mean / (os.cpu_count() or 1))
    allowance = (stretch - 1.0) * (wall - search["search_seconds"])
    shown |= {"wall": round(wall, 1), "load": round(load.mean, 2),
              "allowance": round(allowance, 1)}
    assert wall <= 1.1 * budget + allowance, shown


class _LoadSampler:
    """The mean 1-minute load average over a block, sampled every half second."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(0.5):
                return

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)
