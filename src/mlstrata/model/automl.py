"""``mlstrata automl``: the budgeted search as a command, with its own budget options.

The search itself runs inside :func:`mlstrata.model.train.train` (it is ``train``'s default);
this entry point only turns the command's options — a time budget *or* a number of trials, a
seed — into :class:`mlstrata.config.SearchConfig` and runs ``train`` with them, whatever
``model.strategy`` says. The result is an ordinary :class:`TrainResult` and an ordinary model
artifact: ``package``, ``evaluate``, ``test`` and ``models register`` take it unchanged.
"""

from __future__ import annotations

import copy

from ..config import SearchConfig
from ..errors import ConfigError
from ..workspace import Workspace
from .train import OnnxCheck, Progress, train
from .train_report import TrainResult

__all__ = ["automl", "search_config"]


def search_config(ws: Workspace, time_budget: float | None,
                  trials: int | None) -> SearchConfig:
    """The search settings: ``time_budget`` seconds or ``trials``, else ``model.search``.

    >>> from pathlib import Path
    >>> ws = Workspace.__new__(Workspace)
    >>> from mlstrata.config import ProjectConfig
    >>> ws.config = ProjectConfig()
    >>> search_config(ws, None, 12).trials
    12
    """
    if time_budget is not None and trials is not None:
        raise ConfigError("give --time-budget or --trials, not both: a time budget reads the "
                          "clock, a number of trials makes the run reproducible")
    if time_budget is not None and time_budget <= 0:
        raise ConfigError(f"--time-budget must be a positive number of seconds, not {time_budget}")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, not {trials}")
    configured = ws.config.model.search
    if time_budget is None and trials is None:
        return configured
    return SearchConfig(time_budget_seconds=time_budget, trials=trials,
                        ensemble=configured.ensemble)


def automl(
    ws: Workspace, ref: str, *, time_budget: float | None = None, trials: int | None = None,
    seed: int | None = None, tracking_uri: str | None = None, progress: Progress | None = None,
    onnx_check: OnnxCheck | None = None, budget_started: float | None = None,
) -> TrainResult:
    """Search models for dataset ``ref`` within ``time_budget`` seconds or ``trials`` trials.

    ``seed`` overrides ``model.seed`` for this run only (folds, samples, search directions and
    the models' own seeds). See :func:`mlstrata.model.train.train` for the rest.
    """
    search = search_config(ws, time_budget, trials)
    if seed is not None:
        model = ws.config.model.model_copy(update={"seed": seed})
        ws = copy.copy(ws)
        ws.config = ws.config.model_copy(update={"model": model})
    return train(ws, ref, tracking_uri=tracking_uri, progress=progress, onnx_check=onnx_check,
                 search=search, budget_started=budget_started)
