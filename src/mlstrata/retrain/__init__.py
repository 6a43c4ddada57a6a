"""Retraining in production: a new batch → a challenger → compared with the champion → promoted.

- :mod:`.history` — check a new batch against the contract and append it to the dataset's
  history as a new version (lineage to the previous one, its own sealed test slice);
- :mod:`.pipeline` — the configured pipeline on that version: the challenger and its gates;
- :mod:`.compare` — champion against challenger on the same sealed rows, paired bootstrap;
- :mod:`.run` — the whole retrain under a lock (:mod:`.lock`), the policy, the decision;
- :mod:`.schedule` — the cron line and the Kubernetes CronJob that run it;
- :mod:`.shadow_view` — champion and shadow challenger compared on logged live traffic.

It is not the search that trains a model (:mod:`mlstrata.model`), nor the registry
(:mod:`mlstrata.package.registry`), nor serving: it sequences them, next to ``mlstrata run``.
"""

from __future__ import annotations

from .compare import SliceComparison, compare_models, paired_bootstrap
from .history import BatchRefusedError
from .lock import RetrainLockedError, retrain_lock
from .report import RetrainReport
from .run import RetrainRequest, due_reasons, retrain

__all__ = [
    "BatchRefusedError",
    "RetrainLockedError",
    "RetrainReport",
    "RetrainRequest",
    "SliceComparison",
    "compare_models",
    "due_reasons",
    "paired_bootstrap",
    "retrain",
    "retrain_lock",
]
