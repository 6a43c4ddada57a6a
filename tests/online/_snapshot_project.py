"""A project for the snapshot tests: a split credit dataset with a sealed test set, and an
online model created from it that has learnt a stream of other applications."""

from __future__ import annotations

import contextlib
from pathlib import Path

from mlstrata import api
from mlstrata.online.creation import CreateRequest, create_online
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.online.events import EventRefusedError
from mlstrata.online.reading import read_records
from mlstrata.online.recovery import open_online, read_spec
from mlstrata.workspace import Workspace

CONFIG = """\
project: snapshot-tests
data: {sealed_test_fraction: 0.2, seed: 0, pii: {email: drop, phone: drop}}
model: {seed: 0, gates: {metrics: ["roc_auc >= 0.6"]}}
"""


def build_project(root: Path, events: int = 600) -> Workspace:
    """The project, with online model ``loans`` (logistic regression) after ``events`` rows of a
    second synthetic stream (rows the contract refuses are left out)."""
    project = root / "project"
    api.init(project, "snapshot-tests")
    (project / "mlstrata.yaml").write_text(CONFIG)
    api.synth_credit(project / "data" / "credit.csv", rows=1500, seed=3)
    api.synth_credit(project / "data" / "stream.csv", rows=events, seed=4)
    api.ingest(project / "data" / "credit.csv", "credit", target="default",
               key="application_id", workspace=project)
    api.split("credit", strategy="stratified", val=0.2, seed=0, workspace=project)
    ws = api.open_workspace(project)
    create_online(ws, CreateRequest(name="loans", target="default", dataset="credit",
                                    model="logistic_regression"), CheckpointPolicy(events=250))
    learn_file(ws, "loans", project / "data" / "stream.csv")
    return ws


def learn_file(ws: Workspace, name: str, path: Path) -> int:
    """Learn every row of ``path`` the contract accepts, in order; the last event."""
    model, _ = open_online(ws, name, policy=CheckpointPolicy(events=250))
    with contextlib.closing(model):
        for chunk in read_records(path, read_spec(ws, name)[1].contract):
            accepted = []
            for record in chunk:
                with contextlib.suppress(EventRefusedError):
                    accepted.append(model.checker.learn_event(record))
            model.learn_events(accepted)
        return model.seq
