"""One budgeted search from settings to leaderboard contenders: budget, search, ensemble.

:func:`settings_for` decides whether ``train`` searches (``model.strategy``) and with which
budget; :func:`check_budget` refuses a budget too small to fit even one model, before anything
is fitted; :func:`search_contenders` runs :func:`mlstrata.model.search.run_search`, keeps each
family's best trial and adds the greedy ensemble of the completed trials when it scores better
than the best single model and its refit fits in the time left. What the search did — budget
requested and spent, trials, what was skipped to keep the budget — is a :class:`SearchSummary`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import ModelConfig, SearchConfig
from ..errors import ConfigError
from .cv import CVResult, average_results
from .search import Budget, Problem, SearchProgress, Trial, limit_threads, run_search
from .search_ensemble import select_weights, voting_estimator
from .search_space import tree_nodes

__all__ = ["DEFAULT_BUDGET_SECONDS", "Contender", "SearchSettings", "SearchSummary",
           "check_budget", "finish_seconds", "minimum_budget", "search_contenders",
           "settings_for"]

DEFAULT_BUDGET_SECONDS = 60.0
"""The budget of a search when neither ``model.search`` nor ``model.time_budget_seconds`` sets
one."""
_FINISH_SECONDS = 2.0
"""Kept (per unit of contention) for the steps after the search whatever the data: the
leaderboard's MLflow runs, the ONNX conversion, storing, the report, the process's exit."""
_FINISH_SECONDS_PER_ROW = 1e-4
"""... and per training row: each family's best rescored on every metric, the ONNX parity check
and the error analysis. Both measured on 2026-12-03 (2 cores, load average 3–5, contention
1–2): 3–4 s after the search on 455 rows, 8–9 s on 20,000 rows, besides the refit; of those,
what grows with the trees is counted per node since (``_EXPORT_SECONDS_PER_NODE``): 2.4 s
besides the refit and a 6.9 s export on 20,190 rows (load 1.8)."""
_SELECTION_SHARE = 0.03
"""The share of the budget greedy ensemble selection may take (it keeps its best round)."""
_MAX_CONTENTION = 6.0
_SLACK = 0.05
"""The share of the budget an ensemble's refit may run over the estimate (half the 10% the
budget allows)."""
_MIN_SECONDS = 10.0
_ROWS_PER_SECOND = 20_000
_ENSEMBLE_POOL = 20
_RESERVE_MEMBERS = 3
"""The reserve covers the refit of the best trial and the next two (a typical greedy ensemble;
a bigger one is refitted only when its own estimate fits, see :func:`_ensemble`)."""
_REFIT_FACTOR = 1.2
"""A refit's time over its trial's mean fold fit, scaled by rows (the refit may use every core
where the trial used one; the 1.5 before overestimated 20,000-row refits 5 times)."""
_EXPORT_SECONDS_PER_NODE = 1.25e-5
"""The ONNX conversion and parity check of the winner, per tree node on an idle core (Python):
12–28 µs measured on 20,190 rows for forests, LightGBM, XGBoost and HistGradientBoosting
(2026-12-03, load average 1.8–2.7, a slowdown of ~1.25; 14–16 µs for the forests that
dominate). A three-forest ensemble of 1.2 million nodes took 43 s there before the conversion
was made faster, past a budget that had not counted it."""


@dataclass(frozen=True)
class SearchSettings:
    """The resolved budget: ``seconds`` of wall time, or exactly ``trials`` (then no clock)."""

    seconds: float | None
    trials: int | None
    ensemble: bool


def settings_for(config: ModelConfig, task: str,
                 override: SearchConfig | None = None) -> SearchSettings | None:
    """The search settings ``train`` runs with, or None for the classic stages.

    ``override`` (``mlstrata automl``'s options) always searches; otherwise
    ``model.strategy`` decides (``auto``: search unless mlstrata.yaml sets ``tune`` or
    ``ensembles``). Clustering is never searched.
    """
    if task == "clustering":
        if override is not None or config.strategy == "search":
            raise ConfigError("model.strategy: the search handles classification and regression, "
                              "not clustering; use mlstrata train with strategy classic")
        return None
    classic = bool({"tune", "ensembles"} & config.model_fields_set)
    if override is None and (config.strategy == "classic" or (
            config.strategy == "auto" and classic)):
        return None
    chosen = override or config.search
    if chosen.trials is not None:
        return SearchSettings(None, chosen.trials, chosen.ensemble)
    seconds = (chosen.time_budget_seconds or config.search.time_budget_seconds
               or config.time_budget_seconds or DEFAULT_BUDGET_SECONDS)
    return SearchSettings(seconds, None, chosen.ensemble)


def minimum_budget(rows: int) -> float:
    """The smallest time budget that fits one model: the fixed cost of a training (tracking,
    baseline, refit, report) plus a second per whole 20,000 rows.

    >>> minimum_budget(1_000), minimum_budget(100_000)
    (10.0, 15.0)
    """
    return _MIN_SECONDS + rows // _ROWS_PER_SECOND


def check_budget(settings: SearchSettings, rows: int) -> None:
    """Refuse a budget that cannot fit one model, naming the minimum (before any fitting).

    Past this check the cheapest family's first trial always runs to its end, even when
    opening the tracking store left less time than it needs (the summary then shows the
    overrun)."""
    if settings.seconds is None:
        return
    needed = minimum_budget(rows)
    if settings.seconds < needed:
        raise ConfigError(
            f"time budget {settings.seconds:g} s is too small to fit even one model on {rows} "
            f"rows; the minimum is {needed:g} s — raise --time-budget / "
            "model.search.time_budget_seconds, or give --trials instead")


@dataclass
class SearchSummary:
    """What the search did, for the report, the terminal and MLflow."""

    budget_seconds: float | None
    trials_requested: int | None
    trials: list[Trial]
    stopped: str
    skipped: list[str] = field(default_factory=list)
    ensemble: dict[str, int] = field(default_factory=dict)
    search_seconds: float = 0.0
    elapsed_seconds: float = math.nan

    @property
    def within_budget(self) -> bool | None:
        """Whether the whole training ended within 10% of the budget (None counting trials)."""
        if self.budget_seconds is None or math.isnan(self.elapsed_seconds):
            return None
        return self.elapsed_seconds <= 1.1 * self.budget_seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: requested vs spent, the stop reason, the skips and every trial."""
        states = [t.state for t in self.trials]
        return {
            "budget_seconds": self.budget_seconds, "trials_requested": self.trials_requested,
            "elapsed_seconds": None if math.isnan(self.elapsed_seconds)
            else round(self.elapsed_seconds, 3),
            "search_seconds": round(self.search_seconds, 3),
            "within_budget": self.within_budget, "stopped": self.stopped,
            "trials": len(self.trials),
            "states": {s: states.count(s) for s in dict.fromkeys(states)},
            "skipped": self.skipped, "ensemble": self.ensemble,
            "history": [t.to_dict() for t in self.trials],
        }

    def lines(self) -> list[str]:
        """The budget statement and the skips, one line each, for the terminal."""
        spent = "" if math.isnan(self.elapsed_seconds) else f", spent {self.elapsed_seconds:.1f} s"
        head = (f"budget: {self.budget_seconds:g} s of wall time{spent}"
                if self.budget_seconds is not None else
                f"budget: {self.trials_requested} trials (reproducible, no clock){spent}")
        return [f"{head}; {len(self.trials)} trials, {self.stopped}",
                *[f"skipped: {s}" for s in self.skipped]]


@dataclass(frozen=True)
class Contender:
    """A leaderboard entry the search proposes: a family's best trial or the ensemble."""

    name: str
    candidate: str
    kind: str
    params: dict[str, Any]
    result: CVResult
    features: str
    factory: Callable[[], Any]


def search_contenders(
    problem: Problem, settings: SearchSettings, started: float, progress: SearchProgress,
    contention: float = 1.0,
) -> tuple[list[Contender], SearchSummary]:
    """Run the search from ``started`` (``time.monotonic()``, when training began) and return
    each family's best trial, the ensemble when it could win, and the summary.

    ``contention`` (wall time over CPU time so far, at least 1: how much of a core this process
    gets on a busy machine) scales the time kept for the finishing steps."""
    selection = (_SELECTION_SHARE * settings.seconds
                 if settings.ensemble and settings.seconds is not None else 0.0)
    cost = _Finishing(len(problem.X), len(problem.classes or ()), contention)
    budget = Budget(settings.seconds, settings.trials, started,
                    reserve=lambda trials: cost.finish() + selection + _reserve(
                        trials, cost, problem.sign))
    begun = time.monotonic()
    baseline, trials, converged = run_search(problem, budget, progress)
    summary = SearchSummary(settings.seconds, settings.trials, trials,
                            _stop_reason(trials, settings, converged),
                            search_seconds=time.monotonic() - begun)
    summary.skipped += _unsearched(problem, trials, settings)
    contenders = [] if baseline is None else [_scored(problem, baseline, "baseline")]
    best = _best_per_family(trials, problem.sign)
    if not best:
        return contenders, summary
    contenders += [_single(problem, t, initial=problem.families) for t in best]
    if settings.ensemble:
        ensemble = _ensemble(problem, trials, best[0], budget, cost, summary)
        contenders += [ensemble] if ensemble is not None else []
    return contenders, summary


def finish_seconds(rows: int, contention: float = 1.0) -> float:
    """The seconds kept after the search for everything but the refit: a fixed part and a part
    per training row, scaled by ``contention`` (how much of a core the process gets).

    >>> round(finish_seconds(20_000), 1), round(finish_seconds(20_000, contention=2.0), 1)
    (4.0, 8.0)
    """
    return (_FINISH_SECONDS + _FINISH_SECONDS_PER_ROW * rows) * min(max(contention, 1.0),
                                                                     _MAX_CONTENTION)


@dataclass(frozen=True)
class _Finishing:
    """What finishing costs: a trial's refit on all ``rows`` and its ONNX export (``classes``:
    of a classification target, else 0), and the steps after the search; the single-threaded
    parts scaled by :meth:`slowdown` (``contention``: wall over CPU time while loading)."""

    rows: int
    classes: int
    contention: float

    def slowdown(self) -> float:
        """How many times slower single-threaded work runs now than on an idle core: the
        contention seen while loading or, when higher, the 1-minute load average over the
        cores (read at each call). Loading is too short to see load that comes later: at load
        average 4.8 on the 2 cores the ONNX check of an ensemble with one 100-tree forest took
        14.5 s, where the forest alone took 5.6 s at load 2.5, with a contention of 1.06."""
        try:
            load = os.getloadavg()[0] / len(os.sched_getaffinity(0))
        except (OSError, AttributeError):  # no load average (not Unix)
            load = 1.0
        return min(max(self.contention, load, 1.0), _MAX_CONTENTION)

    def finish(self) -> float:
        """The steps after the search but the refit and the export."""
        return finish_seconds(self.rows, self.slowdown())

    def seconds(self, trial: Trial) -> float:
        """The refit and the export."""
        return self.refit(trial) + self.export(trial)

    def refit(self, trial: Trial) -> float:
        """The fit on all rows (fit time grows about linearly with rows)."""
        assert trial.result is not None
        return _REFIT_FACTOR * trial.result.fit_seconds * max(1.0, self.rows / max(trial.rows, 1))

    def export(self, trial: Trial) -> float:
        """The ONNX conversion and parity check: they grow with the tree nodes."""
        return _EXPORT_SECONDS_PER_NODE * self.slowdown() * tree_nodes(
            trial.candidate, trial.params, self.rows, self.classes)


def _reserve(trials: Sequence[Trial], cost: _Finishing, sign: float) -> float:
    """Seconds to keep for refitting the best few trials and exporting the best (the model
    stored when no ensemble fits: an ensemble is trimmed to the time left, see
    :func:`_affordable`), and for the trials still running (their stand-ins: any of them may
    become the best)."""
    done = sorted((t for t in trials if t.state == "complete" and t.result is not None),
                  key=lambda t: -sign * t.score)[:_RESERVE_MEMBERS]
    running = [t for t in trials if t.state == "running" and t.result is not None]
    return (sum(cost.refit(t) for t in done) + sum(cost.export(t) for t in done[:1])
            + sum(cost.seconds(t) for t in running))


def _stop_reason(trials: Sequence[Trial], settings: SearchSettings, converged: bool) -> str:
    if settings.trials is not None and len(trials) >= settings.trials:
        return f"stopped after the {settings.trials} trials asked for"
    if converged:
        return "every family converged before the budget ran out"
    return "stopped by the time budget (the rest is kept for the refit and the finish)"


def _unsearched(problem: Problem, trials: Sequence[Trial], settings: SearchSettings) -> list[str]:
    tried = {t.candidate for t in trials}
    why = ("no time left" if settings.trials is None
           else f"not reached within the {settings.trials} trials")
    return [f"{f.candidate}: never tried, {why}" for f in problem.families
            if f.candidate not in tried]


def _best_per_family(trials: Sequence[Trial], sign: float) -> list[Trial]:
    """Each family's best completed trial on the most rows it reached, best first."""
    best: dict[str, Trial] = {}
    for t in trials:
        if t.state != "complete":
            continue
        held = best.get(t.candidate)
        if held is None or (t.rows, sign * t.score) > (held.rows, sign * held.score):
            best[t.candidate] = t
    return sorted(best.values(), key=lambda t: -sign * t.score)


def _single(problem: Problem, trial: Trial, initial: Sequence[Any]) -> Contender:
    family = next(f for f in initial if f.candidate == trial.candidate)
    kind = "candidate" if trial.params == family.initial() else "tuned"
    assert trial.result is not None

    def factory() -> Any:
        return problem.wrap(trial.features, _estimator(problem, trial.candidate, trial.params))

    params = {**trial.params, "features": trial.features, "trial": trial.number}
    scored = _scored(problem, trial.result, kind, params)
    return dataclasses.replace(scored, features=trial.features, factory=factory)


def _scored(problem: Problem, result: CVResult, kind: str,
            params: dict[str, Any] | None = None) -> Contender:
    """A contender from a trial's result, scored on every metric from its out-of-fold
    predictions (the search itself scores the primary metric only)."""
    features = problem.feature_options[0]
    name = result.candidate
    rescored = average_results([result], problem.y, problem.folds, problem.task, problem.metrics,
                               candidate=name, params=params or {})

    def factory() -> Any:
        return problem.pipeline(name, features, params or {})

    return Contender(name, name, kind, params or {}, rescored, features, factory)


def _ensemble(problem: Problem, trials: Sequence[Trial], best: Trial, budget: Budget,
              cost: _Finishing, summary: SearchSummary) -> Contender | None:
    """The greedy ensemble of the completed trials that share the best one's features, when it
    has two members or more, scores strictly better than the best, and its refit and export
    fit. Selection runs for at most the budget's selection share (time budgets only)."""
    pool = _pool(trials, best, problem.sign)
    if len(pool) < 2:
        return None
    members = _affordable(problem, pool, budget, cost, summary)
    if len(members) < 2:
        return None
    summary.ensemble = {t.name: w for t, w in members}
    params = {"kind": "greedy", "members": summary.ensemble, "features": best.features}
    result = average_results([t.result for t, _ in members if t.result is not None], problem.y,
                             problem.folds, problem.task, problem.metrics,
                             candidate="ensemble", params=params,
                             weights=[w for _, w in members])

    def factory() -> Any:
        estimators = [(t.name.replace("#", "_"), _estimator(problem, t.candidate, t.params))
                      for t, _ in members]
        return problem.wrap(best.features, voting_estimator(
            problem.task, estimators, [w for _, w in members]))

    return Contender("ensemble", "voting", "ensemble", params, result, best.features, factory)


def _affordable(problem: Problem, pool: list[Trial], budget: Budget, cost: _Finishing,
                summary: SearchSummary) -> list[tuple[Trial, int]]:
    """The greedy selection's members and weights, its costliest member but the best left out
    (and the selection rerun) until refitting and exporting them fits in the time left."""
    deadline = (None if budget.seconds is None
                else time.monotonic() + _SELECTION_SHARE * budget.seconds)
    while True:
        results = [t.result for t in pool if t.result is not None]
        weights = select_weights(results, problem.y, problem.metric, deadline=deadline)
        members = [(t, w) for t, w in zip(pool, weights, strict=True) if w > 0]
        needed = sum(cost.seconds(t) for t, _ in members)
        left = (math.inf if budget.seconds is None else budget.started
                + budget.seconds * (1 + _SLACK) - cost.finish() - time.monotonic())
        if needed <= left or len(members) < 2:
            return members
        costliest = max((t for t, _ in members if t is not pool[0]), key=cost.seconds)
        summary.skipped.append(f"ensemble member {costliest.name} (refit and export about "
                               f"{cost.seconds(costliest):.0f} s): the ensemble's {needed:.0f} s "
                               f"did not fit in the {left:.0f} s left")
        pool = [t for t in pool if t is not costliest]


def _estimator(problem: Problem, candidate: str, params: dict[str, Any]) -> Any:
    """A contender's estimator, on as many threads as its trials had for the refit's rows."""
    return limit_threads(problem.estimator(candidate, params), candidate, len(problem.X))


def _pool(trials: Sequence[Trial], best: Trial, sign: float) -> list[Trial]:
    """The best distinct completed trials with the best one's feature option, best first."""
    seen: set[str] = set()
    pool = []
    for t in sorted(trials, key=lambda t: (-sign * t.score, t.number)):
        key = repr(sorted(t.params.items()))
        if t.state == "complete" and t.features == best.features and key not in seen:
            seen.add(key)
            pool.append(t)
    return pool[:_ENSEMBLE_POOL]
