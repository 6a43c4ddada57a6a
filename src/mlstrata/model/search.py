"""Budgeted search: model families, feature options and hyper-parameters, cheapest first.

In the spirit of FLAML's CFO (our own code): every family starts at a **low-cost** configuration
(:mod:`mlstrata.model.search_space`) and moves by randomized local search in the unit cube of its
hyper-parameters — a random direction, tried forwards then backwards; after ``2·d`` failed
proposals the step halves; a family whose step falls below the floor has converged. Large data is
searched on a **sample** of each fold's training rows first (10,000 rows), doubled each time the
family converges at that size, up to all rows. Which family goes next is the one with the lowest
estimated cost of an improvement (its cost times how far it trails the best), so the strong and
cheap families get most trials. After its first trial a tree family also tries its categorical
columns ordinal-encoded (a **feature option**) and keeps the encoding that scores better.

Each trial cross-validates on the training folds; after each fold it is **stopped early** when its
running mean trails its family's best on the same folds by more than that best's fold spread
(it cannot win), or when the time left cannot pay for its remaining folds.

**Two trials at once** below ``THREADED_ROWS`` training rows, where each trial's model runs on one
thread: two threads, each running a different family's next trial (the fits release the GIL:
LightGBM, XGBoost, scikit-learn's trees) — when the load average says a core is idle
(:func:`_idle_core`). With a time budget a new trial starts as soon as one ends; counting trials,
they are asked in pairs and told to their families in trial order whether the pair ran on two
threads or one, so the sequence of trials is the same on every run and machine. A running
trial's refit and export are kept in the reserve as if it had already joined the best.

The search returns every trial; :func:`search` also picks a weighted ensemble of the completed
trials by greedy selection on their out-of-fold predictions (:mod:`.search_ensemble`).

Budget: with ``seconds`` the search stops so that the refit and the finishing steps still fit
(``reserve``), and never starts a trial it cannot pay for; with ``trials`` it runs exactly that
many trials and reads no clock at all, so the same data and seed give the same trials, the same
winner and the same fitted model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from .cv import CVResult, Fold, _OutOfFold, _predict
from .metrics import greater_is_better, score
from .search_space import FAMILIES, Family

__all__ = ["Budget", "Problem", "SearchProgress", "Trial", "TrialState", "limit_threads",
           "run_search"]

_log = logging.getLogger(__name__)

SAMPLE_ROWS = 10_000
"""Fold training rows a family's first trials see on large data."""
MIN_GAIN = 0.002
"""A move must gain this share of the incumbent's lead over the baseline (0.00055 ROC AUC at a
lead of 0.27)."""
THREADED_ROWS = 10_000
"""From this many training rows on, a trial's model uses every core (its ``n_jobs``); below, two
trials run at once on one thread each (``PARALLEL``)."""
PARALLEL = 2
"""Trials run at once below ``THREADED_ROWS`` rows (the 2-core machine this was measured on)."""
_STEP = 0.1
_STEP_FLOOR = 0.004
_GAP_WEIGHT = 20.0
"""How much trailing the best costs a family in the choice of the next family: at a gap of 5%
of the way from the baseline to the best score, a family counts as twice as costly."""

TrialState = Literal["complete", "pruned", "failed", "unaffordable", "running"]
"""``running``: only the stand-in of a trial still in flight, counted in the reserve."""
Estimator = Callable[[str, Mapping[str, Any]], Any]
"""``(candidate, params) -> unfitted estimator``."""
Wrap = Callable[[str, Any], Any]
"""``(feature option, estimator) -> unfitted pipeline`` (the preprocessing in front)."""


class _Stop(Exception):
    """Raised by the fold callback to end a trial early."""


class SearchProgress(Protocol):
    """Where the search reports: one unit of work per trial (``start``/``advance`` as
    :class:`mlstrata.model.train.Progress`). A display that also has a method
    ``trial(trial, trials)`` is handed each finished trial and all trials so far (the live
    leaderboard of ``mlstrata automl``)."""

    def start(self, label: str, total: int) -> None:
        """A trial with ``total`` folds begins."""

    def advance(self) -> None:
        """One fold is done."""


@dataclass
class Trial:
    """One cross-validated configuration of a family under one feature option."""

    number: int
    candidate: str
    features: str
    params: dict[str, Any]
    rows: int
    state: TrialState
    score: float
    seconds: float
    result: CVResult | None = field(default=None, repr=False)
    note: str = ""
    folds_done: int = 0

    @property
    def name(self) -> str:
        return f"{self.candidate}#{self.number}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready row of the trial history."""
        return {"number": self.number, "candidate": self.candidate, "features": self.features,
                "params": self.params, "rows": self.rows, "state": self.state,
                "score": None if math.isnan(self.score) else self.score,
                "seconds": round(self.seconds, 3), "note": self.note}


@dataclass(frozen=True)
class Budget:
    """The search's limit: ``seconds`` of wall time from ``started`` (``time.monotonic()``) with
    ``reserve(best trials)`` seconds kept for the refit and the finish, or exactly ``trials``."""

    seconds: float | None
    trials: int | None
    started: float
    reserve: Callable[[Sequence[Trial]], float] = field(default=lambda trials: 0.0)

    def left(self, trials: Sequence[Trial]) -> float:
        """Seconds the search may still spend (infinite when counting trials)."""
        if self.seconds is None:
            return math.inf
        return self.started + self.seconds - self.reserve(trials) - time.monotonic()


@dataclass(frozen=True)
class Problem:
    """The data and the rules of one search (everything but the budget)."""

    X: pd.DataFrame
    y: pd.Series
    folds: list[Fold]
    task: str
    metric: str
    metrics: list[str]
    seed: int
    families: list[Family]
    feature_options: Sequence[str]
    estimator: Estimator
    wrap: Wrap
    baseline: str | None

    def pipeline(self, candidate: str, features: str, params: Mapping[str, Any]) -> Any:
        """The unfitted pipeline of one configuration."""
        return self.wrap(features, self.estimator(candidate, params))

    @property
    def sign(self) -> float:
        return 1.0 if greater_is_better(self.metric) else -1.0

    @property
    def classes(self) -> list[Any] | None:
        """The sorted labels of a classification target (None for regression)."""
        if self.task not in ("binary", "multiclass"):
            return None
        return sorted(pd.unique(self.y))

    @property
    def full_rows(self) -> int:
        return min(len(train) for train, _ in self.folds)


_UNLIMITED = Budget(None, None, 0.0)


class _Walker:
    """The local search of one family: its incumbent, step size, sample size and cost."""

    def __init__(self, family: Family, problem: Problem, index: int) -> None:
        self.family = family
        self.rng = np.random.default_rng([problem.seed, index])
        self.features = problem.feature_options[0]
        self.options = [o for o in problem.feature_options[1:] if family.tree_based]
        self.rows = min(SAMPLE_ROWS, problem.full_rows)
        self.folds = len(problem.folds)
        self.full = problem.full_rows
        dims = len(family.dims)
        self.step, self.floor = _STEP * math.sqrt(dims), _STEP_FLOOR * math.sqrt(dims)
        self.patience = 2 * dims
        self.best: Trial | None = None
        self.point = family.to_unit(family.initial())
        self.direction: np.ndarray[Any, Any] | None = None
        self.failures = 0
        self.seconds: list[float] = []
        self.converged = False
        self.pending: list[tuple[dict[str, Any], str]] = [(family.initial(), self.features)]
        self.presets = family.presets(self.full)
        self.last: Mapping[str, Any] = family.initial()
        self.baseline = math.nan

    def propose(self) -> tuple[dict[str, Any], str]:
        """The next configuration and feature option to try."""
        if self.pending:
            return self.pending.pop(0)
        if self.direction is None:
            u = self.rng.normal(size=len(self.point))
            self.direction = u / (np.linalg.norm(u) or 1.0)
            return self.family.from_unit(self.point + self.step * self.direction), self.features
        back, self.direction = self.point - self.step * self.direction, None
        return self.family.from_unit(back), self.features

    def tell(self, trial: Trial, sign: float) -> None:
        """Move to ``trial`` when it beats the incumbent; otherwise count a failure. A trial
        stopped for time counts at what all its folds would have cost, so the family is not
        picked again until that fits."""
        whole = trial.seconds * self.folds / max(trial.folds_done, 1)
        self.seconds.append(whole if trial.state == "unaffordable" else trial.seconds)
        self.last = trial.params
        better = trial.state == "complete" and (
            self.best is None or sign * (trial.score - self.best.score) > self._min_gain(sign)
            or self.best.rows < trial.rows)
        if better:
            self._accept(trial)
        else:
            self.failures += 1
        if self.best is not None and self.best.number == trial.number and self.options:
            self.pending.append((self.family.initial(), self.options.pop(0)))
        elif not self.pending and self.presets:
            self.pending.append((self.presets.pop(0), self.features))
        if self.failures >= self.patience:
            self._shrink()

    def _min_gain(self, sign: float) -> float:
        """How much a trial must beat the incumbent by to move there: ``MIN_GAIN`` of the
        incumbent's lead over the baseline (a cheap family otherwise keeps the turn with gains
        in the fourth decimal)."""
        if self.best is None or math.isnan(self.baseline):
            return 0.0
        return MIN_GAIN * abs(sign * self.best.score - self.baseline)

    def _accept(self, trial: Trial) -> None:
        self.best, self.features, self.failures = trial, trial.features, 0
        self.point, self.direction = self.family.to_unit(trial.params), None

    def _shrink(self) -> None:
        """Halve the step; at the floor, grow the sample (re-scoring the incumbent) or stop."""
        self.failures, self.direction = 0, None
        self.step /= 2
        if self.step >= self.floor:
            return
        if self.rows < self.full and self.best is not None:
            self.rows = min(self.full, self.rows * 2)
            self.step = _STEP * math.sqrt(len(self.family.dims)) / 2
            self.pending.append((dict(self.best.params), self.features))
        else:
            self.converged = True

    def cost(self) -> float:
        """The expected seconds of the next trial: the last one's, doubled after a sample grew,
        scaled by the square root of how many more trees (iterations) a planned trial such as
        the preset fits (a trial's fixed costs — preprocessing, prediction, scoring — dominate
        a 4-tree start, so cost grows slower than the trees)."""
        if not self.seconds:
            return 0.0
        grown = self.best is not None and self.best.rows < self.rows
        ratio = _size(self.pending[0][0]) / _size(self.last) if self.pending else 1.0
        return self.seconds[-1] * (2.0 if grown else 1.0) * math.sqrt(max(ratio, 1.0))

    def drop_planned(self) -> None:
        """Give up a planned trial the time left cannot pay for; the local search goes on."""
        if self.pending:
            self.pending.pop(0)


def _size(params: Mapping[str, Any]) -> float:
    """How many trees (boosting iterations) a configuration fits: its cost grows with them."""
    return float(params.get("n_estimators", params.get("max_iter", 1)))


def run_search(problem: Problem, budget: Budget,
               progress: SearchProgress) -> tuple[CVResult | None, list[Trial], bool]:
    """Cross-validate the baseline, then search until the budget is spent or every family has
    converged; return the baseline's result, the trials and whether every family converged.

    The first trial (the cheapest family's starting point) always runs to its end: the budget
    was checked to fit one model (:func:`mlstrata.model.search_run.check_budget`). BLAS runs
    on one thread: on the small matrices of a trial its threads cost more than they give (a
    logistic regression on 960 rows fitted 5-15 times faster); the tree libraries keep their
    OpenMP threads, one per core, from ``THREADED_ROWS`` rows on, and below run two trials at
    once on one thread each."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1, user_api="blas"):
        return _search(problem, budget, progress)


def _search(problem: Problem, budget: Budget,
            progress: SearchProgress) -> tuple[CVResult | None, list[Trial], bool]:
    walkers = [_Walker(f, problem, i) for i, f in enumerate(problem.families)]
    prepared = _Prepared(problem)
    baseline = None
    if problem.baseline is not None:
        progress.start(f"cross-validating {problem.baseline}", len(problem.folds))
        baseline = _cross_validate(problem, prepared, problem.baseline,
                                   problem.feature_options[0], {}, problem.full_rows,
                                   lambda scores: progress.advance())
    if baseline is not None:
        for w in walkers:
            w.baseline = problem.sign * baseline.metrics[problem.metric][0]
    slots = PARALLEL if problem.full_rows < THREADED_ROWS else 1
    threads = slots if _idle_core() else 1
    width = slots if budget.trials is not None else threads  # counting: pairs on any machine
    flight = _InFlight(progress, len(problem.folds))
    trials: list[Trial] = []
    with ThreadPoolExecutor(threads, thread_name_prefix="mlstrata-trial") as pool:
        while _start_trials(problem, prepared, walkers, budget, baseline, trials, flight, pool,
                            width):
            for walker, trial in flight.finished(counting=budget.trials is not None):
                trials.append(trial)
                walker.tell(trial, problem.sign)
                flight.report(trial, trials)
    trials.sort(key=lambda t: t.number)  # told as they ended; listed as they were asked
    return baseline, trials, all(w.converged for w in walkers)


def _start_trials(problem: Problem, prepared: _Prepared, walkers: Sequence[_Walker],
                  budget: Budget, baseline: CVResult | None, trials: list[Trial],
                  flight: _InFlight, pool: ThreadPoolExecutor, width: int) -> bool:
    """Start trials until ``width`` are in flight or none can start; whether any is in
    flight. (Counting trials, :meth:`_InFlight.finished` waits for all of them, so they start
    and end in pairs.)"""
    while len(flight) < width and (budget.trials is None or flight.started < budget.trials):
        number = flight.started
        walker = walkers[0] if number == 0 else _next_walker(
            walkers, [*trials, *flight.stand_ins()], problem, budget, baseline,
            busy=flight.walkers())
        if walker is None:
            break
        params, features = walker.propose()
        flight.add(number, walker, _stand_in(walker, number, params))
        flight.track(number, pool.submit(_evaluate, problem, prepared, walker, number, params,
                                         features, budget if number else _UNLIMITED, trials,
                                         flight))
    return len(flight) > 0


def _idle_core() -> bool:
    """Whether a second trial thread would find a core: the 1-minute load average (this
    process counts one) below the cores this process may run on. On the 2 shared cores at load
    average 5, two trial threads only competed with the other work: diabetes ran 166 trials in
    60 s against 222 one at a time (2026-12-03)."""
    try:
        return os.getloadavg()[0] < len(os.sched_getaffinity(0))
    except (OSError, AttributeError):  # no load average (not Unix): assume a quiet machine
        return True


def _stand_in(walker: _Walker, number: int, params: Mapping[str, Any]) -> Trial | None:
    """What the reserve counts for a trial in flight: its family's best so far (its fit time)
    with the trial's own parameters (its size); None for a family's first trial."""
    if walker.best is None:
        return None
    return dataclasses.replace(walker.best, number=number, params=dict(params), state="running")


class _InFlight:
    """The trials running at once: their families, their stand-ins for the reserve, and one
    progress line for all of them. The trials report from their threads, hence the lock."""

    def __init__(self, progress: SearchProgress, folds: int) -> None:
        self._lock = threading.Lock()
        self._progress, self._folds = progress, folds
        self._running: dict[int, tuple[_Walker, Trial | None]] = {}
        self._futures: dict[Future[Trial], int] = {}
        self._shown: dict[int, list[Any]] = {}
        self._started = 0

    def __len__(self) -> int:
        return len(self._running)

    @property
    def started(self) -> int:
        """How many trials were started: the next trial's number."""
        return self._started

    def add(self, number: int, walker: _Walker, stand_in: Trial | None) -> None:
        with self._lock:
            self._running[number] = (walker, stand_in)
            self._started += 1

    def track(self, number: int, future: Future[Trial]) -> None:
        self._futures[future] = number

    def walkers(self) -> list[_Walker]:
        with self._lock:
            return [w for w, _ in self._running.values()]

    def stand_ins(self, besides: int = -1) -> list[Trial]:
        """The stand-ins of the trials in flight but trial ``besides``."""
        with self._lock:
            return [s for n, (_, s) in self._running.items() if s is not None and n != besides]

    def finished(self, counting: bool) -> list[tuple[_Walker, Trial]]:
        """Wait for the first trial to end (``counting`` trials: for all of them) and return
        the ended ones in trial order. A trial's own error is raised here."""
        done, _ = wait(self._futures, return_when=ALL_COMPLETED if counting
                       else FIRST_COMPLETED)
        ended = []
        for future in sorted(done, key=self._futures.__getitem__):
            number = self._futures.pop(future)
            trial = future.result()
            with self._lock:
                walker, _ = self._running.pop(number)
            ended.append((walker, trial))
        return ended

    def begin(self, number: int, label: str) -> None:
        with self._lock:
            self._shown[number] = [label, 0]
            self._show()

    def advance(self, number: int) -> None:
        with self._lock:
            self._shown[number][1] += 1
            self._progress.advance()

    def end(self, number: int) -> None:
        with self._lock:
            self._shown.pop(number, None)
            if self._shown:  # the line names the trials still running
                self._show()

    def report(self, trial: Trial, trials: Sequence[Trial]) -> None:
        """Hand the finished trial to the progress display when it shows a live leaderboard."""
        show = getattr(self._progress, "trial", None)
        if callable(show):
            with self._lock:
                show(trial, trials)

    def _show(self) -> None:
        """One progress line for the running trials, with the folds they have done."""
        self._progress.start(" + ".join(label for label, _ in self._shown.values()),
                             self._folds * len(self._shown))
        for _ in range(sum(done for _, done in self._shown.values())):
            self._progress.advance()


def _next_walker(walkers: Sequence[_Walker], trials: Sequence[Trial], problem: Problem,
                 budget: Budget, baseline: CVResult | None,
                 busy: Collection[_Walker] = ()) -> _Walker | None:
    """The family with the lowest estimated cost of an improvement that the time left affords,
    among those without a trial in flight (``busy``; ``trials`` holds their stand-ins).

    A family with planned trials (its start, the ordinal feature option, its preset) goes first
    (cheapest family first); after that the priority is its cost,
    times ``1 + 20·gap`` (its distance behind the best, as a share of the best's lead over the
    baseline), times one plus its trials so far — so every family keeps a share that shrinks
    with how far it trails. Counting trials, the cost of every family is taken as equal, so the
    choice depends on scores only.
    """
    left = budget.left(trials)
    for w in walkers:
        if w.pending and w.seconds and budget.seconds is not None and w.cost() >= left:
            w.drop_planned()
    open_ = [w for w in walkers if not w.converged and w not in busy
             and (w.cost() < left or budget.seconds is None)]
    if not open_ or left <= 0:
        return None
    fresh = [w for w in open_ if w.pending]
    if fresh:
        return fresh[0]
    best = max((problem.sign * t.score for t in trials if t.state == "complete"), default=0.0)
    floor = best if baseline is None else problem.sign * baseline.metrics[problem.metric][0]
    span = abs(best - floor) or 1.0

    def priority(w: _Walker) -> tuple[float, int]:
        gap = 1.0 if w.best is None else (best - problem.sign * w.best.score) / span
        cost = 1.0 if budget.seconds is None else max(w.cost(), 1e-3)
        return (cost * (1.0 + _GAP_WEIGHT * max(gap, 0.0)) * (1 + len(w.seconds)),
                walkers.index(w))

    return min(open_, key=priority)


def _evaluate(problem: Problem, prepared: _Prepared, walker: _Walker, number: int,
              params: dict[str, Any], features: str, budget: Budget, trials: Sequence[Trial],
              flight: _InFlight) -> Trial:
    """Cross-validate one configuration, stopping at a fold when it cannot win or time is out
    (the time left keeps the reserve of the ``trials`` so far and of the others in flight).
    Runs in a thread of the search's pool; reads the walker, which no other trial moves."""
    candidate, rows = walker.family.candidate, walker.rows
    flight.begin(number, f"trial {number}: {candidate}")
    incumbent = walker.best.result if walker.best and walker.best.rows == rows else None
    started = time.perf_counter()
    done = [0]

    def check(scores: Sequence[float]) -> None:
        done[0] = len(scores)
        flight.advance(number)
        _check_fold(problem, incumbent, scores, budget, [*trials, *flight.stand_ins(number)],
                    time.perf_counter() - started, len(problem.folds))

    state: TrialState = "complete"
    result, note = None, ""
    try:
        result = _cross_validate(problem, prepared, candidate, features, params, rows, check)
    except _Stop as stop:
        state, note = ("unaffordable" if "time" in str(stop) else "pruned"), str(stop)
    except (ValueError, ArithmeticError) as exc:
        state, note = "failed", str(exc).splitlines()[0][:200]
    finally:
        flight.end(number)
    value = result.metrics[problem.metric][0] if result is not None else math.nan
    if result is not None and math.isnan(value):
        state = "failed"
    return Trial(number, candidate, features, dict(params), rows, state, value,
                 time.perf_counter() - started, result, note, done[0])


def _cross_validate(problem: Problem, prepared: _Prepared, candidate: str, features: str,
                    params: Mapping[str, Any], rows: int,
                    check: Callable[[Sequence[float]], None]) -> CVResult:
    """The folds of one trial on the shared preprocessed rows, scored on the primary metric
    (the other metrics are computed later from the out-of-fold predictions of the few trials
    that reach the leaderboard). ``check`` runs after each fold and may stop the trial."""
    classes = problem.classes
    out = _OutOfFold(len(problem.X), np.asarray(problem.y).dtype, classes)
    scores: list[float] = []
    fit_times, predict_times = [], []
    for i in range(len(problem.folds)):
        fold = prepared.fold(features, rows, i)
        model = limit_threads(problem.estimator(candidate, params), candidate, rows)
        start = time.perf_counter()
        with _openmp(rows):
            model.fit(fold.X_train, fold.y_train)
        fit_times.append(time.perf_counter() - start + fold.seconds)
        start = time.perf_counter()
        pred, proba = _predict(model, fold.X_test, problem.task, classes)
        predict_times.append(time.perf_counter() - start)
        out.put(fold.test, pred, proba)
        scores.append(score(problem.metric, fold.y_test, pred, proba, None, classes))
        check(scores)
    return CVResult(
        candidate=candidate,
        metrics={problem.metric: (float(np.mean(scores)), float(np.std(scores)))},
        fold_scores={problem.metric: scores}, fit_seconds=float(np.mean(fit_times)),
        predict_seconds=float(np.mean(predict_times)), oof_pred=out.pred,
        oof_proba=out.proba, oof_mask=out.mask, params=dict(params), classes=classes)


def limit_threads(model: Any, candidate: str, rows: int) -> Any:
    """One thread for a tree model fitted on fewer than ``THREADED_ROWS`` rows: there, thread
    start-up and spinning cost more than the split work they share (LightGBM's first trial on
    960 rows took 4 s with two OpenMP threads on a busy machine; the refit of a six-member
    XGBoost/LightGBM ensemble on 5,000 rows 2.9–10 s, against 0.8 s on one thread)."""
    family = FAMILIES.get(candidate)
    if rows < THREADED_ROWS and family is not None and family.tree_based and (
            "n_jobs" in model.get_params(deep=False)):
        model.set_params(n_jobs=1)
    return model


def _openmp(rows: int) -> Any:
    """One OpenMP thread below ``THREADED_ROWS`` rows (HistGradientBoosting has no ``n_jobs``)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1 if rows < THREADED_ROWS else None, user_api="openmp")


@dataclass(frozen=True)
class _Fold:
    """One fold's preprocessed rows and what preprocessing them cost."""

    test: np.ndarray[Any, Any]
    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any
    seconds: float


class _Prepared:
    """Each fold's preprocessed rows per feature option and sample size, fitted once on that
    fold's training rows and shared by every trial that uses them — exactly what each trial's
    own pipeline would compute, since the preprocessing does not depend on the model."""

    _KEEP = 4

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.cache: dict[tuple[str, int], dict[int, _Fold]] = {}
        self._lock = threading.Lock()

    def fold(self, features: str, rows: int, i: int) -> _Fold:
        """Fold ``i`` under ``features`` with at most ``rows`` training rows (prepared once,
        under a lock: two trials in flight may ask for the same fold)."""
        with self._lock:
            folds = self.cache.setdefault((features, rows), {})
            if len(self.cache) > self._KEEP:
                self.cache.pop(next(iter(self.cache)))
            if i not in folds:
                folds[i] = self._prepare(features, rows, i)
            return folds[i]

    def _prepare(self, features: str, rows: int, i: int) -> _Fold:
        p = self.problem
        train, test = _sampled(p.folds, rows, p.seed)[i]
        start = time.perf_counter()
        steps = p.wrap(features, "passthrough")
        y = p.y.iloc[train]
        X_train = steps.fit_transform(p.X.iloc[train], y)
        X_test = steps.transform(p.X.iloc[test])
        target = np.asarray(p.y)
        return _Fold(test, X_train, np.asarray(y), X_test, target[test],
                     time.perf_counter() - start)


def _check_fold(problem: Problem, incumbent: CVResult | None, scores: Sequence[float],
                budget: Budget, trials: Sequence[Trial], spent: float, folds: int) -> None:
    """Raise :class:`_Stop` when the trial cannot beat its family's incumbent, or cannot finish
    its remaining folds in the time left."""
    done = len(scores)
    if done < folds and budget.seconds is not None:
        if spent / done * (folds - done) > budget.left(trials):
            raise _Stop(f"fold {done}: out of time for the remaining folds")
    if incumbent is None or done < 2 or done == folds:
        return
    theirs = incumbent.fold_scores[problem.metric]
    mine, best = float(np.mean(scores)), float(np.mean(theirs[:done]))
    if problem.sign * (best - mine) > float(np.std(theirs)):
        raise _Stop(f"fold {done}: {problem.metric} {mine:.4f} trails the family's best "
                    f"{best:.4f} on the same folds by more than its spread")


def _sampled(folds: Sequence[Fold], rows: int, seed: int) -> list[Fold]:
    """Each fold with at most ``rows`` training rows: one seeded sample per size, so trials of
    the same size are compared on the same rows."""
    rng = np.random.default_rng([seed, rows])
    out = []
    for train, test in folds:
        if len(train) > rows:
            train = np.sort(rng.choice(train, size=rows, replace=False))
        out.append((train, test))
    return out
