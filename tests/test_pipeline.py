"""``mlstrata run``: the whole pipeline end to end, then again with every step skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from mlstrata.data.synth import write_credit
from mlstrata.pipeline import RunReport, StepOutcome, run_pipeline
from mlstrata.workspace import Workspace

CONFIG = """
project: pipeline-test
model:
  candidates: [logistic, tree]
  cv: {folds: 3}
  tune: {top_k: 0}
  ensembles: []
  gates: {metrics: ["roc_auc >= 0.55"]}
pipeline:
  source: data/credit.csv
  name: credit
  target: default
  key: application_id
  recipe: recipe.yaml
  split: {strategy: stratified, val: 0.2, seed: 0}
  register_model: false
"""
RECIPE = """steps:
  - filter: {sql: "regexp_full_match(postal_code, '[0-9]{5}')"}
  - impute: {columns: [income], strategy: median}
"""


@pytest.fixture
def project(tmp_path: Path) -> Workspace:
    root = tmp_path / "project"
    Workspace.init(root)
    (root / "mlstrata.yaml").write_text(CONFIG)
    (root / "recipe.yaml").write_text(RECIPE)
    write_credit(root / "data" / "credit.csv", rows=1500, seed=3)
    return Workspace(root)


@pytest.mark.slow
def test_run_executes_every_step_then_skips_unchanged_ones(project: Workspace, cli) -> None:  # type: ignore[no-untyped-def]
    first = run_pipeline(project)
    assert first.passed, first.to_dict()
    assert [s.step for s in first.steps] == [
        "ingest", "clean", "validate", "split", "train", "package", "evaluate", "test"]
    assert {s.status for s in first.steps} == {"ran"}
    package = Path(first.steps[5].outputs["path"])
    assert (package / "model.onnx").is_file() and (package / "model_card.html").is_file()

    again = cli("run", "--json", "-w", project.root)
    assert again.code == 0, again.err
    statuses = {s["step"]: s["status"] for s in json.loads(again.out)["steps"]}
    assert set(statuses.values()) == {"skipped"}
    shown = cli("run", "-w", project.root)  # what a person reads says it without --json
    assert shown.code == 0, shown.err
    assert "all 8 steps skipped (inputs unchanged)" in shown.out
    assert all(f"│ {step:<8} │ skipped " in shown.out for step in statuses)

    (project.root / "recipe.yaml").write_text(RECIPE + "  - dedupe: {}\n")
    third = run_pipeline(Workspace(project.root))
    status = {s.step: s.status for s in third.steps}
    assert status["ingest"] == "skipped" and status["clean"] == "ran"


def test_run_without_a_pipeline_section_is_one_clear_error(workspace: Workspace, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "-w", workspace.root)
    assert result.code == 2
    assert "'pipeline.source'" in result.err and len(result.err.strip().splitlines()) == 1


def test_the_run_table_says_what_ran_was_skipped_or_failed_with_short_ids() -> None:
    dataset = "0123456789ab" + "c" * 52
    report = RunReport([
        StepOutcome("ingest", "ran", {"dataset": dataset}),
        StepOutcome("clean", "skipped", {"dataset": dataset}, "inputs unchanged"),
        StepOutcome("validate", "failed", {"passed": False, "failed_rules": ["[age].min"]},
                    "1 contract rule(s) failed"),
    ])
    console = Console(record=True, width=120)
    report.render_terminal(console)
    text = console.export_text()
    assert "3 steps: 1 ran, 1 skipped (inputs unchanged), 1 failed (validate; later steps did " \
           "not run)" in text
    assert "│ clean    │ skipped │ dataset=0123456789ab " in text and dataset not in text
    assert "failed_rules=['[age].min']" in text  # markup in outputs is printed verbatim
    assert report.to_dict()["steps"][0]["outputs"]["dataset"] == dataset
