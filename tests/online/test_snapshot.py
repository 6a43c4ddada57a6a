"""``mlstrata online snapshot``: an online model frozen as a regular model with a River package,
which evaluate, test, the registry, batch scoring and monitoring read like any other."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlstrata.errors import DataError, RefNotFoundError
from mlstrata.model.acceptance import run_acceptance
from mlstrata.model.evaluate import evaluate_model
from mlstrata.online.checkpoints import checkpoints
from mlstrata.online.durability import events_dir
from mlstrata.online.estimators import build_pipeline
from mlstrata.online.eventlog import read_events
from mlstrata.online.frozen_package import load_river_package
from mlstrata.online.learner import OnlineModel
from mlstrata.online.quarantine import Quarantine, quarantine_path
from mlstrata.online.reading import read_records
from mlstrata.online.recovery import open_online, read_spec
from mlstrata.online.snapshot import SnapshotResult, snapshot_online
from mlstrata.package.locate import locate_package
from mlstrata.runtime.manifest import (
    PackageIntegrityError,
    UnsupportedFlavourError,
    verify_package,
)
from mlstrata.runtime.model import load
from mlstrata.workspace import Workspace

from ._snapshot_project import build_project


@pytest.fixture(scope="module")
def snapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, SnapshotResult]:
    """The snapshot project and a first snapshot of ``loans``."""
    ws = build_project(tmp_path_factory.mktemp("snapshot"))
    return ws, snapshot_online(ws, "loans")


def _probe(ws: Workspace, count: int = 40) -> list[dict[str, object]]:
    """Requests the live service could receive: stream rows without their label."""
    contract = read_spec(ws, "loans")[1].contract
    rows = next(iter(read_records(ws.root / "data" / "stream.csv", contract)))[:count]
    return [{k: v for k, v in row.items() if k != "default"} for row in rows]


def test_a_snapshot_is_a_model_with_a_verified_river_package_and_its_lineage(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    ws, result = snapped
    model = result.model
    spec_artifact = read_spec(ws, "loans")[0]
    newest = checkpoints(ws, spec_artifact)[0]
    assert model.kind == "model" and model.name == "loans"
    assert model.meta["flavour"] == "river" and model.meta["task"] == "binary"
    online = model.meta["online"]
    assert online["checkpoint"] == newest.id  # the checkpoint's sha256
    assert online["events"] == [1, int(newest.meta["last_event"]) + online["replayed"]]
    assert online["log"] == {"model": "loans", "version": spec_artifact.version}
    manifest = verify_package(result.package.path, flavour="river")
    assert manifest.flavour == "river" and manifest.model_id == model.id
    assert manifest.files["model.joblib"].sha256 == model.id
    assert manifest.lineage["checkpoint"] == newest.id
    assert manifest.lineage["online"] == spec_artifact.id
    assert manifest.parity["label_mismatches"] == 0 and manifest.parity["rows"] > 200
    card = (result.package.path / "model_card.md").read_text()
    assert "Snapshot parity (frozen vs live)" in card
    assert f"after event {online['events'][1]}" in card
    signature = json.loads((result.package.path / "signature.json").read_text())
    assert signature["flavour"] == "river"
    assert signature["outputs"][1]["classes"] == [0, 1]


def test_the_packaged_model_answers_what_the_live_model_answers(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    ws, result = snapped
    live, _ = open_online(ws, "loans", writable=False)
    requests = _probe(ws)
    packaged = load_river_package(result.package.path).predict_records(requests)
    expected = [[live.predict(r).probabilities[c] for c in (0, 1)] for r in requests]
    assert packaged.probabilities is not None
    np.testing.assert_array_equal(packaged.probabilities, np.asarray(expected))
    assert packaged.labels is not None
    assert packaged.labels.tolist() == [live.predict(r).label for r in requests]
    logged_as = load_river_package(result.package.path).log_info  # one stream with the live
    assert (logged_as.name, logged_as.version) == ("loans", read_spec(ws, "loans")[0].version)


def test_evaluate_and_the_acceptance_test_read_the_snapshot_like_any_model(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    ws, result = snapped
    evaluation = evaluate_model(ws, result.model.ref, result.package.path)
    assert evaluation.passed and evaluation.metrics["roc_auc"] > 0.6
    assert list(evaluation.latency_ms) == ["native"]  # the package runs the frozen model itself
    acceptance = run_acceptance(ws, result.model.ref, n_boot=20)
    assert acceptance.rows > 200 and "roc_auc" in {m.metric for m in acceptance.metrics}


def test_the_lean_runtime_refuses_a_river_package_in_one_line(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    _, result = snapped
    with pytest.raises(UnsupportedFlavourError) as refused:
        load(result.package.path)
    message = str(refused.value)
    assert "\n" not in message
    assert "is a river package, not onnx" in message
    assert "mlstrata serve --online loans" in message and "mlstrata predict" in message


def test_an_altered_river_package_is_never_unpickled(
        snapped: tuple[Workspace, SnapshotResult], tmp_path: Path) -> None:
    _, result = snapped
    copy = shutil.copytree(result.package.path, tmp_path / "altered")
    pickled = copy / "model.joblib"
    pickled.write_bytes(pickled.read_bytes() + b"\x00")
    with pytest.raises(PackageIntegrityError, match="model.joblib: sha256 .* does not match"):
        load_river_package(copy)


def test_predict_scores_a_river_package_and_spark_is_refused(
        snapped: tuple[Workspace, SnapshotResult], cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws, result = snapped
    source = tmp_path / "requests.csv"
    requests = _probe(ws, 30)
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(requests[0]))
        writer.writeheader()
        writer.writerows(requests)
    out = tmp_path / "scored.csv"
    done = cli("predict", result.package.path, "-i", source, "-o", out, "--no-log",
               "-w", ws.root)
    assert done.code == 0, done.err
    with out.open() as handle:
        scored = list(csv.DictReader(handle))
    live, _ = open_online(ws, "loans", writable=False)
    assert [float(r["probability_1"]) for r in scored] == pytest.approx(
        [live.predict(r).probabilities[1] for r in requests], abs=1e-12)
    spark = cli("predict", result.package.path, "-i", source, "-o", out, "--engine", "spark",
                "-w", ws.root)
    said = " ".join(spark.err.replace("│", " ").split())
    assert spark.code == 2 and "River package" in said and "use --engine local" in said


def test_a_snapshot_is_taken_while_a_server_holds_the_model(
        snapped: tuple[Workspace, SnapshotResult], cli) -> None:  # type: ignore[no-untyped-def]
    ws, first = snapped
    live, _ = open_online(ws, "loans")  # holds the event log's lock, as a server does
    with contextlib.closing(live):
        done = cli("online", "snapshot", "loans", "--json", "-w", ws.root)
    assert done.code == 0, done.err
    body = json.loads(done.out)
    assert body["flavour"] == "river" and body["model"].startswith("loans@")
    assert body["online"]["events"] == first.model.meta["online"]["events"]


@pytest.mark.slow
def test_an_unchanged_model_snapshots_to_the_same_version_in_any_process(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    """Two processes with other hash seeds (set iteration orders) freeze the same bytes: the
    same model id, so the same version, as the first snapshot taken in this one, and its
    package is reused."""
    ws, first = snapped
    mlstrata = str(Path(sys.executable).with_name("mlstrata"))
    answers = []
    for seed in ("1", "2"):
        done = subprocess.run([mlstrata, "online", "snapshot", "loans", "--json", "-w", ws.root],
                              capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout))
    assert {(a["model"], a["id"]) for a in answers} == {(first.model.ref, first.model.id)}
    assert all(a["unchanged"] for a in answers)
    assert {a["package"]["path"] for a in answers} == {str(first.package.path)}


def test_quarantined_events_are_not_in_the_snapshot(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    ws, _ = snapped
    Quarantine.load(quarantine_path(ws, "loans")).add(100, 199, reason="test")
    result = snapshot_online(ws, "loans")
    online = result.model.meta["online"]
    assert online["quarantined"] == [[100, 199]] and online["quarantined_events"] == 100
    spec = read_spec(ws, "loans")[1]
    rebuilt = OnlineModel(spec, build_pipeline(spec))
    rebuilt.replay_logged([payload for seq, payload in read_events(events_dir(ws, "loans"), 0)
                           if not 100 <= seq <= 199])
    requests = _probe(ws)
    packaged = load_river_package(result.package.path).predict_records(requests)
    assert packaged.probabilities is not None
    np.testing.assert_array_equal(
        packaged.probabilities[:, 1], [rebuilt.predict(r).probabilities[1] for r in requests])
    assert "100 quarantined event(s) were not learnt (100..199)" in (
        result.package.path / "model_card.md").read_text()


def test_a_model_created_from_a_contract_needs_a_dataset(online_ws: Workspace) -> None:
    with pytest.raises(DataError, match="created from a contract .* pass --dataset REF"):
        snapshot_online(online_ws, "loans")
    with pytest.raises(RefNotFoundError, match="no snapshot yet.*'mlstrata online snapshot "
                                               "loans'"):
        locate_package("loans", online_ws)  # what serve, predict and monitor are told


@pytest.mark.slow
def test_the_registry_registers_a_snapshot_and_its_package(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    from mlstrata.package import registry

    ws, result = snapped
    native = registry.register(ws, result.model.ref)
    assert native.model_id == result.model.id
    assert registry.register(ws, result.model.ref) == native  # the same model: one version
    packaged = registry.register(ws, result.model.ref, result.package.path)
    assert packaged == native


@pytest.mark.slow
def test_the_packaged_mlflow_model_checks_the_hash_and_predicts_labels(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    import mlflow.pyfunc
    import pandas as pd

    ws, result = snapped
    requests = _probe(ws, 10)
    loaded = mlflow.pyfunc.load_model(str(result.package.path))
    live, _ = open_online(ws, "loans", writable=False)
    assert list(loaded.predict(pd.DataFrame(requests))) == [live.predict(r).label
                                                            for r in requests]


def test_an_unchanged_model_is_not_evaluated_again_on_another_dataset(
        snapped: tuple[Workspace, SnapshotResult]) -> None:
    """The unchanged model *is* its earlier snapshot, whose metrics and card come from the
    dataset it was evaluated on: another one is refused in one line, nothing stored."""
    from mlstrata import api

    ws, _ = snapped
    earlier = snapshot_online(ws, "loans")
    api.ingest(ws.root / "data" / "stream.csv", "stream", target="default",
               key="application_id", workspace=ws.root)
    before = len(ws.artifacts("model"))
    with pytest.raises(DataError, match=rf"has not changed since {earlier.model.ref}, which was "
                                        r"evaluated on credit@\d+, not stream@\d+"):
        snapshot_online(ws, "loans", dataset="stream")
    assert len(ws.artifacts("model")) == before
