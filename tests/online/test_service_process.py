"""``mlstrata serve --online NAME`` as a real process, and many connections at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlstrata.online.durability import events_dir
from mlstrata.online.estimators import build_pipeline
from mlstrata.online.eventlog import read_events
from mlstrata.online.learner import OnlineModel
from mlstrata.workspace import Workspace

from ..serve.conftest import serve_process
from . import _stream
from .test_service import _features, online_server


def test_concurrent_predicts_and_learns_equal_learning_the_log_in_order(
        online_ws: Workspace) -> None:
    rows = _stream.rows(400, seed=11)
    acknowledged: list[int] = []
    errors: list[str] = []
    with online_server(online_ws) as (url, service):
        def worker(part: list[dict[str, Any]]) -> None:
            with httpx.Client(base_url=url) as client:
                for row in part:
                    predicted = client.post("/v1/predict", json=_features(row))
                    learnt = client.post("/v1/learn", json={
                        "request_id": predicted.json()["request_id"], "label": row["paid"]})
                    if learnt.status_code != 200:
                        errors.append(learnt.text)
                    else:
                        acknowledged.append(learnt.json()["last_event"])

        threads = [threading.Thread(target=worker, args=(rows[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=url) as client:
            live = [client.post("/v1/predict", json=_features(r)).json()["predictions"][0]
                    for r in _stream.rows(20, seed=99)]
        spec = service.spec
    assert not errors
    assert sorted(acknowledged) == list(range(1, 401))  # each event acknowledged once
    logged = [payload for _, payload in read_events(events_dir(online_ws, "loans"), 0)]
    assert len(logged) == 400
    again = OnlineModel(spec, build_pipeline(spec))
    again.replay_logged(logged)
    assert [again.predict(_features(r)).to_dict() for r in _stream.rows(20, seed=99)] == live


@pytest.mark.slow
def test_a_restart_after_sigterm_holds_every_acknowledged_event(online_ws: Workspace) -> None:
    rows = _stream.rows(120, seed=13)
    probe = _features(_stream.rows(1, seed=77)[0])
    args = ("--online", "loans", "-w", str(online_ws.root))
    with serve_process(*args) as served, httpx.Client(base_url=served.url) as client:
        for start in range(0, 120, 30):
            answer = client.post("/v1/learn", json=rows[start:start + 30])
            assert answer.status_code == 200 and answer.json()["accepted"] == 30
        before = client.post("/v1/predict", json=probe).json()["predictions"]
    assert served.process.returncode is not None
    with serve_process(*args) as served, httpx.Client(base_url=served.url) as client:
        metrics = client.get("/metrics").text
        after = client.post("/v1/predict", json=probe).json()["predictions"]
    assert 'mlstrata_online_last_event{model="loans"} 120' in metrics
    assert after == before
    assert "0 logged events replayed" in served.output  # SIGTERM checkpointed event 120


@pytest.mark.slow
def test_sigterm_during_concurrent_learns_keeps_every_acknowledged_event(
        online_ws: Workspace) -> None:
    rows = _stream.rows(4000, seed=19)
    acknowledged: list[int] = []
    args = ("--online", "loans", "-w", str(online_ws.root))
    with serve_process(*args) as served:
        def worker(part: list[dict[str, Any]]) -> None:
            with httpx.Client(base_url=served.url, timeout=30) as client:
                for row in part:
                    try:
                        answer = client.post("/v1/learn", json=row)
                    except httpx.TransportError:
                        return
                    if answer.status_code != 200:
                        return
                    acknowledged.append(answer.json()["last_event"])

        threads = [threading.Thread(target=worker, args=(rows[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 200:
            threading.Event().wait(0.01)
        served.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join()
        served.process.wait(30)
    assert 200 <= len(acknowledged) < 4000
    logged = [seq for seq, _ in read_events(events_dir(online_ws, "loans"), 0)]
    assert set(acknowledged) <= set(logged)
    with serve_process(*args) as served, httpx.Client(base_url=served.url) as client:
        metrics = client.get("/metrics").text
    assert f'mlstrata_online_last_event{{model="loans"}} {len(logged)}' in metrics
    assert "0 logged events replayed" in served.output


def test_an_unknown_model_name_is_one_line_and_a_failed_exit(workspace: Workspace) -> None:
    mlstrata = str(Path(sys.executable).with_name("mlstrata"))
    done = subprocess.run([mlstrata, "serve", "--online", "nope", "-w", str(workspace.root),
                           "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "nope" in lines[0], lines
