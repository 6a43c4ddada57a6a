"""Online learning: River models that learn from a stream of events, one event at a time.

What it is: models built from a data contract (:mod:`.spec`, :mod:`.estimators`,
:mod:`.features`; :mod:`.columns` leaves identifiers, PII and too many categories out), every
event checked by the contract's own evaluator before it can touch a model (:mod:`.events`),
learning that is durable — a write-ahead event log with group commit
(:mod:`.eventlog`) and verified checkpoints stored as workspace artifacts with lineage
(:mod:`.checkpoints`, :mod:`.durability`) — and recovery after any crash to exactly the model an
uninterrupted run would hold (:mod:`.recovery`). :mod:`.creation` creates a model (with an
optional warm start), :mod:`.replay` runs progressive validation over a file
(:mod:`.reading`), :mod:`.status` and :mod:`.report` say what happened, and :mod:`.snapshot`
freezes a model as a regular, versioned model with a River package (:mod:`.frozen`; scored
where packages are by :mod:`.frozen_package`).

What it is not: a server. HTTP routes, stream consumers and the guard against poisoned streams
build on :class:`OnlineModel`; River never enters the lean serving runtime
(``mlstrata.runtime``, ``mlstrata.serve``: import-linter keeps it out). River itself is
imported only when a pipeline is built or a checkpoint written.
"""

from __future__ import annotations

from .checkpoints import CheckpointCorruptError
from .creation import Created, CreateRequest, create_online
from .durability import CheckpointPolicy
from .eventlog import EventLog, EventLogError
from .events import EventChecker, EventRefusedError
from .learner import OnlineModel, OnlineModelFailedError, Prediction
from .recovery import Recovery, open_online
from .replay import METRICS, replay
from .report import OnlineStatus, ReplayReport
from .spec import OnlineSpec, build_spec
from .status import online_status

__all__ = [
    "METRICS",
    "CheckpointCorruptError",
    "CheckpointPolicy",
    "CreateRequest",
    "Created",
    "EventChecker",
    "EventLog",
    "EventLogError",
    "EventRefusedError",
    "OnlineModel",
    "OnlineModelFailedError",
    "OnlineSpec",
    "OnlineStatus",
    "Prediction",
    "Recovery",
    "ReplayReport",
    "build_spec",
    "create_online",
    "online_status",
    "open_online",
    "replay",
]
