"""End to end: ``mlstrata serve --online`` predicts and learns over real HTTP, logging both;
``mlstrata monitor NAME`` compares that stream with the reference of the model's snapshot and
finds the drift and the decay where the traffic changed."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlstrata.online.events import EventChecker, EventRefusedError
from mlstrata.online.reading import read_records
from mlstrata.online.recovery import read_spec
from mlstrata.online.snapshot import snapshot_online
from tests.online._snapshot_project import build_project
from tests.serve.conftest import serve_process

ROWS = 400
CHANGED_FROM = 200
BATCH = 10


def _traffic(root: Path) -> list[dict[str, Any]]:
    """Labelled requests; from :data:`CHANGED_FROM` on, incomes quadruple and labels flip."""
    from mlstrata import api

    ws = api.open_workspace(root)
    source = api.synth_credit(root / "data" / "traffic.csv", rows=ROWS + 100, seed=5)
    spec = read_spec(ws, "loans")[1]
    checker = EventChecker(spec)
    checked = []
    for chunk in read_records(source, spec.contract):
        for row in chunk:
            with contextlib.suppress(EventRefusedError):  # the service would refuse it
                checker.learn_event(row)
                checked.append(row)
    for row in checked[CHANGED_FROM:ROWS]:
        row["income"] = row["income"] * 4 if row["income"] is not None else None
        row["default"] = 1 - int(row["default"])
    return checked[:ROWS]


@pytest.mark.slow
def test_serve_online_then_monitor_finds_drift_and_decay(tmp_path: Path, cli: Any) -> None:
    ws = build_project(tmp_path, events=200)
    snapshot = snapshot_online(ws, "loans")
    traffic = _traffic(ws.root)
    with serve_process("--online", "loans", "-w", str(ws.root)) as served, \
            httpx.Client(base_url=served.url, timeout=10) as client:
        for start in range(0, len(traffic), BATCH):
            rows = traffic[start:start + BATCH]
            predicted = client.post("/v1/predict", json=[
                {k: v for k, v in row.items() if k != "default"} for row in rows])
            assert predicted.status_code == 200, predicted.text
            request_id = predicted.json()["request_id"]
            learnt = client.post("/v1/learn", json=[
                {"request_id": request_id, "record": i, "label": row["default"]}
                for i, row in enumerate(rows)])
            assert learnt.status_code == 200 and learnt.json()["accepted"] == len(rows)

    result = cli("monitor", "loans", "--window", "100rows", "--json", "-w", ws.root,
                 "--out", tmp_path / "reports")

    assert result.code == 1, result.err
    body = json.loads(result.out)
    version = read_spec(ws, "loans")[0].version
    assert (body["model"], body["version"]) == ("loans", version)  # the live stream's lines
    assert body["package"] == str(snapshot.package.path)
    windows = body["windows"]
    assert [w["rows"] for w in windows] == [100, 100, 100, 100]
    assert all("income" not in w["drifted_columns"] for w in windows[:2])
    assert all("income" in w["drifted_columns"] for w in windows[2:])
    assert all(w["performance"]["coverage"] == 1.0 for w in windows)  # every label came back
    assert [w["performance"]["decayed"] for w in windows] == [False, False, True, True]
    accuracy = [next(m["value"] for m in w["performance"]["metrics"] if m["metric"] == "accuracy")
                for w in windows]
    # the flip costs most at first; then the live model learns the new labels and recovers
    assert accuracy[2] < min(accuracy[:2]) - 0.3 and accuracy[2] < accuracy[3], accuracy
