"""Model checks: ``evaluate`` (business gates on validation rows) and ``test`` (acceptance test).

The model library is imported inside each command so ``mlstrata --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..reports import Report
from ._common import JsonOption, WorkspaceOption, emit_saved, open_workspace, progress_bar

__all__ = ["register"]

ModelArgument = Annotated[str, typer.Argument(help="Model: NAME, NAME@N or an id prefix.")]
OutOption = Annotated[Path | None, typer.Option(
    "--out", help="Folder for the JSON and HTML reports (default: the project's reports/).")]


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``test`` to ``app``."""
    app.command("evaluate")(evaluate)
    app.command("test")(test)


def evaluate(
    model: ModelArgument,
    package: Annotated[Path | None, typer.Option(
        "--package", help="A built package directory: adds ONNX latency, sizes the package.",
    )] = None,
    out: OutOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Check MODEL against the gates in mlstrata.yaml on validation rows; exit 1 if one fails.

    Gates (model.gates): metric thresholds ('roc_auc >= 0.8', 'recall >= 0.7 at precision >= 0.6'),
    a cost matrix that picks the decision threshold, max_latency_ms and max_package_mb.
    """
    from ..model.evaluate import evaluate_model

    ws = open_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"evaluating {model}", total=None)
        report = evaluate_model(ws, model, package.absolute() if package else None)
    _finish(report, out or ws.reports_dir, f"{report.model.name}-v{report.model.version}-evaluate",
            as_json, report.passed)


def test(
    model: ModelArgument,
    n_boot: Annotated[int, typer.Option(
        "--n-boot", min=10, help="Bootstrap resamples for the 95% intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of the probe rows.")] = 0,
    out: OutOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Run the acceptance test of MODEL on the sealed test set; exit 1 if it fails.

    The only command that reads the sealed test set (each read is logged). Reports metrics with
    bootstrap 95% intervals, the gap to the validation estimate (overfitting) and the behavioural
    tests of model.tests. A model that fails cannot be promoted.
    """
    from ..model.acceptance import run_acceptance

    ws = open_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"acceptance test of {model}", total=None)
        report = run_acceptance(ws, model, n_boot=n_boot, seed=seed)
    _finish(report, out or ws.reports_dir, f"{report.model.name}-v{report.model.version}-test",
            as_json, report.passed)


def _finish(report: Report, directory: Path, stem: str, as_json: bool, passed: bool) -> None:
    """Save the report, print it, and exit 1 on failure."""
    emit_saved(report, as_json, directory, stem)
    if not passed:
        raise typer.Exit(1)
