"""The guard: a poisoned burst is rolled back and quarantined, a real drift is not fought,
recovery after a rollback equals the guarded run, and release/drop persist.

The poisoned stream is the issue's example at full scale: 1,000 events with 100 % flipped labels
inside 20,000 events of the project's test stream (``_stream.rows``). The drifts: a new rule
in the same stream, and River's SEA generator switching concept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstrata.config import GuardConfig
from mlstrata.online.checkpoints import checkpoints
from mlstrata.online.creation import CreateRequest, create_online
from mlstrata.online.durability import CheckpointPolicy
from mlstrata.online.estimators import build_pipeline
from mlstrata.online.guard import GuardedModel, decide, open_guarded
from mlstrata.online.learner import OnlineModel
from mlstrata.online.quarantine import Quarantine, quarantine_path
from mlstrata.online.recovery import open_online
from mlstrata.workspace import Workspace

from . import _stream

_GUARD = GuardConfig(enabled=True)


def _flip(rows: list[dict[str, Any]], start: int, count: int) -> list[dict[str, Any]]:
    for row in rows[start:start + count]:
        row["paid"] = "no" if row["paid"] == "yes" else "yes"
    return rows


def _drifted(rows: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """From ``start`` on, a new concept for good: the label follows the region the other way
    and the amount's threshold moves."""
    for row in rows[start:]:
        score = row["amount"] / 30 - (row["region"] == "north") * 2
        row["paid"] = "yes" if score > 1 else "no"
    return rows


def _run(model: OnlineModel | GuardedModel, rows: list[dict[str, Any]]) -> list[bool]:
    right: list[bool] = []
    for start in range(0, len(rows), 100):
        model.learn_events([model.checker.learn_event(r) for r in rows[start:start + 100]],
                           observe=lambda label, p: right.append(label == p.label))
    return right


def _accuracy(right: list[bool]) -> float:
    return sum(right) / len(right)


@pytest.mark.slow
def test_a_poisoned_burst_is_rolled_back_and_the_rest_of_the_stream_stays_clean(
        online_ws: Workspace) -> None:
    clean = _stream.rows(20_000, seed=1)
    poisoned = _flip(_stream.rows(20_000, seed=1), 10_000, 1_000)
    baseline = _accuracy(_run(open_online(online_ws, "loans", writable=False)[0], clean)[11_000:])
    unguarded = _accuracy(_run(open_online(online_ws, "loans", writable=False)[0],
                               poisoned)[11_000:])
    guarded_model, _ = open_guarded(online_ws, "loans", writable=False, settings=_GUARD)
    guarded = _accuracy(_run(guarded_model, poisoned)[11_000:])

    assert guarded_model.rollbacks == 1
    (entry,) = guarded_model.quarantine.entries
    assert entry.first <= 10_001 and entry.last >= 11_000  # the whole burst, and not much more
    assert entry.events < 1_600
    assert abs(guarded - baseline) <= 0.02
    assert unguarded < baseline - 0.008 and guarded > unguarded


@pytest.mark.slow
def test_a_real_drift_is_learnt_not_rolled_back(online_ws: Workspace) -> None:
    rows = _drifted(_stream.rows(20_000, seed=2), 10_000)
    unguarded = _accuracy(_run(open_online(online_ws, "loans", writable=False)[0],
                               rows)[10_000:])
    guarded_model, _ = open_guarded(online_ws, "loans", writable=False, settings=_GUARD)
    guarded = _accuracy(_run(guarded_model, rows)[10_000:])
    assert guarded_model.changes >= 1  # ADWIN saw the change...
    assert guarded_model.rollbacks == 0  # ...and the shadow learnt it too: no rollback
    assert guarded == unguarded


def _same_predictions(a: Any, b: Any) -> bool:
    return all(a.predict(row) == b.predict(row) for row in _stream.rows(200, seed=42))


def _guarded_run(ws: Workspace, events: int = 6_000, every: int = 500) -> GuardedModel:
    """``events`` events with a burst of 300 flipped labels at 3,000 (the issue's 5 % of 6,000),
    a checkpoint every ``every`` events, not closed."""
    model, _ = open_guarded(ws, "loans", policy=CheckpointPolicy(events=every),
                            settings=GuardConfig(enabled=True, shadow_delay=600))
    _run(model, _flip(_stream.rows(6_000, seed=3), 3_000, 300)[:events])
    assert model.rollbacks == 1
    return model


def test_recovery_after_a_rollback_equals_the_guarded_run(online_ws: Workspace) -> None:
    live = _guarded_run(online_ws)
    assert live.durability is not None
    live.durability.log.close()  # a crash: no last checkpoint
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovered.seq == live.seq == 6_000
    assert recovery.checkpoint is not None
    assert _same_predictions(recovered, live)
    stored = Quarantine.load(quarantine_path(online_ws, "loans"))
    assert stored.skipped() == live.quarantine.skipped()


def test_a_checkpoint_holding_poison_is_passed_over_by_recovery(online_ws: Workspace) -> None:
    """The checkpoint after event 3,200 holds part of the burst (taken before the rollback, it
    skipped nothing); a crash before the checkpoint the rollback asks for is stored (its file
    removed here: the same to recovery) and before the next one: recovery must start from an
    older one."""
    live = _guarded_run(online_ws, events=4_000, every=3_200)
    assert live.durability is not None and live.durability.last is not None
    after_rollback = live.durability.last
    assert after_rollback.meta["quarantine"] == live.quarantine.skipped()
    before = checkpoints(online_ws, online_ws.resolve("loans", ("online",)))[1]
    assert before.meta["last_event"] == 3_200 and before.meta["quarantine"] == []
    live.durability.log.close()  # a crash: no last checkpoint
    online_ws.path_for_read(after_rollback).unlink()
    recovered, recovery = open_online(online_ws, "loans", writable=False)
    assert recovery.checkpoint is not None and recovery.checkpoint.meta["last_event"] == 0
    assert any("do not reflect the current quarantine" in note for note in recovery.notes)
    assert recovery.skipped == live.quarantined_events
    assert recovered.seq == 4_000 and _same_predictions(recovered, live)


def test_release_relearns_and_drop_keeps_skipping_both_persisted(
        online_ws: Workspace) -> None:
    live = _guarded_run(online_ws)
    live.close()
    (entry,) = Quarantine.load(quarantine_path(online_ws, "loans")).entries
    dropped = decide(online_ws, "loans", str(entry.id), "drop")
    assert [d["status"] for d in dropped] == ["dropped"]
    after_drop, _ = open_online(online_ws, "loans", writable=False)
    assert _same_predictions(after_drop, live)

    # a released entry is learnt again: the model equals an unguarded run of the whole log
    path = quarantine_path(online_ws, "loans")
    stored = Quarantine.load(path)
    stored.entries[0].status = "quarantined"
    stored.save()
    decide(online_ws, "loans", "all", "release")
    assert [e.status for e in Quarantine.load(path).entries] == ["released"]
    released, recovery = open_online(online_ws, "loans", writable=False)
    assert recovery.skipped == 0 and released.seq == 6_000
    unguarded = OnlineModel(released.spec, build_pipeline(released.spec))
    _run(unguarded, _flip(_stream.rows(6_000, seed=3), 3_000, 300))
    assert _same_predictions(released, unguarded)
    assert not _same_predictions(released, live)


_SEA = {"columns": {**{f"x{i}": {"type": "float"} for i in range(3)},
                    "y": {"type": "text", "allowed": ["no", "yes"]}}}


def _sea(count: int, drift_at: int) -> list[dict[str, Any]]:
    """River's SEA generator, its concept switching from variant 0 to 3 at ``drift_at``."""
    from river.datasets import synth

    stream = synth.ConceptDriftStream(synth.SEA(variant=0, seed=1), synth.SEA(variant=3, seed=2),
                                      position=drift_at, width=100, seed=3)
    return [{**{f"x{i}": float(x[i]) for i in range(3)}, "y": "yes" if y else "no"}
            for x, y in stream.take(count)]


@pytest.mark.slow
def test_a_sea_concept_drift_is_not_rolled_back(workspace: Workspace, tmp_path: Path) -> None:
    contract = tmp_path / "sea.yaml"
    contract.write_text(yaml.safe_dump(_SEA))
    create_online(workspace, CreateRequest(name="sea", target="y", contract=contract),
                  CheckpointPolicy(events=100_000))
    rows = _sea(12_000, 6_000)
    unguarded = _accuracy(_run(open_online(workspace, "sea", writable=False)[0], rows)[6_000:])
    guarded_model, _ = open_guarded(workspace, "sea", writable=False, settings=_GUARD)
    guarded = _accuracy(_run(guarded_model, rows)[6_000:])
    assert guarded_model.changes >= 1  # ADWIN saw the change (accuracy fell from 98 % to 90 %)
    assert guarded_model.rollbacks == 0
    assert guarded == unguarded
