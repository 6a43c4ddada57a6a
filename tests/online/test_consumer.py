"""``mlstrata online consume``: learning from a real Redis stream through a consumer group —
acknowledged only once durable, refusals dead-lettered, exactly once across crashes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson
import pytest
import redis

from mlstrata.online.consumer import ConsumerSettings, StreamConsumer, open_model
from mlstrata.online.durability import events_dir
from mlstrata.online.estimators import build_pipeline
from mlstrata.online.eventlog import last_event, read_events
from mlstrata.online.learner import OnlineModel
from mlstrata.online.recovery import open_online, read_spec
from mlstrata.predlog.reading import read_lines
from mlstrata.workspace import Workspace

from . import _stream


@pytest.fixture
def stream() -> str:
    """A stream name of its own for each test (the Redis server is shared by the session)."""
    return f"events-{uuid.uuid4().hex[:8]}"


def _client(url: str) -> Any:
    return redis.Redis.from_url(url, decode_responses=True)


def _push(url: str, stream: str, rows: list[Any], field: str = "event") -> list[str]:
    """XADD each row (a dict as JSON, or raw text) and return the entry ids."""
    with _client(url).pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.xadd(stream, {field: row if isinstance(row, str) else orjson.dumps(row)})
        return [str(entry_id) for entry_id in pipe.execute()]


def _logged(ws: Workspace) -> list[dict[str, Any]]:
    return [orjson.loads(p) for _, p in read_events(events_dir(ws, "loans"))]


def _uninterrupted(ws: Workspace, rows: list[dict[str, Any]]) -> OnlineModel:
    _, spec = read_spec(ws, "loans")
    model = OnlineModel(spec, build_pipeline(spec))
    model.learn_events([model.checker.learn_event(r) for r in rows])
    return model


def _same_predictions(a: OnlineModel, b: OnlineModel) -> bool:
    return all(a.predict(row) == b.predict(row) for row in _stream.rows(200, seed=42))


def _pending(url: str, stream: str, group: str = "mlstrata.loans") -> int:
    return int(_client(url).xpending(stream, group)["pending"])


def _json(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.err
    body: dict[str, Any] = json.loads(result.out)
    return body


def test_pushed_events_are_learnt_and_acknowledged(cli: Any, online_ws: Workspace,
                                                   redis_url: str, stream: str) -> None:
    rows = _stream.rows(300)
    ids = _push(redis_url, stream, rows)
    before, _ = open_online(online_ws, "loans", writable=False)
    report = _json(cli("online", "consume", "loans", "--redis", redis_url, "--stream", stream,
                       "--batch", "64", "--max-events", "300", "-w", online_ws.root, "--json"))
    assert report["learnt"] == report["read"] == 300 and report["dead_lettered"] == 0
    assert report["events"] == [1, 300] and report["events_per_second"] > 0
    logged = _logged(online_ws)
    assert [e["source"]["id"] for e in logged] == ids
    assert logged[0]["source"] == {"redis": stream, "group": "mlstrata.loans", "id": ids[0]}
    assert _pending(redis_url, stream) == 0
    after, _ = open_online(online_ws, "loans", writable=False)
    assert not _same_predictions(before, after)  # the model learnt
    assert _same_predictions(after, _uninterrupted(online_ws, rows))
    # the prediction log: each event's prediction made just before learning it, then its label
    log = online_ws.store / "predictions"
    lines = list(read_lines(log, model="loans"))
    assert sorted(line["request_id"] for line in lines) == sorted(ids)
    first = next(line for line in lines if line["request_id"] == ids[0])
    assert first["source"] == "redis" and first["inputs"]["amount"] == rows[0]["amount"]
    labels = {line["request_id"]: line["label"] for line in read_lines(log, model="loans",
                                                                        feedback=True)}
    assert labels == {entry_id: row["paid"] for entry_id, row in zip(ids, rows, strict=True)}


def test_refused_and_malformed_entries_are_dead_lettered_and_acknowledged(
        cli: Any, online_ws: Workspace, redis_url: str, stream: str) -> None:
    rows: list[Any] = _stream.rows(20)
    rows[3] = {**rows[3], "amount": -5.0}  # an error rule: refused
    rows[7] = {**rows[7], "paid": "maybe"}  # a label outside the target's domain
    rows[11] = "{not json"  # malformed
    rows[15] = "[1, 2]"  # JSON, but not an object of columns
    ids = _push(redis_url, stream, rows)
    _push(redis_url, stream, [_stream.rows(1)[0]], field="payload")  # no 'event' field
    report = _json(cli("online", "consume", "loans", "--redis", redis_url, "--stream", stream,
                       "--dead-letter", f"{stream}.bad", "--max-events", "21",
                       "-w", online_ws.root, "--json"))
    assert (report["learnt"], report["refused"], report["malformed"]) == (16, 2, 3)
    assert report["dead_lettered"] == 5 and report["dead_letter"] == f"{stream}.bad"
    assert _pending(redis_url, stream) == 0  # every entry acknowledged, dead letters too
    letters = [fields for _, fields in _client(redis_url).xrange(f"{stream}.bad")]
    assert [letter["id"] for letter in letters[:4]] == [ids[3], ids[7], ids[11], ids[15]]
    assert [letter["kind"] for letter in letters] == ["refused"] * 2 + ["malformed"] * 3
    assert "field 'amount' (rule min)" in letters[0]["reason"]
    assert json.loads(letters[0]["violations"])[0]["field"] == "amount"
    assert "field 'paid' is 'maybe', not an allowed category" in letters[1]["reason"]
    assert "not JSON" in letters[2]["reason"] and "JSON list" in letters[3]["reason"]
    assert "no field 'event'" in letters[4]["reason"]
    assert json.loads(letters[0]["fields"])["event"] == orjson.dumps(rows[3]).decode()
    assert len(_logged(online_ws)) == 16


@pytest.mark.parametrize("restart", ["same consumer", "another consumer, hint file lost"])
def test_a_crash_between_fsync_and_ack_does_not_learn_twice(
        online_ws: Workspace, redis_url: str, stream: str, restart: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _stream.rows(250)
    _push(redis_url, stream, rows)
    settings = ConsumerSettings(url=redis_url, stream=stream, group="mlstrata.loans", batch=50,
                                max_events=250)
    model, _, _ = open_model(online_ws, "loans")
    consumer = StreamConsumer.for_workspace(online_ws, model, _client(redis_url), settings)
    real = model.learn_events
    calls = 0

    def learn_then_crash(events: Any, observe: Any = None) -> int:
        nonlocal calls
        calls += 1
        seq = real(events)
        if calls == 3:  # batch 3 is fsynced: the process dies before its XACK
            raise _Crash
        return seq

    monkeypatch.setattr(model, "learn_events", learn_then_crash)
    with pytest.raises(_Crash):
        consumer.run()
    assert model.durability is not None
    model.durability.log.close()  # the crash: no checkpoint, the log's lock released
    assert last_event(events_dir(online_ws, "loans")) == 150
    # batch 3 learnt, not acknowledged; batch 4, read while batch 3 was learnt, neither
    assert _pending(redis_url, stream) == 100

    hints = events_dir(online_ws, "loans").parent / "consumers"
    assert len(list(hints.glob("*.json"))) == 1
    again = replace(settings, max_events=150)
    if restart != "same consumer":  # the mark is found by reading the whole log; the entries
        shutil.rmtree(hints)  # pending under the old consumer's name are claimed
        again = replace(again, consumer="other")
    model, _, _ = open_model(online_ws, "loans")
    with contextlib.closing(model):
        report = StreamConsumer.for_workspace(online_ws, model, _client(redis_url),
                                              again).run()
    assert (report.already_learnt, report.learnt) == (50, 100)
    assert report.notes == ([] if restart == "same consumer" else
                            ["100 pending entries claimed from other consumers of the group"])
    logged = _logged(online_ws)
    assert len(logged) == 250 == len({e["source"]["id"] for e in logged})
    assert _pending(redis_url, stream) == 0
    recovered, _ = open_online(online_ws, "loans", writable=False)
    assert _same_predictions(recovered, _uninterrupted(online_ws, rows))


class _Crash(BaseException):
    """The process dying at a chosen point."""


_CONSUME = "import sys; from mlstrata.cli.main import main; main(sys.argv[1:])"


def _consumer(ws: Workspace, url: str, stream: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(uuid.uuid4().int % 1000)}
    return subprocess.Popen([sys.executable, "-c", _CONSUME, "online", "consume", "loans",
                             "--redis", url, "--stream", stream, "--batch", "40",
                             "--block", "100", "-w", str(ws.root), "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_mid_stream_then_a_restart_learns_every_event_exactly_once(
        online_ws: Workspace, redis_url: str, stream: str) -> None:
    rows = _stream.rows(4000)
    ids = _push(redis_url, stream, rows)
    directory = events_dir(online_ws, "loans")
    with _consumer(online_ws, redis_url, stream) as first:
        _wait(lambda: last_event(directory) >= 1500)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    killed_at = last_event(directory)
    assert killed_at < 4000
    with _consumer(online_ws, redis_url, stream) as second:
        _wait(lambda: last_event(directory) >= 4000 and _pending(redis_url, stream) == 0)
        second.send_signal(signal.SIGTERM)  # stops after the batch in hand, checkpoints
        out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    report = json.loads(out)
    assert report["stopped_by"] == "signal"
    assert report["learnt"] + killed_at == 4000
    assert [e["source"]["id"] for e in _logged(online_ws)] == ids  # each once, in order
    spec, _ = read_spec(online_ws, "loans")
    from mlstrata.online.checkpoints import checkpoints

    assert checkpoints(online_ws, spec)[0].meta["last_event"] == 4000  # closed on SIGTERM
    recovered, _ = open_online(online_ws, "loans", writable=False)
    assert _same_predictions(recovered, _uninterrupted(online_ws, rows))


def test_people_get_a_summary_line(cli: Any, online_ws: Workspace, redis_url: str,
                                   stream: str) -> None:
    _push(redis_url, stream, [*_stream.rows(9), "{bad"])
    result = cli("online", "consume", "loans", "--redis", redis_url, "--stream", stream,
                 "--max-events", "10", "-w", online_ws.root)
    assert result.code == 0, result.err
    out = " ".join(result.out.split())
    assert "10 entries: 9 learnt, 0 already learnt, 1 dead-lettered (0 refused, 1 malformed)" \
        in out and "events/s; stopped by max-events" in out
    assert "learnt as events 1..9" in out and f"{stream}.dead-letter" in out
    assert f"consuming {stream} (group mlstrata.loans) into loans" in result.err


def test_the_guard_watches_a_consumed_stream(cli: Any, online_ws: Workspace, redis_url: str,
                                             stream: str) -> None:
    rows = _stream.rows(400)
    ids = _push(redis_url, stream, rows)
    report = _json(cli("online", "consume", "loans", "--redis", redis_url, "--stream", stream,
                       "--guard", "--max-events", "400", "-w", online_ws.root, "--json"))
    assert report["learnt"] == 400 and report["notes"][-1].startswith("guard: 0 rollback(s)")
    assert [e["source"]["id"] for e in _logged(online_ws)] == ids
    recovered, _ = open_online(online_ws, "loans", writable=False)
    assert _same_predictions(recovered, _uninterrupted(online_ws, rows))


def test_an_unknown_model_or_an_unreachable_redis_is_one_line(
        cli: Any, online_ws: Workspace, redis_url: str, stream: str) -> None:
    unknown = cli("online", "consume", "nope", "--redis", redis_url, "--stream", stream,
                  "-w", online_ws.root)
    assert unknown.code != 0 and "nope" in unknown.err
    assert len(unknown.err.strip().splitlines()) == 1
    unreachable = cli("online", "consume", "loans", "--redis", "redis://127.0.0.1:1/0",
                      "--stream", stream, "-w", online_ws.root)
    assert unreachable.code != 0 and "cannot reach Redis at redis://127.0.0.1:1/0" \
        in unreachable.err
    assert len(unreachable.err.strip().splitlines()) == 1
    assert last_event(events_dir(online_ws, "loans")) == 0
