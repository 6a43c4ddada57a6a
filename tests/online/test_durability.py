"""Durability: kill -9 in the middle of a stream loses no acknowledged event, and recovery
equals an uninterrupted run; a corrupted checkpoint is refused and the previous one used."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlstrata.errors import InsufficientSpaceError
from mlstrata.online.checkpoints import checkpoints
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.online.estimators import build_pipeline
from mlstrata.online.eventlog import EventLogError, last_event
from mlstrata.online.learner import OnlineModel, OnlineModelFailedError
from mlstrata.online.recovery import open_online, read_spec
from mlstrata.workspace import Workspace

from . import _stream

_LEARNER = """
import sys
from pathlib import Path
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.online.recovery import open_online
from mlstrata.workspace import Workspace
from tests.online import _stream

model, _ = open_online(Workspace(Path(sys.argv[1])), "loans", policy=CheckpointPolicy(events=50))
rows = _stream.rows(5000)
for start in range(0, len(rows), 5):
    events = [model.checker.learn_event(row) for row in rows[start:start + 5]]
    print(model.learn_events(events), flush=True)
"""


def _uninterrupted(ws: Workspace, events: int) -> OnlineModel:
    """The model a run that was never interrupted holds after ``events`` events."""
    _, spec = read_spec(ws, "loans")
    model = OnlineModel(spec, build_pipeline(spec))
    model.learn_events([model.checker.learn_event(r) for r in _stream.rows(events)])
    return model


def _same_predictions(a: OnlineModel, b: OnlineModel) -> bool:
    held_out = _stream.rows(200, seed=42)
    return all(a.predict(row) == b.predict(row) for row in held_out)


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acknowledged_event(online_ws: Workspace) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path.cwd())}
    with subprocess.Popen([sys.executable, "-c", _LEARNER, str(online_ws.root)],
                          stdout=subprocess.PIPE, text=True, env=env) as learner:
        assert learner.stdout is not None
        acknowledged = 0
        try:
            while acknowledged < 420:  # past several checkpoints, in the middle of the stream
                line = learner.stdout.readline()
                assert line, "the learner stopped before it was killed"
                acknowledged = int(line)
        finally:
            learner.send_signal(signal.SIGKILL)
            learner.wait()

    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovered.seq >= acknowledged
    assert recovery.checkpoint is not None and recovery.replayed > 0
    assert _same_predictions(recovered, _uninterrupted(online_ws, recovered.seq))


def test_recovery_after_close_equals_the_uninterrupted_run(online_ws: Workspace) -> None:
    model, _ = open_online(online_ws, "loans", policy=CheckpointPolicy(events=100))
    model.learn_events([model.checker.learn_event(r) for r in _stream.rows(250)])
    model.close()
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovered.seq == 250 and recovery.replayed == 0
    assert _same_predictions(recovered, _uninterrupted(online_ws, 250))


def _learn_with_checkpoints(ws: Workspace) -> None:
    model, _ = open_online(ws, "loans", policy=CheckpointPolicy(events=100))
    for start in range(0, 250, 50):
        model.learn_events([model.checker.learn_event(r)
                            for r in _stream.rows(250)[start:start + 50]])
    model.close()


def test_a_corrupted_checkpoint_is_refused_and_the_previous_one_used(
        online_ws: Workspace) -> None:
    _learn_with_checkpoints(online_ws)
    spec, _ = read_spec(online_ws, "loans")
    newest, previous = checkpoints(online_ws, spec)[:2]
    path = online_ws.store / newest.relpath
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")

    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovery.checkpoint == previous
    assert any(newest.ref in note and "sha256" in note for note in recovery.notes)
    assert recovered.seq == 250 and recovery.replayed == 250 - previous.meta["last_event"]
    assert _same_predictions(recovered, _uninterrupted(online_ws, 250))


def test_with_every_checkpoint_corrupted_the_model_is_rebuilt_from_its_spec(
        online_ws: Workspace) -> None:
    _learn_with_checkpoints(online_ws)
    spec, _ = read_spec(online_ws, "loans")
    for checkpoint in checkpoints(online_ws, spec):
        (online_ws.store / checkpoint.relpath).write_bytes(b"not a pickle")
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovery.checkpoint is None and recovery.replayed == 250
    assert "rebuilt from the spec" in recovery.notes[-1]
    assert _same_predictions(recovered, _uninterrupted(online_ws, 250))


def test_a_warm_start_comes_before_the_first_logged_event(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    from mlstrata.online.creation import CreateRequest, create_online

    from .._factories import make_dataset

    rows = _stream.rows(300)
    values = ", ".join(f"({r['amount']}, '{r['region']}', DATE '{r['opened']}', '{r['paid']}')"
                       for r in rows)
    make_dataset(workspace, f"SELECT *, NULL::BIGINT AS lines FROM (VALUES {values}) "
                            "t(amount, region, opened, paid)",
                 name="history", target="paid")
    contract = _stream.write_contract(tmp_path / "contract.yaml")
    created = create_online(workspace, CreateRequest(name="loans", target="paid",
                                                     contract=contract, warm_start="history"))
    assert created.warm is not None and created.warm.learnt == 300
    assert created.checkpoint.meta["last_event"] == 0

    model, _ = open_online(workspace, "loans")
    assert model.learn(_stream.rows(1, seed=8)[0]) == 1
    model.close()
    recovered, recovery = open_online(workspace, "loans", writable=False)
    assert recovered.seq == 1 and recovery.checkpoint is not None
    assert recovery.checkpoint.meta["first_event"] == recovery.checkpoint.meta["last_event"] == 1


def test_a_log_that_ends_before_the_checkpoint_is_refused(online_ws: Workspace) -> None:
    model, _ = open_online(online_ws, "loans")
    model.learn_events([model.checker.learn_event(r) for r in _stream.rows(30)])
    model.close()
    for segment in (online_ws.store / "online" / "loans" / "events").glob("*.events"):
        segment.unlink()
    with pytest.raises(EventLogError, match="holds events up to 30 but the event log"):
        open_online(online_ws, "loans")


def test_threads_learning_at_once_give_the_model_recovery_rebuilds(
        online_ws: Workspace) -> None:
    model, _ = open_online(online_ws, "loans", policy=CheckpointPolicy(events=64))
    rows = _stream.rows(400)

    def learner(part: int) -> None:
        for row in rows[part::8]:
            model.learn(row)

    threads = [threading.Thread(target=learner, args=(part,)) for part in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert model.seq == 400
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovered.seq == 400 and recovery.replayed > 0
    assert _same_predictions(recovered, model)
    model.close()


class _FailingPipeline:
    """A pipeline that breaks on its ``fail_at``-th event (a bug, a full disk...)."""

    def __init__(self, pipeline: Any, fail_at: int) -> None:
        self.pipeline, self.left = pipeline, fail_at

    def learn_one(self, features: dict[str, Any], label: Any) -> None:
        self.left -= 1
        if self.left == 0:
            raise RuntimeError("boom")
        self.pipeline.learn_one(features, label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


def test_a_model_that_fails_half_way_stops_learning_and_recovers_on_reopen(
        online_ws: Workspace) -> None:
    model, _ = open_online(online_ws, "loans")
    model.pipeline = _FailingPipeline(model.pipeline, fail_at=15)
    events = [model.checker.learn_event(r) for r in _stream.rows(40)]
    with pytest.raises(RuntimeError, match="boom"):
        model.learn_events(events[:20])  # logged, then learnt only in part
    with pytest.raises(OnlineModelFailedError, match="restart it to recover"):
        model.learn_events(events[20:])
    model.close()  # no checkpoint of a half-applied batch
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovery.checkpoint is not None and recovery.checkpoint.meta["last_event"] == 0
    assert recovered.seq == 20
    assert _same_predictions(recovered, _uninterrupted(online_ws, 20))


@pytest.mark.slow
def test_sigterm_stops_a_committed_replay_between_chunks_with_a_checkpoint(
        online_ws: Workspace, tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    stream.write_text("".join(json.dumps(row) + "\n" for row in _stream.rows(60_000)))
    code = "import sys; from mlstrata.cli.main import main; main(sys.argv[1:])"
    command = [sys.executable, "-c", code, "online", "replay", "loans", str(stream), "--commit",
               "-w", str(online_ws.root), "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as replaying:
        directory = online_ws.store / "online" / "loans" / "events"
        deadline = time.monotonic() + 60
        while last_event(directory) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        replaying.send_signal(signal.SIGTERM)
        out, err = replaying.communicate(timeout=60)
    assert replaying.returncode == 0, err
    report = json.loads(out)
    assert "stopped by SIGTERM" in report["notes"][-1]
    assert 2000 <= report["learnt"] < 60_000
    spec, _ = read_spec(online_ws, "loans")
    assert checkpoints(online_ws, spec)[0].meta["last_event"] == report["learnt"] \
        == last_event(directory)


def test_a_failure_wakes_every_learner_waiting_for_its_turn(online_ws: Workspace) -> None:
    model, _ = open_online(online_ws, "loans")
    model.pipeline = _FailingPipeline(model.pipeline, fail_at=50)
    rows = _stream.rows(400)
    outcomes: list[str] = []

    def learner(part: int) -> None:
        try:
            for row in rows[part::8]:
                model.learn(row)
        except (RuntimeError, OnlineModelFailedError) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=learner, args=(part,)) for part in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(set(outcomes)) == ["OnlineModelFailedError", "RuntimeError"]
    assert len(outcomes) == 8  # every learner stopped: none learnt past the failure
    model.close()


class _FullDisk(Workspace):
    """A workspace whose disk is full: no artifact can be stored."""

    def put_bytes(self, data: bytes, *, suffix: str, **kwargs: Any) -> Any:
        raise InsufficientSpaceError(f"{self.store}: no space left; free some space")


def test_a_failed_periodic_checkpoint_is_logged_and_loses_nothing(
        online_ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    model, _ = open_online(_FullDisk(online_ws.root), "loans",
                           policy=CheckpointPolicy(events=100))
    for start in range(0, 250, 50):
        model.learn_events([model.checker.learn_event(r)
                            for r in _stream.rows(250)[start:start + 50]])
    assert model.seq == 250
    assert "the checkpoint after event 100 failed" in caplog.text
    with pytest.raises(InsufficientSpaceError):
        model.close()  # the last checkpoint's failure is the caller's to see
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovery.checkpoint is not None and recovery.checkpoint.meta["last_event"] == 0
    assert recovered.seq == 250 and recovery.replayed == 250
    assert _same_predictions(recovered, _uninterrupted(online_ws, 250))
