"""The state of an online model, read without loading it: spec, events logged, checkpoints and
the guard's quarantine."""

from __future__ import annotations

import json

from ..workspace import Workspace
from .checkpoints import checkpoints
from .durability import events_dir
from .eventlog import is_open, last_event
from .quarantine import Quarantine, quarantine_path
from .recovery import read_spec
from .report import OnlineStatus

__all__ = ["online_status"]


def online_status(ws: Workspace, name: str) -> OnlineStatus:
    """What ``mlstrata online show NAME`` reports (cheap: reads the newest log segment only)."""
    artifact, spec = read_spec(ws, name)
    directory = events_dir(ws, name)
    summary = {key: value for key, value in json.loads(spec.to_json()).items()
               if key != "contract"}
    summary.update(ref=artifact.ref, id=artifact.id, created_at=artifact.created_at,
                   features=list(spec.features))
    return OnlineStatus(name=name, spec=summary, events=last_event(directory),
                        open_elsewhere=is_open(directory),
                        checkpoints=[c.to_dict() for c in checkpoints(ws, artifact)],
                        quarantine=[e.to_dict() for e in
                                    Quarantine.load(quarantine_path(ws, name)).entries])
