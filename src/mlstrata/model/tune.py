"""Hyper-parameter tuning with Optuna: seeded TPE, median pruning on folds, RDB storage.

Each tuned candidate gets one study, named from the dataset id, the candidate and the metric, in
Optuna's RDB storage — ``sqlite:///<workspace>/.mlstrata/optuna.db`` by default, or
``model.tune.storage`` (a PostgreSQL URL lets several machines tune one study together). A study
that already holds trials is resumed: only the missing trials run, so an interrupted ``train``
picks up where it stopped and a finished one costs nothing.

A trial cross-validates one parameter set; after each fold it reports the running mean of the
fold scores, and a :class:`optuna.pruners.MedianPruner` stops trials that trail the median. A
trial still running when the time budget ends is pruned at its next fold, so one slow parameter
set overruns the budget by one fold at most.
The objective is passed in (``evaluate``), so this module knows nothing about pipelines.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import TuneConfig
from ..errors import ConfigError
from ..workspace import Workspace
from .candidates import Candidate

__all__ = ["FoldReport", "Evaluate", "Tuning", "storage_url", "study_name", "tune_candidate"]

FoldReport = Callable[[int, float], None]
"""Called by the objective after each fold with the fold index and its score."""

Evaluate = Callable[[dict[str, Any], FoldReport], tuple[float, Any]]
"""Cross-validate a parameter set, reporting folds; return (mean score, any result to keep)."""

_WARMUP_FOLDS = 1
_STARTUP_TRIALS = 3


@dataclass(frozen=True)
class Tuning:
    """The outcome of tuning one candidate.

    ``result`` is what ``evaluate`` returned for the best trial when that trial ran in this
    process; ``None`` when the best trial came from an earlier run or another machine.
    """

    candidate: str
    study: str
    storage: str
    trials: int
    new_trials: int
    pruned: int
    failed: int
    best_params: dict[str, Any]
    best_score: float | None
    seconds: float
    result: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (storage credentials removed, no fitted result)."""
        return {
            "candidate": self.candidate, "study": self.study,
            "storage": _without_password(self.storage), "trials": self.trials,
            "new_trials": self.new_trials, "pruned": self.pruned, "failed": self.failed,
            "best_params": self.best_params, "best_score": self.best_score,
            "seconds": round(self.seconds, 3),
        }


def storage_url(ws: Workspace, config: TuneConfig) -> str:
    """``model.tune.storage`` or the workspace's SQLite file; PostgreSQL URLs use psycopg 3."""
    url = config.storage or f"sqlite:///{ws.store / 'optuna.db'}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def study_name(dataset_id: str, candidate: str, task: str, metric: str) -> str:
    """A stable study name, so re-running ``train`` on the same data resumes the same study.

    >>> study_name("ab12cd34ef56" * 4, "lightgbm", "binary", "roc_auc")
    'mlstrata-ab12cd34ef56-lightgbm-binary-roc_auc'
    """
    return f"mlstrata-{dataset_id[:12]}-{candidate}-{task}-{metric}"


def tune_candidate(
    candidate: Candidate,
    task: str,
    evaluate: Evaluate,
    *,
    greater_is_better: bool,
    config: TuneConfig,
    storage: str,
    study: str,
    seed: int,
    timeout_seconds: float | None = None,
) -> Tuning:
    """Run the missing trials of ``candidate``'s study (``config.trials`` in total) and report.

    ``timeout_seconds`` caps this call (default ``config.timeout_seconds``): no trial starts
    after it, and a running one is pruned at its next fold. Trials whose estimator raises
    ``ValueError`` or ``ArithmeticError`` are recorded as failed and skipped.
    """
    import optuna

    started = time.perf_counter()
    timeout = timeout_seconds or config.timeout_seconds
    deadline = time.monotonic() + timeout
    with _quiet_optuna(), _rdb_storage(storage) as rdb:
        loaded = _load_study(study, rdb, greater_is_better, seed)
        before = {t.number for t in loaded.trials}
        kept: dict[int, Any] = {}
        missing = config.trials - _finished(loaded)
        if missing > 0:
            loaded.optimize(
                _objective(candidate, task, evaluate, kept, deadline), n_trials=missing,
                timeout=timeout,
                catch=(ValueError, ArithmeticError), gc_after_trial=False,
                callbacks=[optuna.study.MaxTrialsCallback(
                    config.trials, states=(optuna.trial.TrialState.COMPLETE,
                                           optuna.trial.TrialState.PRUNED))],
            )
        return _summary(candidate.name, study, storage, loaded, before, kept,
                        time.perf_counter() - started)


@contextlib.contextmanager
def _rdb_storage(url: str) -> Iterator[Any]:
    """Open Optuna's RDB storage and close its connection pool afterwards."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        storage = optuna.storages.RDBStorage(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigError(
            f"model.tune.storage: cannot open Optuna storage {_without_password(url)} "
            f"({str(exc).splitlines()[0][:160]}); give a reachable sqlite:/// or postgresql:// "
            "URL, or remove the key to use the workspace's SQLite file"
        ) from exc
    try:
        yield storage
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _load_study(name: str, storage: Any, greater: bool, seed: int) -> Any:
    """Create or resume a study; a resumed one gets a sampler seeded past its existing trials."""
    import optuna

    def sampler(offset: int) -> Any:
        return optuna.samplers.TPESampler(seed=seed + offset, n_startup_trials=_STARTUP_TRIALS)

    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, sampler=sampler(0),
        direction="maximize" if greater else "minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=_STARTUP_TRIALS,
                                           n_warmup_steps=_WARMUP_FOLDS),
    )
    if study.trials:
        study.sampler = sampler(len(study.trials))
    return study


def _objective(candidate: Candidate, task: str, evaluate: Evaluate,
               kept: dict[int, Any], deadline: float) -> Callable[[Any], float]:
    """One trial: suggest parameters, cross-validate with pruning on the running fold mean and
    on the ``deadline`` (a ``time.monotonic()`` value)."""
    import optuna

    def objective(trial: Any) -> float:
        params = candidate.search_space(trial, task)
        scores: list[float] = []

        def report(fold: int, score: float) -> None:
            scores.append(score)
            trial.report(sum(scores) / len(scores), step=fold)
            if trial.should_prune():
                raise optuna.TrialPruned(f"fold {fold}: running mean below the median")
            if time.monotonic() > deadline:
                raise optuna.TrialPruned(f"fold {fold}: out of tuning time")

        mean, result = evaluate(params, report)
        kept[trial.number] = result
        return mean

    return objective


def _finished(study: Any) -> int:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(t.state in done for t in study.trials)


def _summary(name: str, study_id: str, storage: str, study: Any, before: set[int],
             kept: Mapping[int, Any], seconds: float) -> Tuning:
    import optuna

    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    return Tuning(
        candidate=name, study=study_id, storage=storage, trials=len(states),
        new_trials=sum(t.number not in before for t in study.trials),
        pruned=states.count(optuna.trial.TrialState.PRUNED),
        failed=states.count(optuna.trial.TrialState.FAIL),
        best_params=dict(best.params) if best else {},
        best_score=float(best.value) if best else None, seconds=seconds,
        result=kept.get(best.number) if best else None,
    )


def _without_password(url: str) -> str:
    """Hide the password of a database URL (``user:secret@host`` → ``user:***@host``).

    >>> _without_password("postgresql://me:secret@127.0.0.1/db")
    'postgresql://me:***@127.0.0.1/db'
    """
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, user_password = head.partition("//")
    user = user_password.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Keep Optuna's per-trial INFO lines and SQLAlchemy deprecation notes off the terminal."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)
