"""The guard's state survives a restart: a guarded model stopped mid-stream — cleanly, or by a
crash after its last checkpoint — and reopened goes on exactly as one that never stopped: same
rollback, same quarantine, same counters, the same predictions on the way and afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlstrata.config import GuardConfig
from mlstrata.online.creation import CreateRequest, create_online
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.online.guard import GuardedModel, open_guarded
from mlstrata.online.recovery import open_online
from mlstrata.workspace import Workspace

from . import _stream

_GUARD = GuardConfig(enabled=True)
_POLICY = CheckpointPolicy(events=500)
_HELD_OUT = _stream.rows(300, seed=9)


def _poisoned() -> list[dict[str, Any]]:
    """8,000 events, labels flipped for events 4,001..5,000."""
    rows = _stream.rows(8_000, seed=1)
    for row in rows[4_000:5_000]:
        row["paid"] = "no" if row["paid"] == "yes" else "yes"
    return rows


def _open(ws: Workspace, name: str, settings: GuardConfig = _GUARD) -> GuardedModel:
    return open_guarded(ws, name, policy=_POLICY, settings=settings)[0]


def _learn(model: GuardedModel, rows: list[dict[str, Any]], seen: list[Any]) -> None:
    """Batches of 100, recording each live prediction made before learning."""
    for start in range(0, len(rows), 100):
        model.learn_events([model.checker.learn_event(r) for r in rows[start:start + 100]],
                           observe=lambda _, prediction: seen.append(prediction.label))


def _outcome(model: GuardedModel, seen: list[Any]) -> dict[str, Any]:
    return {"counters": model.counters(), "seen": seen,
            "quarantine": [(e.first, e.last, e.status) for e in model.quarantine.entries],
            "held_out": [model.predict(row).probabilities for row in _HELD_OUT]}


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "crash", "replayed"),
                         [(4_500, False, 0), (4_600, True, 100), (5_400, True, 300)],
                         ids=["clean-stop-in-the-burst", "crash-in-the-burst",
                              "crash-after-the-rollback"])
def test_a_restarted_guarded_model_equals_one_that_never_stopped(
        online_ws: Workspace, stop: int, crash: bool, replayed: int) -> None:
    """Checkpoints every 500 events and right after the rollback (at 5,100): the restarted
    guard learns the events after its checkpoint itself, then the rest of the stream."""
    rows = _poisoned()
    for name in ("steady", "restarted"):
        create_online(online_ws, CreateRequest(name=name, target="paid",
                                               contract=_stream.write_contract(
                                                   online_ws.root / "contract.yaml")))
    steady, seen = _open(online_ws, "steady"), []
    _learn(steady, rows, seen)
    expected = _outcome(steady, seen)
    steady.close()
    assert expected["counters"]["rollbacks"] == 1 and expected["quarantine"][0][0] <= 4_001

    first, seen = _open(online_ws, "restarted"), []
    _learn(first, rows[:stop], seen)
    if crash:  # as kill -9 leaves it: events logged after the last checkpoint, nothing closed
        assert first.model.durability is not None
        first.model.durability.log.close()
    else:
        first.close()
    restarted, recovery = open_guarded(online_ws, "restarted", policy=_POLICY, settings=_GUARD)
    assert recovery.notes == [] and recovery.replayed == replayed
    _learn(restarted, rows[stop:], seen)
    outcome = _outcome(restarted, seen)
    restarted.close()
    assert outcome == expected


def test_a_guard_with_other_settings_starts_afresh_and_says_so(online_ws: Workspace) -> None:
    model = _open(online_ws, "loans")
    _learn(model, _stream.rows(300, seed=3), [])
    model.close()
    other = GuardConfig(enabled=True, window=100)
    guarded, recovery = open_guarded(online_ws, "loans", policy=_POLICY, settings=other)
    assert recovery.notes == [f"{recovery.checkpoint.ref} holds a guard state taken with other "  # type: ignore[union-attr]
                              "online.guard settings: the guard starts afresh at event 300"]
    assert guarded.counters()["live_window_score"] == 0.0
    guarded.close()


@pytest.mark.slow
def test_two_guarded_replays_equal_one_across_the_open_episode(
        cli: Any, online_ws: Workspace, tmp_path: Path) -> None:
    """``online replay --guard --commit`` of the first 5,000 events, then of the rest (the
    suspect episode is open across the restart; the rollback comes after it), equals one
    replay of the whole stream: the same quarantine, counters and model."""
    rows, ws = _poisoned(), online_ws.root
    files = {}
    for name, part in (("whole", rows), ("first", rows[:5_000]), ("rest", rows[5_000:])):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in part))
    contract = _stream.write_contract(tmp_path / "contract.yaml")
    notes = {}
    for model, parts in (("once", ["whole"]), ("twice", ["first", "rest"])):
        assert cli("online", "create", model, "--contract", contract, "--target", "paid",
                   "-w", ws).code == 0
        for part in parts:
            done = cli("online", "replay", model, files[part], "--guard", "--commit", "-w", ws,
                       "--json")
            assert done.code == 0, done.err
            notes[model] = [n for n in json.loads(done.out)["notes"] if n.startswith("guard:")]
    assert notes["twice"] == notes["once"] and notes["once"][0].startswith("guard: 1 rollback")
    listed = {model: [(e["first"], e["last"]) for e in json.loads(cli(
        "online", "quarantine", model, "-w", ws, "--json").out)["entries"]]
        for model in ("once", "twice")}
    assert listed["once"] == listed["twice"] and listed["once"][0][0] <= 4_001
    once, twice = (open_online(online_ws, m, writable=False)[0] for m in ("once", "twice"))
    assert [once.predict(r) for r in _HELD_OUT] == [twice.predict(r) for r in _HELD_OUT]
