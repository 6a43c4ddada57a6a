"""mlstrata train: leaderboard output, JSON, and one-line errors that store nothing."""

from __future__ import annotations

import json

import pytest

from mlstrata.workspace import Workspace
from tests._factories import make_dataset

X = "(hash(range) % 1000) / 1000.0"
CONFIG = """model:
  candidates: [logistic, tree]
  cv: {folds: 3}
  tune: {top_k: 0}
  ensembles: []
"""


def _project(ws: Workspace, config: str = CONFIG) -> Workspace:
    (ws.root / "mlstrata.yaml").write_text(config)
    return Workspace(ws.root)


def _toy(ws: Workspace, label: str = f"CASE WHEN {X} > 0.5 THEN 'yes' ELSE 'no' END",
         rows: int = 120, target: str | None = "y", column: str = "y") -> None:
    make_dataset(ws, f"SELECT {X} AS x, range % 4 AS k, {label} AS {column} FROM range({rows})",
                 target=target)


def _nothing_stored(ws: Workspace) -> bool:
    reports = list(ws.reports_dir.glob("*-train.*")) if ws.reports_dir.exists() else []
    return ws.artifacts("model") == [] and reports == []


def test_train_prints_the_leaderboard_model_and_report(workspace: Workspace, cli) -> None:  # type: ignore[no-untyped-def]
    ws = _project(workspace)
    _toy(ws)
    result = cli("train", "toy", "-w", ws.root)
    assert result.code == 0, result.err
    assert "leaderboard (roc_auc, binary)" in result.out
    for name in ("logistic", "tree", "dummy"):
        assert name in result.out
    model = ws.artifacts("model")[0]
    assert f"model {model.ref}" in result.out
    assert "toy.model-v1-train.html" in result.out.replace("\n", "")
    assert (ws.reports_dir / "toy.model-v1-train.html").is_file()


def test_train_json(workspace: Workspace, cli) -> None:  # type: ignore[no-untyped-def]
    ws = _project(workspace)
    _toy(ws)
    result = cli("train", "toy", "-w", ws.root, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"] == "toy.model@1" and report["metric"] == "roc_auc"
    assert {e["name"] for e in report["leaderboard"]} == {"logistic", "tree", "dummy"}
    assert all("mean" in e["metrics"]["roc_auc"] for e in report["leaderboard"])


@pytest.mark.parametrize(("config", "data", "message"), [
    (CONFIG, {"target": None, "column": "verdict"}, "has no target column"),
    (CONFIG, {"label": "'same'"}, "has a single value"),
    (CONFIG, {"label": f"CASE WHEN {X} > 0.5 THEN 'yes' WHEN {X} > 0.1 THEN 'no' END"},
     "is missing in"),
    (CONFIG, {"rows": 2, "label": "CASE WHEN range = 0 THEN 'a' ELSE 'b' END"},
     "fewer than model.cv.folds=3"),
    (CONFIG.replace("logistic, tree", "logistic, lightgbn"), {}, "did you mean lightgbm"),
    (CONFIG + "  params:\n    tree: {max_dept: 3}\n", {}, "model.params.tree: unknown "
     "hyper-parameter 'max_dept'"),
    (CONFIG + "  params:\n    forest: {}\n", {}, "model.params: unknown model 'forest'"),
])
def test_user_mistakes_are_one_line_and_store_nothing(  # type: ignore[no-untyped-def]
    workspace: Workspace, cli, config: str, data: dict[str, object], message: str
) -> None:
    ws = _project(workspace, config)
    _toy(ws, **data)  # type: ignore[arg-type]
    result = cli("train", "toy", "-w", ws.root)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert _nothing_stored(ws)


def test_unreachable_tracking_uri(workspace: Workspace, cli) -> None:  # type: ignore[no-untyped-def]
    ws = _project(workspace)
    _toy(ws)
    result = cli("train", "toy", "-w", ws.root, "--tracking-uri", "http://127.0.0.1:9")
    assert result.code == 2
    assert "MLflow tracking URI http://127.0.0.1:9 failed or cannot be reached" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert _nothing_stored(ws)


def test_help_names_the_options(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("train", "--help")
    assert result.code == 0
    assert "--tracking-uri" in result.out and "--json" in result.out
