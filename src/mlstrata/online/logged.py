"""An online model's predictions and labels in the prediction log, as ``mlstrata serve`` logs them.

An online model has no package, so the :class:`~mlstrata.predlog.ModelInfo` every line repeats
is built from its spec: the model's name, the spec artifact's version and id (as the
``package``), and the contract's columns without the target as the input fields. Predictions
are logged as ``prediction`` lines (the records as sent), labels as ``feedback`` lines for the
prediction's request id and record — so ``mlstrata monitor`` and ``mlstrata trace`` read an
online model's log like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..predlog import ModelInfo
from ..runtime.model import Predictions
from ..workspace import Artifact
from .learner import Prediction
from .spec import OnlineSpec

__all__ = ["LoggedModel", "as_predictions", "logged_model"]


@dataclass(frozen=True, eq=False)
class LoggedModel:
    """What the prediction log needs of the model that answered (see the module docstring)."""

    name: str
    version: int
    log_info: ModelInfo


def logged_model(spec: OnlineSpec, artifact: Artifact) -> LoggedModel:
    """The log's view of the online model ``spec`` (stored as ``artifact``)."""
    fields = tuple((name, column.type) for name, column in spec.contract.columns.items()
                   if name != spec.target)
    return LoggedModel(spec.name, artifact.version,
                       ModelInfo(spec.name, artifact.version, artifact.id, fields))


def as_predictions(spec: OnlineSpec, answers: Sequence[Prediction]) -> Predictions:
    """``answers`` as the serving runtime's :class:`Predictions` (what the log writes)."""
    if spec.task == "regression":
        return Predictions(values=np.array([a.value for a in answers], dtype=float))
    labels = np.empty(len(answers), dtype=object)
    labels[:] = [a.label for a in answers]
    probabilities = np.array([[a.probabilities.get(c, 0.0) for c in spec.classes]
                              for a in answers], dtype=float).reshape(len(answers),
                                                                      len(spec.classes))
    return Predictions(labels=labels, probabilities=probabilities, classes=spec.classes)


def plain(value: Any) -> Any:
    """A label as JSON can carry it (dates as ISO text)."""
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else value
