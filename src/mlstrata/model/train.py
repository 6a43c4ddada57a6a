"""``mlstrata train``: from a dataset version to a stored, tracked, cross-validated winner.

The stages, in order:

1. load the training side of the dataset (never the sealed test set, nor the validation rows of
   its split — those are for ``evaluate``), cut the folds; bad targets, too few rows and unknown
   config keys fail here, before anything is fitted or stored;
2. leakage guard + feature plan (identifiers, constants and leaking columns excluded by name);
3. cross-validate every candidate (plus the dummy baseline, which cannot win) → leaderboard;
4. tune the top ``model.tune.top_k`` candidates with Optuna; the tuned versions join the board;
5. ensembles (voting, stacking, bagging) of the best models join the board — and win only if
   they score strictly better. Soft voting is scored from its members' out-of-fold predictions
   (exactly what cross-validating it would give, at no cost); stacking and bagging are
   cross-validated;
6. refit the winner on all training rows, analyse its out-of-fold errors, store it as a ``model``
   artifact with lineage to the dataset (and split), write the JSON + HTML report and log it all
   to MLflow.

Time: the leaderboard always runs in full; tuning and ensembles share what is left of
``model.time_budget_seconds`` (see :class:`mlstrata.config.ModelConfig`) — tuning up to
70% of it, then each ensemble only if its estimated cost still fits.

Clustering follows the same path with k-means models, k chosen by silhouette (Davies-Bouldin
reported beside it), and no tuning or ensembles.

By default (``model.strategy: auto`` without ``tune`` / ``ensembles`` in mlstrata.yaml) stages 3
to 5 are replaced by the budgeted search (:mod:`mlstrata.model.search_run`): one absolute time
budget for the whole training, families and hyper-parameters searched cheapest first, a greedy
ensemble of the out-of-fold predictions — see ``mlstrata automl``.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..config import FeatureConfig, ModelConfig, SearchConfig
from ..errors import ConfigError, DataError
from ..reports import save_report
from ..workspace import Artifact, Workspace
from .artifact import store_model
from .candidates import CANDIDATES, Candidate, check_candidate_names, resolve_candidates
from .cv import CVResult, Fold, average_results, choose_k, cross_validate, make_folds
from .data import TrainingData, load_training_data
from .ensemble import Ensemble, Member, build_ensembles, fits_per_fold
from .error_analysis import ErrorAnalysis, analyze_errors
from .features import FeaturePlan, make_pipeline, plan_features
from .leakage import screen_features
from .metrics import greater_is_better, metric_names, primary_metric
from .search import Problem
from .search_ensemble import stacked_score
from .search_run import (
    Contender,
    SearchSettings,
    SearchSummary,
    check_budget,
    search_contenders,
    settings_for,
)
from .search_space import families_for
from .tracking import TrackedRun, training_run
from .train_report import Entry, EntryKind, TrainResult
from .tune import FoldReport, Tuning, storage_url, study_name, tune_candidate

__all__ = ["Progress", "train"]

_log = logging.getLogger(__name__)

_BASELINE = "dummy"
_AUTO_BUDGET = 1.5
"""Unset ``time_budget_seconds``: tuning and ensembles may take this many times the
leaderboard's time ..."""
_AUTO_BUDGET_FLOOR = 30.0
"""... and at least this many seconds (fixed costs such as the Optuna storage dominate on
small data)."""
_TUNING_SHARE = 0.7
"""The share of the time left after the leaderboard that tuning may use; the rest is for the
ensembles."""
_ENSEMBLE_MEMBERS = 3
_KIND_ORDER = {"baseline": 0, "candidate": 0, "tuned": 1, "ensemble": 2}


class Progress(Protocol):
    """Where ``train`` reports progress: one task per candidate / tuning / ensemble, by fold."""

    def start(self, label: str, total: int) -> None:
        """A new unit of work with ``total`` steps begins."""

    def advance(self) -> None:
        """One step (a fold) of the current unit is done."""


class _Silent:
    def start(self, label: str, total: int) -> None:
        """Nothing to show."""

    def advance(self) -> None:
        """Nothing to show."""


@dataclass(frozen=True)
class _Budget:
    """When tuning and the ensembles must be done, as ``time.monotonic()`` values."""

    tuning: float
    end: float

    @classmethod
    def after_board(cls, config: ModelConfig, started: float, board_started: float) -> _Budget:
        """The budget once the leaderboard is done (``started``: when ``train`` began)."""
        now = time.monotonic()
        if config.time_budget_seconds is None:
            end = now + max(_AUTO_BUDGET * (now - board_started), _AUTO_BUDGET_FLOOR)
        else:
            end = started + config.time_budget_seconds
        return cls(tuning=now + _TUNING_SHARE * max(0.0, end - now), end=end)


@dataclass(frozen=True)
class _Setup:
    """Everything fixed before the first model is fitted."""

    ws: Workspace
    data: TrainingData
    task: str
    X: pd.DataFrame
    y: pd.Series | None
    folds: list[Fold]
    plan: FeaturePlan
    metric: str
    metrics: list[str]
    candidates: list[Candidate]
    baseline: Candidate | None
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    levels: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.ws.config.model.seed

    @property
    def require_onnx(self) -> bool:
        return self.ws.config.model.require_onnx

    def params(self, candidate: str) -> dict[str, Any]:
        """The hyper-parameters ``model.params`` sets for ``candidate``."""
        return dict(self.ws.config.model.params.get(candidate, {}))

    def pipeline(self, estimator: Any) -> Any:
        return make_pipeline(self.plan, self.ws.config.model.features, estimator)


OnnxCheck = Callable[[Any, pd.DataFrame, str], str | None]
"""``(fitted pipeline, rows, task) -> why its ONNX export fails, or None``: the packager's
conversion and parity measurement, passed in by the callers (this layer cannot import it)."""


def train(
    ws: Workspace, ref: str, *, tracking_uri: str | None = None, progress: Progress | None = None,
    onnx_check: OnnxCheck | None = None, search: SearchConfig | None = None,
    budget_started: float | None = None,
) -> TrainResult:
    """Train on dataset ``ref`` as ``mlstrata.yaml`` says; store and return the winner.

    ``tracking_uri`` overrides ``model.tracking_uri``. With ``model.require_onnx``, an
    ``onnx_check`` is run on the refitted winner before it is stored; a winner that fails it is
    named and the next best takes its place. ``search`` (``mlstrata automl``) runs the budgeted
    search with these settings whatever ``model.strategy`` says; ``budget_started`` (a
    ``time.monotonic()`` value, default now) is when its time budget began — the command
    line passes its process's start, so the budget covers the whole command. Nothing is
    stored in the workspace when any stage fails.
    """
    started, clock, cpu = time.perf_counter(), time.monotonic(), time.process_time()
    budget_clock = clock if budget_started is None else min(budget_started, clock)
    shown: Progress = progress or _Silent()
    setup = _prepare(ws, ref)
    contention = (time.monotonic() - clock) / max(time.process_time() - cpu, 1e-3)
    settings = settings_for(ws.config.model, setup.task, search)
    if settings is not None:
        check_budget(settings, len(setup.X))
    dataset, split = setup.data.dataset, setup.data.split
    _seed_tracking_store(ws, tracking_uri)
    with training_run(ws, uri=tracking_uri, run_name=f"train {dataset.ref}") as run:
        run.log_dataset(setup.data.frame.loc[~setup.data.is_validation], name=dataset.ref,
                        digest=dataset.id, target=setup.data.target)
        run.set_lineage({"dataset_id": dataset.id, "split_id": split.id if split else None,
                         "raw_sha256": _raw_sha256(ws, dataset)})
        factories: dict[str, Callable[[], Any]] = {}
        plans: dict[str, FeaturePlan] = {}
        clusters, tunings, summary = None, [], None
        if setup.task == "clustering":
            board, clusters = _clustering_board(setup, run, shown, factories)
        elif settings is not None:
            searched = _search(setup, shown, settings, budget_clock, contention)
            board, summary = _search_entries(setup, run, factories, plans, searched)
        else:
            board_started = time.monotonic()
            board = _candidate_board(setup, run, shown, factories)
            budget = _Budget.after_board(ws.config.model, clock, board_started)
            tunings = _tune_top(setup, board, run, shown, factories, budget.tuning)
            board += _ensemble_board(setup, board, run, shown, factories, budget.end)
        ranked = _rank(board, setup.metric)
        winner, pipeline = _fitted_winner(setup, ranked, factories, onnx_check)
        model = _store(setup, pipeline, winner, ranked, run.run_id,
                       plans.get(winner.name, setup.plan))
        result = TrainResult(
            model=model, dataset=dataset.ref, task=setup.task, target=setup.data.target,
            metric=setup.metric, greater_is_better=greater_is_better(setup.metric),
            leaderboard=ranked, winner=winner.name, excluded=setup.plan.excluded,
            tuning=tunings, errors=_analyze(setup, winner), clusters=clusters,
            mlflow_run_id=run.run_id, tracking_uri=run.uri,
            seconds=time.perf_counter() - started, search=summary,
        )
        _publish(ws, result, run)
        if summary is not None:
            _log_budget(run, summary, time.monotonic() - budget_clock)
    return result


# -- preparation ------------------------------------------------------------------------------


def _seed_tracking_store(ws: Workspace, uri: str | None) -> None:
    """Give a workspace without one an empty, current MLflow SQLite store by copying a cached
    one: creating it runs MLflow's schema migrations, 3 s of CPU (20 s of wall time on a busy
    machine) that every new workspace would pay inside its training budget. The cached copy
    (``$XDG_CACHE_HOME/mlstrata/mlflow-<version>.db``) is made once per MLflow version."""
    import mlflow

    from .._atomic import atomic_path
    from .tracking import TrackingError, default_tracking_uri, mlflow_calls, resolve_uri

    store = ws.store / "mlflow.db"
    if resolve_uri(ws, uri) != default_tracking_uri(ws) or store.exists():
        return
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlstrata"
    template = cache / f"mlflow-{mlflow.__version__}.db"
    try:
        if not template.exists():
            with atomic_path(template) as fresh:
                empty = f"sqlite:///{fresh}"
                with mlflow_calls(empty, "store template"):
                    mlflow.MlflowClient(tracking_uri=empty).search_experiments()
        shutil.copyfile(template, store)
    except (OSError, TrackingError) as exc:
        store.unlink(missing_ok=True)
        _log.warning("no cached MLflow store (%s); MLflow creates one", exc)



def _prepare(ws: Workspace, ref: str) -> _Setup:
    """Load, check and plan everything; raises before any fitting on a user mistake."""
    config = ws.config.model
    _check_param_names(config.params)
    data = load_training_data(ws, ref, config.task)
    task = str(data.task)
    features = data.features("train")
    y = data.labels("train") if data.target is not None else None
    folds = make_folds(task, y if y is not None else np.zeros(len(features)), config.cv.folds,
                       config.cv.strategy, config.seed, _time_order(data, config.cv.strategy))
    train_rows = data.frame.loc[~data.is_validation]
    findings = screen_features(train_rows, data.target, task, data.columns, config.features,
                               seed=config.seed)
    levels = {c.name: int(features[c.name].nunique()) for c in data.feature_columns
              if c.type == "text"}
    plan = plan_features(data.columns, data.target, config.features, findings, task=task,
                         levels=levels)
    if config.require_onnx and not plan.onnx:
        raise ConfigError(f"mlstrata.yaml: model.features: {'; '.join(plan.notes)}; choose "
                          "another encoding or set model.require_onnx: false")
    metric = primary_metric(task, config.metric)
    candidates = resolve_candidates(config.candidates, task, len(features), config.require_onnx)
    names = {c.name for c in candidates}
    baseline = (CANDIDATES[_BASELINE] if task != "clustering" and _BASELINE not in names
                else None)
    for candidate in [*candidates, *([baseline] if baseline else [])]:
        candidate.build(task, config.params.get(candidate.name, {}), config.seed)
    return _Setup(ws, data, task, features[plan.inputs], y, folds, plan, metric,
                  [metric, *[m for m in metric_names(task) if m != metric]], candidates,
                  baseline, list(findings), levels)


def _check_param_names(params: Mapping[str, Any]) -> None:
    check_candidate_names(params, "model.params")


def _time_order(data: TrainingData, strategy: str) -> np.ndarray[Any, Any] | None:
    column = data.dataset.meta.get("time")
    if strategy != "time" or not column:
        return None
    return np.asarray(data.frame.loc[~data.is_validation, str(column)].to_numpy())


def _raw_sha256(ws: Workspace, artifact: Artifact) -> str | None:
    """The sha256 of the raw source bytes this dataset descends from (lineage walk)."""
    pending, seen = [artifact], set()
    while pending:
        current = pending.pop()
        if current.meta.get("raw_sha256"):
            return str(current.meta["raw_sha256"])
        if current.kind == "raw":
            return current.id
        seen.add(current.id)
        pending += [p for _, p in ws.parents(current.id) if p.id not in seen]
    return None


# -- cross-validation -------------------------------------------------------------------------


def _cross_validate(
    setup: _Setup, name: str, factory: Callable[[], Any], params: Mapping[str, Any],
    progress: Progress, report: FoldReport | None = None,
) -> CVResult:
    """Cross-validate on the setup's folds; each fold advances the progress bar and, when
    tuning, reports its score to the pruner (which may stop the trial)."""
    def on_fold(i: int, scores: dict[str, float]) -> None:
        progress.advance()
        if report is not None:
            report(i, scores[setup.metric])

    return cross_validate(factory, setup.X, setup.y, setup.folds, setup.task, setup.metrics,
                          on_fold, candidate=name, params=dict(params))


def _entry(
    setup: _Setup, run: TrackedRun, name: str, candidate: str, kind: EntryKind,
    params: Mapping[str, Any], result: CVResult, onnx: bool,
) -> Entry:
    """A leaderboard entry, logged as a nested MLflow run."""
    convertible = onnx and setup.plan.onnx
    run_id = run.log_candidate(
        name, params=params,
        metrics={m: {"mean": mean, "std": std} for m, (mean, std) in result.metrics.items()},
        timings={"fit_seconds": result.fit_seconds, "predict_seconds": result.predict_seconds},
        tags={"mlstrata.kind": kind},
    )
    eligible = kind != "baseline" and (convertible or not setup.require_onnx)
    return Entry(name, candidate, kind, dict(params), result.metrics, result.fit_seconds,
                 result.predict_seconds, convertible, eligible, run_id, result)


def _candidate_board(setup: _Setup, run: TrackedRun, progress: Progress,
                     factories: dict[str, Callable[[], Any]]) -> list[Entry]:
    """Every candidate (and the baseline) cross-validated with its configured parameters."""
    board = []
    pairs: list[tuple[Candidate, EntryKind]] = [(c, "candidate") for c in setup.candidates]
    if setup.baseline is not None:
        pairs.insert(0, (setup.baseline, "baseline"))
    for candidate, kind in pairs:
        board.append(_fit_candidate(setup, run, progress, factories, candidate,
                                    setup.params(candidate.name), candidate.name, kind))
    return board


def _fit_candidate(
    setup: _Setup, run: TrackedRun, progress: Progress,
    factories: dict[str, Callable[[], Any]], candidate: Candidate, params: dict[str, Any],
    name: str, kind: EntryKind, result: CVResult | None = None,
) -> Entry:
    def factory() -> Any:
        return setup.pipeline(candidate.build(setup.task, params, setup.seed))

    factories[name] = factory
    if result is None:
        progress.start(f"cross-validating {name}", len(setup.folds))
        result = _cross_validate(setup, name, factory, params, progress)
    return _entry(setup, run, name, candidate.name, kind, params, result, candidate.onnx)


# -- tuning and ensembles ---------------------------------------------------------------------


def _tune_top(setup: _Setup, board: list[Entry], run: TrackedRun, progress: Progress,
              factories: dict[str, Callable[[], Any]], until: float) -> list[Tuning]:
    """Tune the best ``top_k`` eligible candidates that have a search space, sharing the time
    until ``until`` (``time.monotonic()``) and ``tune.timeout_seconds``; add them to the
    board."""
    config = setup.ws.config.model.tune
    chosen = [e for e in _rank(board, setup.metric) if e.kind == "candidate" and e.eligible
              and CANDIDATES[e.candidate].space is not None][:config.top_k]
    deadline = min(time.monotonic() + config.timeout_seconds, until)
    storage = storage_url(setup.ws, config)
    tunings = []
    for left, entry in zip(range(len(chosen), 0, -1), chosen, strict=True):
        candidate = CANDIDATES[entry.candidate]
        budget = (deadline - time.monotonic()) / left
        if budget <= 0:
            break
        progress.start(f"tuning {candidate.name}", config.trials * len(setup.folds))
        tuning = tune_candidate(
            candidate, setup.task, _evaluator(setup, candidate, progress),
            greater_is_better=greater_is_better(setup.metric), config=config, storage=storage,
            study=study_name(setup.data.dataset.id, candidate.name, setup.task, setup.metric),
            seed=setup.seed, timeout_seconds=budget,
        )
        tunings.append(tuning)
        if tuning.best_params:
            params = {**setup.params(candidate.name), **tuning.best_params}
            board.append(_fit_candidate(setup, run, progress, factories, candidate, params,
                                        f"{candidate.name}-tuned", "tuned", tuning.result))
    return tunings


def _evaluator(setup: _Setup, candidate: Candidate,
               progress: Progress) -> Callable[[dict[str, Any], FoldReport], tuple[float, Any]]:
    def evaluate(suggested: dict[str, Any], report: FoldReport) -> tuple[float, Any]:
        params = {**setup.params(candidate.name), **suggested}

        def factory() -> Any:
            return setup.pipeline(candidate.build(setup.task, params, setup.seed))

        result = _cross_validate(setup, f"{candidate.name}-tuned", factory, params, progress,
                                 report)
        return result.metrics[setup.metric][0], result

    return evaluate


def _ensemble_board(setup: _Setup, board: list[Entry], run: TrackedRun, progress: Progress,
                    factories: dict[str, Callable[[], Any]], until: float) -> list[Entry]:
    """Ensembles of the best entry of each of the best distinct candidates; each one whose
    estimated cost does not fit before ``until`` (``time.monotonic()``) is skipped."""
    from sklearn.base import clone

    best: dict[str, Entry] = {}
    for entry in _rank(board, setup.metric):
        if entry.eligible and entry.kind != "ensemble":
            best.setdefault(entry.candidate, entry)
    members = [Member(e.candidate, CANDIDATES[e.candidate].build(setup.task, e.params,
                                                                 setup.seed), e.onnx)
               for e in list(best.values())[:_ENSEMBLE_MEMBERS]]
    entries = []
    for ensemble in build_ensembles(setup.ws.config.model.ensembles, setup.task, members,
                                    setup.seed):
        parts = [best[name] for name in ensemble.members]
        cost = fits_per_fold(ensemble.kind) * len(setup.folds) * sum(p.fit_seconds
                                                                       for p in parts)
        if cost > 0 and time.monotonic() + cost > until:
            _log.warning("ensemble %s skipped: it would take about %.0f s, more than is left of "
                         "the time budget (model.time_budget_seconds)", ensemble.name, cost)
            continue
        if ensemble.kind == "stacking" and not _stacking_could_win(setup, parts, board):
            continue

        def factory(estimator: Any = ensemble.estimator) -> Any:
            return setup.pipeline(clone(estimator))

        factories[ensemble.name] = factory
        progress.start(f"cross-validating {ensemble.name}", len(setup.folds))
        entries.append(_entry(setup, run, ensemble.name, ensemble.kind, "ensemble",
                              ensemble.params, _ensemble_cv(setup, ensemble, parts, factory,
                                                            progress), ensemble.onnx))
    return entries


def _stacking_could_win(setup: _Setup, parts: list[Entry], board: list[Entry]) -> bool:
    """Whether a stack of ``parts`` could beat the best entry so far, judged by its meta-model
    on their out-of-fold predictions; if not, its nested cross-validation is not spent."""
    assert setup.y is not None  # no ensembles without a target
    metric = setup.metric
    scored = [e for e in board if e.eligible and not math.isnan(e.score(metric))]
    if not scored:
        return True
    leader = _rank(scored, metric)[0]
    estimate = stacked_score([p.result for p in parts], setup.y, setup.task, metric, setup.seed)
    sign = 1.0 if greater_is_better(metric) else -1.0
    if sign * estimate > sign * leader.score(metric):
        return True
    _log.warning("ensemble stacking skipped: its meta-model on the members' out-of-fold "
                 "predictions scores %s %.4f, not better than %s's %.4f, so cross-validating "
                 "it cannot win", metric, estimate, leader.name, leader.score(metric))
    return False


def _ensemble_cv(setup: _Setup, ensemble: Ensemble, parts: list[Entry],
                 factory: Callable[[], Any], progress: Progress) -> CVResult:
    """Voting from the members' out-of-fold predictions; the others fitted fold by fold."""
    if ensemble.kind != "voting":
        return _cross_validate(setup, ensemble.name, factory, ensemble.params, progress)
    assert setup.y is not None  # no ensembles without a target
    for _ in setup.folds:
        progress.advance()
    return average_results([p.result for p in parts], setup.y, setup.folds, setup.task,
                           setup.metrics, candidate=ensemble.name, params=ensemble.params)


def _clustering_board(
    setup: _Setup, run: TrackedRun, progress: Progress, factories: dict[str, Callable[[], Any]]
) -> tuple[list[Entry], list[dict[str, float]]]:
    """k chosen by silhouette on the preprocessed rows, then each k-means model cross-validated."""
    progress.start("choosing k", 1)
    transformed = setup.pipeline("passthrough").fit_transform(setup.X)
    k, table = choose_k(transformed, seed=setup.seed)
    progress.advance()
    board = [_fit_candidate(setup, run, progress, factories, candidate,
                            {"n_clusters": k, **setup.params(candidate.name)}, candidate.name,
                            "candidate")
             for candidate in setup.candidates]
    return board, table


# -- budgeted search ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Searched:
    """What the search found, before anything is logged: the contenders (the baseline first),
    the summary and the feature options they were built with."""

    contenders: list[Contender]
    summary: SearchSummary
    options: dict[str, tuple[FeaturePlan, FeatureConfig]]


def _search(setup: _Setup, progress: Progress, settings: SearchSettings, started: float,
            contention: float) -> _Searched:
    """Run the baseline and the search in what is left of the budget since ``started``.

    ``contention`` (wall over CPU time of loading the data: how much of a core this process
    gets) scales the time kept for the finishing steps: on a busy machine they take longer."""
    options = _feature_options(setup)

    def estimator(candidate: str, params: Mapping[str, Any]) -> Any:
        return CANDIDATES[candidate].build(setup.task, {**params, **setup.params(candidate)},
                                           setup.seed)

    def wrap(option: str, model: Any) -> Any:
        plan, features = options[option]
        return make_pipeline(plan, features, model)

    assert setup.y is not None  # only supervised tasks are searched
    config = setup.ws.config.model
    problem = Problem(setup.X, setup.y, setup.folds, setup.task, setup.metric, setup.metrics,
                      setup.seed, families_for(setup.task, len(setup.X), config.candidates),
                      list(options), estimator, wrap,
                      None if setup.baseline is None else setup.baseline.name)
    contenders, summary = search_contenders(problem, settings, started, progress,
                                            contention=contention)
    return _Searched(contenders, summary, options)


def _search_entries(setup: _Setup, run: TrackedRun, factories: dict[str, Callable[[], Any]],
                    plans: dict[str, FeaturePlan],
                    searched: _Searched) -> tuple[list[Entry], SearchSummary]:
    """The baseline, each searched family's best and the greedy ensemble as leaderboard entries
    logged to MLflow (``plans``: the feature plan of each)."""
    board = []
    for c in searched.contenders:
        factories[c.name] = c.factory
        plans[c.name] = searched.options[c.features][0]
        onnx = c.kind == "ensemble" or CANDIDATES[c.candidate].onnx
        board.append(_entry(setup, run, c.name, c.candidate, _entry_kind(c.kind), c.params,
                            c.result, onnx and plans[c.name].onnx))
    return board, searched.summary


def _feature_options(setup: _Setup) -> dict[str, tuple[FeaturePlan, FeatureConfig]]:
    """The feature options searched: the configured features, and ordinal-encoded text columns
    (for tree families) when there are text columns and ``model.features.encoding`` is unset."""
    features = setup.ws.config.model.features
    options = {"configured": (setup.plan, features)}
    if setup.plan.categorical and "encoding" not in features.model_fields_set:
        ordinal = features.model_copy(update={"encoding": "ordinal"})
        plan = plan_features(setup.data.columns, setup.data.target, ordinal, setup.findings,
                             task=setup.task, levels=setup.levels)
        if plan.onnx or not setup.require_onnx:
            options["ordinal"] = (plan, ordinal)
    return options


def _entry_kind(kind: str) -> EntryKind:
    kinds: dict[str, EntryKind] = {"baseline": "baseline", "ensemble": "ensemble",
                                   "tuned": "tuned"}
    return kinds.get(kind, "candidate")


def _log_budget(run: TrackedRun, summary: SearchSummary, elapsed: float) -> None:
    """Record the budget asked for and the time spent (whole training) on the MLflow run."""
    summary.elapsed_seconds = elapsed
    metrics = {"search_trials": float(len(summary.trials)),
               "search_seconds": summary.search_seconds, "budget_actual_seconds": elapsed}
    if summary.budget_seconds is not None:
        metrics["budget_requested_seconds"] = summary.budget_seconds
    if summary.trials_requested is not None:
        metrics["budget_requested_trials"] = float(summary.trials_requested)
    run.log_metrics(metrics)


# -- choosing, storing, reporting -------------------------------------------------------------


def _rank(board: list[Entry], metric: str) -> list[Entry]:
    """Best first; a NaN score ranks last; on a tie plain candidates beat tuned, then ensembles."""
    sign = -1.0 if greater_is_better(metric) else 1.0

    def key(entry: Entry) -> tuple[bool, float, int]:
        value = entry.score(metric)
        missing = math.isnan(value)
        return missing, 0.0 if missing else sign * value, _KIND_ORDER[entry.kind]

    return sorted(board, key=key)


def _winner(ranked: list[Entry], metric: str) -> Entry:
    for entry in ranked:
        if entry.eligible and not math.isnan(entry.score(metric)):
            return entry
    raise DataError(f"no model could win: every candidate is the baseline, scored NaN on "
                    f"{metric} or cannot be exported to ONNX; add candidates to model.candidates "
                    "or set model.require_onnx: false")


def _fitted_winner(setup: _Setup, ranked: list[Entry], factories: Mapping[str, Callable[[], Any]],
                   onnx_check: OnnxCheck | None) -> tuple[Entry, Any]:
    """The winner, refitted on all training rows. With ``require_onnx`` and an ``onnx_check``,
    an entry whose ONNX export fails (conversion or parity) is named and passed over."""
    contenders = list(ranked)
    while True:
        winner = _winner(contenders, setup.metric)
        pipeline = factories[winner.name]().fit(setup.X, setup.y)
        if onnx_check is None or not setup.require_onnx:
            return winner, pipeline
        validation = setup.data.features("validation")
        problem = onnx_check(pipeline, validation if len(validation) else setup.X, setup.task)
        if problem is None:
            return winner, pipeline
        _log.warning("%s cannot win, its ONNX export fails: %s", winner.name, problem)
        contenders.remove(winner)


def _analyze(setup: _Setup, winner: Entry) -> ErrorAnalysis | None:
    result: CVResult = winner.result
    if setup.y is None:
        return None
    rows = result.oof_mask
    proba = result.oof_proba[rows] if result.oof_proba is not None else None
    return analyze_errors(setup.task, setup.X.loc[rows], setup.y.to_numpy()[rows],
                          result.oof_pred[rows], proba, result.classes)


def _store(setup: _Setup, pipeline: Any, winner: Entry, ranked: list[Entry],
           run_id: str, plan: FeaturePlan) -> Artifact:
    data = setup.data
    types = {c.name: c.type for c in data.columns}
    classes = winner.result.classes
    mean, std = winner.metrics[setup.metric]
    meta = {
        "task": setup.task, "target": data.target, "candidate": winner.candidate,
        "entry": winner.name, "kind": winner.kind, "params": winner.params,
        "metric": setup.metric,
        "cv": {m: {"mean": _json_float(a), "std": _json_float(b)}
               for m, (a, b) in winner.metrics.items()},
        "inputs": [{"name": c, "type": types[c]} for c in setup.plan.inputs],
        "classes": None if classes is None else [_plain(c) for c in classes],
        "dataset": data.dataset.id, "split": data.split.id if data.split else None,
        "excluded": plan.excluded, "features": plan.to_dict(),
        "onnx": winner.onnx, "threshold": None, "mlflow_run_id": run_id,
        "leaderboard": [{"name": e.name, "kind": e.kind, "mean": _json_float(e.score(
            setup.metric)), "std": _json_float(e.metrics[setup.metric][1])} for e in ranked],
    }
    inputs = {"dataset": data.dataset.id, **({"split": data.split.id} if data.split else {})}
    return store_model(setup.ws, pipeline, name=f"{data.dataset.name}.model", meta=meta,
                       inputs=inputs, description=f"{winner.name} on {data.dataset.ref}: "
                       f"{setup.metric} {mean:.4f} ± {std:.4f}")


def _publish(ws: Workspace, result: TrainResult, run: TrackedRun) -> None:
    """Write the report (JSON + HTML) and log it, the plots and the lineage to MLflow."""
    stem = f"{result.model.name}-v{result.model.version}-train"
    result.report_paths = {"json": ws.reports_dir / f"{stem}.json",
                           "html": ws.reports_dir / f"{stem}.html"}
    if result.errors is not None:
        result.plots = result.errors.figure_uris()
    save_report(result, ws.reports_dir, stem)
    run.set_lineage({"model_id": result.model.id, "model_ref": result.model.ref})
    winner = next(e for e in result.leaderboard if e.name == result.winner)
    run.log_metrics({f"cv_{result.metric}": winner.score(result.metric)})
    with ws.staging() as stage:
        plots = []
        for name, uri in result.plots.items():
            path = stage / f"{name}.png"
            path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
            plots.append(path)
        run.log_artifacts(list(result.report_paths.values()))
        run.log_artifacts(plots, folder="plots")


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
