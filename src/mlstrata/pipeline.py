"""``mlstrata run``: the configured pipeline, end to end, skipping steps whose inputs are unchanged.

Steps, in order: ingest → clean → validate → split → train → evaluate → test → package →
register. Each step has a key — a digest of its input artifact ids, the files it reads and the
config it uses — kept in ``.mlstrata/pipeline.json`` with its outputs. When the key is unchanged
and the outputs still exist, the step is skipped. A failed validation, gate or acceptance test
stops the run (exit 1); nothing after it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import _atomic
from .config import PipelineConfig
from .errors import ConfigError
from .reports import Report, html_page, table
from .workspace import Workspace

__all__ = ["RunReport", "StepOutcome", "run_pipeline"]

Notify = Callable[[str], None]
Action = Callable[[], "dict[str, Any] | tuple[dict[str, Any], Report]"]
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class StepOutcome:
    """One step of a run: ran, skipped (unchanged) or failed, with what it produced."""

    step: str
    status: str
    outputs: dict[str, Any]
    detail: str = ""
    report: Report | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row of the run table."""
        return {"step": self.step, "status": self.status, "outputs": self.outputs,
                "detail": self.detail}


@dataclass
class RunReport(Report):
    """The outcome of every step of ``mlstrata run``."""

    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no step failed."""
        return all(step.status != "failed" for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """Every step with its status and outputs."""
        return {"passed": self.passed, "steps": [step.to_dict() for step in self.steps]}

    def summary(self) -> str:
        """One line saying how many steps ran, were skipped (inputs unchanged) or failed.

        >>> RunReport([StepOutcome("ingest", "skipped", {}), StepOutcome("split", "ran", {}),
        ...            StepOutcome("train", "failed", {})]).summary()
        '3 steps: 1 ran, 1 skipped (inputs unchanged), 1 failed (train; later steps did not run)'
        >>> RunReport([StepOutcome("ingest", "skipped", {})] * 9).summary()
        'all 9 steps skipped (inputs unchanged)'
        """
        counts = Counter(step.status for step in self.steps)
        if counts["skipped"] == len(self.steps) > 0:
            return f"all {len(self.steps)} steps skipped (inputs unchanged)"
        failed = [step.step for step in self.steps if step.status == "failed"]
        notes = {"skipped": " (inputs unchanged)",
                 "failed": f" ({', '.join(failed)}; later steps did not run)"}
        parts = [f"{counts[status]} {status}{notes.get(status, '')}"
                 for status in ("ran", "skipped", "failed") if counts[status]]
        return f"{len(self.steps)} steps: {', '.join(parts) or 'none ran'}"

    def render_terminal(self, console: Console) -> None:
        """Each step's own report (leaderboard, gates...), the table of steps, then the summary."""
        for step in self.steps:
            if step.report is not None:
                console.rule(f"[bold]{step.step}")
                step.report.render_terminal(console)
        grid = Table("step", "status", "outputs", "detail", title="mlstrata run")
        colour = {"ran": "green", "skipped": "cyan", "failed": "red"}
        for step in self.steps:
            grid.add_row(step.step, f"[{colour[step.status]}]{step.status}[/]",
                         escape(_outputs_cell(step.outputs)), escape(step.detail))
        console.print(grid)
        console.print(f"[bold {'green' if self.passed else 'red'}]{escape(self.summary())}[/]")

    def to_html(self) -> str:
        """The same table as a self-contained page."""
        rows = [{**s.to_dict(), "outputs": json.dumps(s.outputs)} for s in self.steps]
        return html_page("mlstrata run", [("Steps", [table(rows)])])


def _outputs_cell(outputs: dict[str, Any]) -> str:
    """``key=value`` pairs, artifact ids cut to 12 characters (a prefix ``mlstrata show`` takes).

    >>> _outputs_cell({"model": "ab" * 32, "winner": "voting"})
    'model=abababababab, winner=voting'
    """
    return ", ".join(f"{key}={_short_id(value)}" for key, value in outputs.items())


def _short_id(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 64 and all(c in _HEX for c in value):
        return value[:12]
    return value


class _StepFailed(Exception):
    """A step whose verdict is 'failed' (validation, gates, acceptance): the run stops."""

    def __init__(self, outputs: dict[str, Any], detail: str, report: Report | None) -> None:
        super().__init__(detail)
        self.outputs = outputs
        self.detail = detail
        self.report = report


class _Run:
    """Runs steps against the remembered state, recording what ran, skipped or failed."""

    def __init__(self, ws: Workspace, notify: Notify) -> None:
        self.ws = ws
        self.notify = notify
        self.state_path = ws.store / "pipeline.json"
        self.state: dict[str, Any] = (json.loads(self.state_path.read_text())
                                      if self.state_path.exists() else {})
        self.report = RunReport()

    def step(self, name: str, key_parts: list[Any], action: Action,
             still_valid: Callable[[dict[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
        text = json.dumps(key_parts, sort_keys=True, default=str)
        key = hashlib.sha256(text.encode()).hexdigest()
        remembered = self.state.get(name)
        if remembered and remembered["key"] == key and still_valid(remembered["outputs"]):
            self.report.steps.append(StepOutcome(name, "skipped", remembered["outputs"],
                                                 "inputs unchanged"))
            return dict(remembered["outputs"])
        self.notify(name)
        try:
            result = action()
        except _StepFailed as failed:
            self.report.steps.append(StepOutcome(name, "failed", failed.outputs, failed.detail,
                                                 failed.report))
            self._forget(name)
            raise
        outputs, report = result if isinstance(result, tuple) else (result, None)
        self.state[name] = {"key": key, "outputs": outputs}
        _atomic.write_text(self.state_path, json.dumps(self.state, indent=2))
        self.report.steps.append(StepOutcome(name, "ran", outputs, report=report))
        return outputs

    def _forget(self, name: str) -> None:
        self.state.pop(name, None)
        _atomic.write_text(self.state_path, json.dumps(self.state, indent=2))

    def exists(self, *ids: str) -> bool:
        """True when every artifact id is still in the catalog."""
        known = {artifact.id for artifact in self.ws.artifacts()}
        return all(i in known for i in ids)


def run_pipeline(ws: Workspace, notify: Notify | None = None) -> RunReport:
    """Execute the ``pipeline:`` section of ``mlstrata.yaml``; see the module docstring."""
    settings = ws.config.pipeline
    _check_settings(ws, settings)
    run = _Run(ws, notify or (lambda _: None))
    try:
        dataset = _data_steps(run, settings)
        _model_steps(run, settings, dataset)
    except _StepFailed:
        pass
    return run.report


def _check_settings(ws: Workspace, settings: PipelineConfig) -> None:
    if not settings.source or not settings.name:
        raise ConfigError(
            f"{ws.root / 'mlstrata.yaml'}: key 'pipeline.source' and 'pipeline.name' are "
            "required for 'mlstrata run'; add e.g. pipeline: {source: data/credit.csv, "
            "name: credit, target: default}"
        )
    for key in ("source", "recipe", "contract"):
        value = getattr(settings, key)
        if value and key != "contract" and "://" not in value and not (ws.root / value).exists():
            raise ConfigError(f"{ws.root / 'mlstrata.yaml'}: key 'pipeline.{key}': file "
                              f"{value!r} does not exist (paths are relative to {ws.root})")


def _file_digest(ws: Workspace, relative: str | None) -> str | None:
    if not relative or "://" in relative:
        return relative
    return _atomic.sha256_file(ws.root / relative)


def _data_steps(run: _Run, settings: PipelineConfig) -> str:
    """Ingest → clean → validate → split; returns the id of the dataset to train on."""
    from .data.clean import clean_dataset
    from .data.ingest import IngestOptions, ingest
    from .data.sources import SourceSpec
    from .data.split import split_dataset

    ws = run.ws
    source = settings.source or ""
    source = source if "://" in source else str(ws.root / source)

    def do_ingest() -> dict[str, Any]:
        spec = SourceSpec(location=source, schema=dict(ws.config.data.schema_overrides))
        options = IngestOptions(name=settings.name or "", target=settings.target,
                                key=settings.key, time=settings.time)
        return {"dataset": ingest(ws, spec, options).dataset.id}

    ingested = run.step("ingest", [_file_digest(ws, settings.source), settings.model_dump(),
                                   ws.config.data.model_dump()], do_ingest,
                        lambda out: run.exists(out["dataset"]))["dataset"]
    dataset = ingested
    if settings.recipe:
        recipe = str(ws.root / settings.recipe)

        def do_clean() -> dict[str, Any]:
            output, recipe_artifact, _ = clean_dataset(ws, ws.get(ingested).ref, Path(recipe))
            return {"dataset": output.id, "recipe": recipe_artifact.id}

        dataset = run.step("clean", [ingested, _file_digest(ws, settings.recipe)], do_clean,
                           lambda out: run.exists(out["dataset"]))["dataset"]
    _validate_step(run, settings, dataset)

    def do_split() -> dict[str, Any]:
        report = split_dataset(ws, ws.get(dataset).ref, strategy=settings.split.strategy,
                               fraction=settings.split.val, seed=settings.split.seed,
                               group=settings.split.group)
        return {"split": report.artifact.id}

    run.step("split", [dataset, settings.split.model_dump()], do_split,
             lambda out: run.exists(out["split"]))
    return str(dataset)


def _validate_step(run: _Run, settings: PipelineConfig, dataset: str) -> None:
    from .data.contract_infer import infer_contract_for
    from .data.validate import validate_target

    ws = run.ws
    ref = ws.get(dataset).ref
    contract = ws.root / (settings.contract or f"contracts/{settings.name}.yaml")
    if not contract.exists():
        infer_contract_for(ws, ref, contract)

    def do_validate() -> dict[str, Any]:
        report = validate_target(ws, ref, contract)
        outputs = {"passed": report.passed, "failed_rules": [r.rule.name for r in report.failed]}
        if not report.passed:
            raise _StepFailed(outputs, f"{len(report.failed)} contract rule(s) failed; "
                                       f"run 'mlstrata validate {ref}' for the failing rows",
                              report)
        return outputs

    run.step("validate", [dataset, _atomic.sha256_file(contract)], do_validate)


def _model_steps(run: _Run, settings: PipelineConfig, dataset: str) -> None:
    """Train → evaluate → test → package → register, each skipped when unchanged."""
    from .model.acceptance import run_acceptance
    from .model.evaluate import evaluate_model
    from .model.train import train
    from .package.builder import build_package
    from .package.onnx_export import onnx_problem
    from .package.registry import register

    ws = run.ws
    model_config = ws.config.model.model_dump()
    def do_train() -> tuple[dict[str, Any], Report]:
        result = train(ws, ws.get(dataset).ref, onnx_check=onnx_problem)
        return {"model": result.model.id, "winner": result.winner}, result

    model_id = run.step("train", [dataset, run.state.get("split", {}).get("outputs"),
                                  model_config], do_train,
                        lambda out: run.exists(out["model"]))["model"]
    model_ref = ws.get(model_id).ref

    def verdict(report: Any, what: str, command: str) -> tuple[dict[str, Any], Report]:
        outputs = {"passed": report.passed}
        if not report.passed:
            raise _StepFailed(outputs, f"{what} failed; see 'mlstrata {command} {model_ref}'",
                              report)
        return outputs, report

    def do_package() -> tuple[dict[str, Any], Report]:
        result = build_package(ws, model_ref)
        card = result.path / "model_card.html"
        return {"path": str(result.path), "model_card": str(card)}, result

    package_dir: dict[str, Any] = {}
    if settings.package:
        package_dir = run.step("package", [model_id], do_package,
                               lambda out: Path(out["path"]).is_dir())
    package = Path(package_dir["path"]) if package_dir else None
    run.step("evaluate", [model_id, model_config["gates"], str(package)],
             lambda: verdict(evaluate_model(ws, model_ref, package), "a business gate",
                             "evaluate"))
    run.step("test", [model_id, model_config["tests"]],
             lambda: verdict(run_acceptance(ws, model_ref), "the acceptance test", "test"))
    if settings.register_model:
        run.step("register", [model_id, ws.config.model.tracking_uri, str(package)],
                 lambda: {"version": register(ws, model_ref, package).version})
