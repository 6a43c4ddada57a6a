"""The configured pipeline on a new history version: the challenger and its verdicts.

The same steps as ``mlstrata run`` after ingest, with the same settings (``pipeline:`` and
``model:`` in ``mlstrata.yaml``): clean with the recipe (refitted on the new version), validate
against the contract, split, train (``train``'s default search), package, evaluate the business
gates, run the acceptance test on the sealed rows, register. A failed validation stops here;
failed gates or a failed acceptance test are kept as reasons the challenger may not be promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..workspace import Artifact, Workspace
from .report import RetrainReport

__all__ = ["Challenger", "train_challenger"]


@dataclass(frozen=True)
class Challenger:
    """The trained challenger, its registry version and why it may not be promoted (if so)."""

    model: Artifact
    version: int
    package: Path
    problems: list[str] = field(default_factory=list)


def train_challenger(ws: Workspace, version: Artifact, contract: Path, report: RetrainReport,
                     step: Callable[[str], None]) -> Challenger | None:
    """Run the pipeline on ``version``; None (the report says why) when validation fails."""
    from ..data.clean import clean_dataset
    from ..data.split import split_dataset
    from ..data.validate import validate_target

    settings = ws.config.pipeline
    dataset = version
    if settings.recipe:
        step("cleaning with the recipe")
        dataset, recipe, _ = clean_dataset(ws, version.ref, ws.root / settings.recipe)
        report.step("clean", "ran", f"{dataset.ref} by {recipe.ref}")
    step("validating")
    validation = validate_target(ws, dataset.ref, contract)
    if not validation.passed:
        blocking = [r for r in validation.failed if r.blocking]
        failed = ", ".join(r.rule.name for r in blocking[:5])
        report.step("validate", "failed", failed)
        report.status = "failed"
        report.reasons = [f"{dataset.ref} breaks {len(blocking)} rule(s) of "
                          f"{contract.name} ({failed}); run 'mlstrata validate {dataset.ref}'"]
        return None
    report.step("validate", "passed", contract.name)
    step("splitting")
    split = split_dataset(ws, dataset.ref, strategy=settings.split.strategy,
                          fraction=settings.split.val, seed=settings.split.seed,
                          group=settings.split.group)
    report.step("split", "ran", split.artifact.ref)
    return _model_steps(ws, dataset, report, step)


def _model_steps(ws: Workspace, dataset: Artifact, report: RetrainReport,
                 step: Callable[[str], None]) -> Challenger:
    from ..model.acceptance import run_acceptance
    from ..model.evaluate import evaluate_model
    from ..model.train import train
    from ..package.builder import build_package
    from ..package.onnx_export import onnx_problem
    from ..package.registry import register

    step("training the challenger")
    trained = train(ws, dataset.ref, onnx_check=onnx_problem)
    model = trained.model
    report.step("train", "ran", f"{model.ref} ({trained.winner})")
    report.challenger = {"model": model.ref, "model_id": model.id, "winner": trained.winner}
    step("packaging")
    package = build_package(ws, model.ref).path
    report.step("package", "ran", str(package))
    step("checking the gates")
    gates = evaluate_model(ws, model.ref, package, latency="gated")
    failed_gates = [g.gate for g in gates.gates if not g.passed]
    report.step("evaluate", "passed" if gates.passed else "failed", ", ".join(failed_gates))
    step("acceptance test")
    settings = ws.config.retrain
    acceptance = run_acceptance(ws, model.ref, n_boot=settings.bootstrap, seed=settings.seed)
    overfit = [m.metric for m in acceptance.metrics if m.overfit]
    behaviour = [b.name for b in acceptance.behaviour if not b.passed]
    report.step("test", "passed" if acceptance.passed else "failed",
                ", ".join([*overfit, *behaviour]))
    step("registering")
    registered = register(ws, model.ref, package)
    report.challenger["registered"] = f"{registered.name}@{registered.version}"
    report.step("register", "ran", f"{registered.name}@{registered.version}")
    problems = []
    if failed_gates:
        problems.append(f"business gate(s) failed: {', '.join(failed_gates)}")
    if not acceptance.passed:
        problems.append("the acceptance test failed ("
                        + ", ".join([*(f"{m} overfit" for m in overfit), *behaviour]) + ")")
    return Challenger(model, registered.version, package, problems)
