"""``mlstrata retrain NAME``: a new batch → the next version of the history → a challenger →
compared with the champion on the same sealed rows → promoted, or kept out with the reasons.

In order, under the retrain lock of ``NAME`` (:mod:`.lock`):

1. find the champion (registry alias ``champion``) and the history version it learnt from;
2. check the batch (:func:`.history.check_batch`): it must carry the history's columns, read
   with its types, clean with the stored recipe and pass the contract — else it is refused and
   nothing changes;
3. ask the policy (``retrain:`` in ``mlstrata.yaml``) whether a retrain is due — if not,
   nothing changes;
4. append the batch (:func:`.history.append_batch`) and run the configured pipeline on the new
   version: clean (the recipe refitted), validate, split, train (the configured search),
   package, evaluate (gates), test (acceptance), register — the **challenger**;
5. compare it with the champion on the newest batch's sealed slice and on the whole sealed
   history (:mod:`.compare`), and promote it to ``champion`` only when it passed every gate and
   the acceptance test and beats the champion on the deciding rows by the margin with the
   configured confidence. Otherwise the champion stays and the challenger, if it passed its
   gates, gets the alias ``challenger`` (for ``serve NAME@champion --shadow NAME@challenger``).

The previous champion stays registered, so ``mlstrata models rollback NAME`` restores it; a
server started with ``serve NAME@champion`` follows the alias without dropping a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..config import RetrainConfig
from ..data.sources import SourceSpec
from ..errors import ConfigError, MlstrataError, RefNotFoundError
from ..workspace import Artifact, Workspace
from .compare import SliceComparison, compare_models
from .history import AppendedBatch, append_batch, batches_of, check_batch, history_root
from .lock import retrain_lock
from .report import RETRAIN_KIND, RetrainReport

__all__ = ["RetrainRequest", "Trigger", "due_reasons", "retrain"]

Trigger = Literal["manual", "schedule", "drift"]
Notify = Callable[[str], None]


@dataclass(frozen=True)
class RetrainRequest:
    """One retrain: the dataset, its new batch, what triggered it and whether to skip the
    policy (``force``)."""

    name: str
    source: SourceSpec
    trigger: Trigger = "manual"
    force: bool = False


@dataclass(frozen=True)
class _Champion:
    registered: str
    version: int
    model: Artifact


def retrain(ws: Workspace, request: RetrainRequest, notify: Notify | None = None
            ) -> RetrainReport:
    """Run one retrain (see the module docstring); the report says what happened and why."""
    step = notify or (lambda _: None)
    settings = ws.config.retrain
    started = time.perf_counter()
    with retrain_lock(ws.store, request.name, ws.command):
        report = RetrainReport(request.name, trigger=request.trigger,
                               decide_on=settings.decide_on, margin=settings.margin)
        registered = ws.config.model.registry_name or request.name
        champion = _champion(ws, registered)
        report.champion = _champion_dict(champion)
        previous = history_root(ws, champion.model if champion else None, request.name)
        contract = _contract(ws, request.name)
        rows, _ = check_batch(ws, request.source, previous,
                              champion.model if champion else None, contract, step)
        report.batch = {"source": request.source.location, "rows": rows}
        due, why = due_reasons(settings, rows, champion.model if champion else None,
                               request.trigger)
        report.reasons = why
        if not (due or request.force):
            report.seconds = time.perf_counter() - started
            return report
        if request.force and not due:
            report.reasons = ["forced (--force)"]
        _check_budget(ws, champion.model if champion else None, previous, rows)
        report.step("check batch", "passed", f"{rows} rows; contract {contract.name} holds")
        appended = append_batch(ws, request.source, request.name, previous,
                                settings.history_batches, step)
        report.batch.update(appended.to_dict())
        report.step("append", "ran", f"{appended.version.ref} (previous {previous.ref})")
        try:
            _challenge(ws, report, appended, champion, contract, registered, step)
        except MlstrataError as exc:
            report.status, report.reasons = "failed", [str(exc)]
        report.seconds = time.perf_counter() - started
        _store(ws, report, appended)
        return report


def due_reasons(settings: RetrainConfig, rows: int, champion: Artifact | None,
                trigger: Trigger, now: datetime | None = None) -> tuple[bool, list[str]]:
    """Whether the policy makes a retrain due, and why (or why not).

    >>> from mlstrata.config import RetrainConfig
    >>> due_reasons(RetrainConfig(min_new_rows=500), 120, None, "manual")
    (True, ['there is no champion yet'])
    """
    if champion is None:
        return True, ["there is no champion yet"]
    age = ((now or datetime.now(UTC)) - datetime.fromisoformat(champion.created_at)
           ).total_seconds() / 86400
    due: list[str] = []
    not_due: list[str] = []
    (due if rows >= settings.min_new_rows else not_due).append(
        f"the batch has {rows} rows ({'>=' if rows >= settings.min_new_rows else '<'} "
        f"retrain.min_new_rows {settings.min_new_rows})")
    if settings.max_model_age_days is not None:
        old = age >= settings.max_model_age_days
        (due if old else not_due).append(
            f"the champion is {age:.1f} days old ({'>=' if old else '<'} "
            f"retrain.max_model_age_days {settings.max_model_age_days:g})")
    if trigger == "drift":
        (due if settings.on_drift else not_due).append(
            "mlstrata monitor found drift or decay" + ("" if settings.on_drift
                                                       else " (retrain.on_drift is off)"))
    return (True, due) if due else (False, not_due)


def _check_budget(ws: Workspace, champion: Artifact | None, previous: Artifact,
                  rows: int) -> None:
    """Refuse, before the batch is appended, a search budget too small to fit one model on
    about as many rows as the challenger will train on (the window's training sides)."""
    from ..model.search_run import check_budget, settings_for

    task = str(champion.meta.get("task")) if champion is not None else ws.config.model.task
    settings = settings_for(ws.config.model, task)
    if settings is None:
        return
    window = ws.config.retrain.history_batches
    earlier = batches_of(previous)  # the new batch joins the newest window - 1 of them
    if window is not None:
        earlier = earlier[max(len(earlier) - (window - 1), 0):]
    history = sum(int(ws.get(str(b["dataset"])).meta.get("rows", 0)) for b in earlier)
    fraction = float(previous.meta.get("sealed_fraction") or 0.0)
    check_budget(settings, history + round(rows * (1 - fraction)))


def _champion(ws: Workspace, registered: str) -> _Champion | None:
    from ..package.registry import RegisteredVersion, show

    try:
        version = show(ws, f"{registered}@champion")
    except RefNotFoundError:
        return None
    if not isinstance(version, RegisteredVersion) or not version.model_id:
        raise RefNotFoundError(f"{registered}@champion was not registered by mlstrata; promote "
                               "a version trained in this workspace first")
    return _Champion(registered, version.version, ws.get(version.model_id))


def _champion_dict(champion: _Champion | None) -> dict[str, Any] | None:
    if champion is None:
        return None
    return {"registered": f"{champion.registered}@{champion.version}",
            "model": champion.model.ref, "model_id": champion.model.id,
            "trained_at": champion.model.created_at}


def _contract(ws: Workspace, name: str) -> Path:
    relative = ws.config.pipeline.contract or f"contracts/{name}.yaml"
    path = ws.root / relative
    if not path.is_file():
        raise ConfigError(f"{path}: no contract for {name}, so a new batch cannot be checked; "
                          f"run 'mlstrata run' or 'mlstrata contract infer {name}' first")
    return path


def _challenge(ws: Workspace, report: RetrainReport, appended: AppendedBatch,
               champion: _Champion | None, contract: Path, registered: str,
               step: Notify) -> None:
    """Train the challenger on the new version, compare it and decide."""
    from .pipeline import train_challenger

    challenger = train_challenger(ws, appended.version, contract, report, step)
    if challenger is None:
        return
    step("comparing with the champion on the sealed rows")
    settings = ws.config.retrain
    metric = settings.metric or str(challenger.model.meta.get("metric"))
    report.comparisons = compare_models(
        ws, champion.model if champion else None, challenger.model,
        _slices(ws, appended), metric=metric, resamples=settings.bootstrap, seed=settings.seed,
        confidence=settings.confidence)
    report.step("compare", "ran", f"{metric}, {settings.bootstrap} paired resamples")
    reasons = [*challenger.problems, *_comparison_problems(report.comparisons, settings)]
    _decide(ws, report, challenger, registered, reasons)


def _slices(ws: Workspace, appended: AppendedBatch) -> list[tuple[str, list[Artifact]]]:
    """The newest batch's sealed slice, and every batch's (the whole sealed history)."""
    every = [ws.get(str(item["testset"])) for item in batches_of(appended.version)
             if item.get("testset")]
    newest = [appended.slice] if appended.slice is not None else []
    return [(name, rows) for name, rows in (("newest", newest), ("history", every)) if rows]


def _comparison_problems(comparisons: list[SliceComparison], settings: RetrainConfig
                         ) -> list[str]:
    deciding = next((c for c in comparisons if c.slice == settings.decide_on), None)
    if deciding is None:
        return [f"no sealed rows in the {settings.decide_on} slice to decide on"]
    if deciding.beats(settings.margin):
        return []
    return [f"on the {deciding.slice} sealed rows ({deciding.rows}) its {deciding.metric} is "
            f"{deciding.challenger:.4f} against the champion's {deciding.champion:.4f}: "
            f"improvement {deciding.improvement:+.4f}, {deciding.confidence:.0%} interval "
            f"[{deciding.low:+.4f}, {deciding.high:+.4f}] does not clear the margin "
            f"{settings.margin:g}"]


def _decide(ws: Workspace, report: RetrainReport, challenger: Any, registered: str,
            reasons: list[str]) -> None:
    from ..package.registry import promote

    ref = f"{registered}@{challenger.version}"
    if reasons:
        report.status, report.reasons = "kept", reasons
        if not challenger.problems:
            promote(ws, ref, alias="challenger")
            report.step("alias", "ran", f"{ref} is the challenger (serve it with --shadow)")
        return
    promote(ws, ref, alias="champion")
    deciding = next((c for c in report.comparisons if c.slice == report.decide_on), None)
    report.status = "promoted"
    report.reasons = ["there was no champion" if deciding is None or deciding.low is None else
                      f"its {deciding.metric} beats the champion's on the {deciding.slice} "
                      f"sealed rows by {deciding.improvement:+.4f} ({deciding.confidence:.0%} "
                      f"interval [{deciding.low:+.4f}, {deciding.high:+.4f}] above the margin "
                      f"{report.margin:g})"]
    report.step("promote", "ran", f"{ref} is the champion (the previous one stays registered "
                                  f"for 'mlstrata models rollback {registered}')")


def _store(ws: Workspace, report: RetrainReport, appended: AppendedBatch) -> None:
    """Keep the report in the catalog, with lineage to the version (and the challenger)."""
    inputs = {"dataset": appended.version.id}
    if report.challenger and report.challenger.get("model_id"):
        inputs["model"] = str(report.challenger["model_id"])
    ws.put_bytes(report.to_json().encode(), suffix=".json", kind=RETRAIN_KIND,
                 name=f"{report.name}.retrain", inputs=inputs,
                 meta={"status": report.status, "reasons": report.reasons,
                       "dataset": appended.version.id,
                       "challenger": (report.challenger or {}).get("model_id")},
                 description=f"retrain of {report.name}: {report.status}")
