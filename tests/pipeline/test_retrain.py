"""``mlstrata retrain``: bad batches refused with nothing changed, the lock, the policy, the
schedule — and the proof: a changed relationship promoted and served without a dropped request,
corrupted labels refused with the reason shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from mlstrata.config import RetrainConfig, SearchConfig
from mlstrata.data.clean import fitted_recipes_since_ingest
from mlstrata.data.sources import SourceSpec
from mlstrata.errors import ConfigError
from mlstrata.model.evaluate import ModelScores, find_evaluation
from mlstrata.package.locate import locate_package
from mlstrata.package.registry import rollback, show
from mlstrata.retrain import (
    BatchRefusedError,
    RetrainRequest,
    due_reasons,
    paired_bootstrap,
    retrain,
    retrain_lock,
)
from mlstrata.workspace import Workspace
from tests.deploy._schemas import kubernetes_errors
from tests.serve.conftest import serve_process, valid_records

from ._history import (
    between,
    champion_project,
    changed_relationship,
    corrupted_labels,
    credit_months,
    write,
)

MLSTRATA = str(Path(sys.executable).with_name("mlstrata"))
WIDE = {**os.environ, "COLUMNS": "220"}


@pytest.fixture(scope="module")
def months() -> pa.Table:
    """Three years of synthetic applications, oldest first."""
    return credit_months(rows=3000)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, months: pa.Table) -> Workspace:
    """A project whose champion learnt from 2021."""
    return champion_project(tmp_path_factory.mktemp("retrain"),
                            between(months, date(2021, 1, 1), date(2022, 1, 1)))


@pytest.fixture
def batch(months: pa.Table) -> pa.Table:
    """The first half of 2022, as recorded (the old relationship)."""
    return between(months, date(2022, 1, 1), date(2022, 7, 1))


def _state(ws: Workspace) -> tuple[list[str], Any]:
    """The catalog's artifact ids and the registry's champion: what a refusal must not change."""
    return [a.id for a in ws.artifacts()], show(ws, "credit").to_dict()


def _refused(ws: Workspace, path: Path) -> str:
    before = _state(ws)
    with pytest.raises(BatchRefusedError) as refused:
        retrain(ws, RetrainRequest("credit", SourceSpec(str(path))))
    assert _state(ws) == before
    assert "\n" not in str(refused.value)
    return str(refused.value)


@pytest.mark.slow
def test_a_batch_lacking_a_column_the_model_needs_is_refused_and_nothing_changes(
        project: Workspace, batch: pa.Table, tmp_path: Path) -> None:
    path = write(batch.drop_columns(["income"]), tmp_path / "no-income.csv")
    message = _refused(project, path)
    assert "lacks column(s) 'income' (the model needs it)" in message
    assert "nothing was stored" in message


@pytest.mark.slow
def test_a_batch_breaking_the_contract_is_refused_and_nothing_changes(
        project: Workspace, batch: pa.Table, tmp_path: Path) -> None:
    terms = batch.column("term_months").to_pylist()
    broken = batch.set_column(batch.schema.get_field_index("term_months"), "term_months",
                              pa.array([99, *terms[1:]], pa.int64()))
    message = _refused(project, write(broken, tmp_path / "term-99.csv"))
    assert "breaks 1 rule(s) of credit.yaml (term_months.allowed)" in message
    assert "mlstrata validate" in message


@pytest.mark.slow
def test_a_batch_whose_values_do_not_read_with_the_history_types_is_refused(
        project: Workspace, batch: pa.Table, tmp_path: Path) -> None:
    terms = [str(v) for v in batch.column("term_months").to_pylist()]
    broken = batch.set_column(batch.schema.get_field_index("term_months"), "term_months",
                              pa.array(["forever", *terms[1:]]))
    message = _refused(project, write(broken, tmp_path / "forever.csv"))
    assert message.startswith("batch refused, nothing stored: ")
    assert "column 'term_months' holds numbers" in message and "'forever' at line 2" in message


@pytest.mark.slow
def test_a_batch_already_in_the_history_is_refused_and_nothing_changes(
        project: Workspace) -> None:
    message = _refused(project, project.root / "data" / "credit.csv")
    assert "this batch is already in credit's history (credit@1)" in message


@pytest.mark.slow
def test_a_retrain_while_another_holds_the_lock_is_refused_in_one_line(
        project: Workspace, batch: pa.Table, tmp_path: Path) -> None:
    path = write(batch, tmp_path / "batch.csv")
    before = _state(project)
    with retrain_lock(project.store, "credit", "mlstrata retrain credit --data other.csv"):
        done = subprocess.run([MLSTRATA, "retrain", "credit", "--data", str(path), "-w",
                               str(project.root)], capture_output=True, text=True, env=WIDE,
                              timeout=120)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line
    assert "another retrain of credit holds the lock (since" in line
    assert f"pid {os.getpid()}: mlstrata retrain credit --data other.csv" in line
    assert _state(project) == before


@pytest.mark.slow
def test_a_retrain_the_policy_says_is_not_due_changes_nothing(
        project: Workspace, batch: pa.Table, tmp_path: Path) -> None:
    ws = Workspace(project.root)
    ws.config = ws.config.model_copy(update={"retrain": RetrainConfig(min_new_rows=10**6)})
    before = _state(ws)
    path = write(batch, tmp_path / "b.csv")
    report = retrain(ws, RetrainRequest("credit", SourceSpec(str(path))))
    assert report.status == "not due" and report.exit_code == 0
    assert report.reasons[0].endswith("(< retrain.min_new_rows 1000000)")
    assert _state(ws) == before


@pytest.mark.slow
def test_a_search_budget_too_small_to_fit_a_model_is_refused_before_anything_changes(
        project: Workspace, batch: pa.Table, tmp_path: Path) -> None:
    ws = Workspace(project.root)
    model = ws.config.model.model_copy(update={
        "strategy": "search", "search": SearchConfig(time_budget_seconds=1)})
    ws.config = ws.config.model_copy(update={"model": model})
    before = _state(ws)
    with pytest.raises(ConfigError, match=r"time budget 1 s is too small to fit even one model "
                                          r"on \d+ rows; the minimum is 10 s"):
        retrain(ws, RetrainRequest("credit", SourceSpec(str(write(batch, tmp_path / "b.csv")))))
    assert _state(ws) == before


def test_the_policy_is_due_on_rows_age_or_drift() -> None:
    class Model:
        created_at = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="seconds")

    champion: Any = Model()
    settings = RetrainConfig(min_new_rows=500, max_model_age_days=30, on_drift=False)
    due, why = due_reasons(settings, 100, champion, "drift")
    assert due and why == ["the champion is 40.0 days old (>= retrain.max_model_age_days 30)"]
    young = RetrainConfig(min_new_rows=500, max_model_age_days=60, on_drift=True)
    assert due_reasons(young, 100, champion, "drift") == (
        True, ["mlstrata monitor found drift or decay"])
    due, why = due_reasons(young, 100, champion, "schedule")
    assert not due and len(why) == 2


def test_the_paired_bootstrap_is_seeded_and_centred_on_the_paired_difference() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    sharp = np.clip(y * 0.6 + rng.normal(0.2, 0.2, 400), 0, 1)
    blunt = np.clip(y * 0.2 + rng.normal(0.4, 0.3, 400), 0, 1)

    def scores(p: np.ndarray) -> ModelScores:
        return ModelScores(y, (p >= 0.5).astype(int), np.c_[1 - p, p], [0, 1])

    first = paired_bootstrap(scores(blunt), scores(sharp), "roc_auc", resamples=300, seed=3,
                             confidence=0.95)
    again = paired_bootstrap(scores(blunt), scores(sharp), "roc_auc", resamples=300, seed=3,
                             confidence=0.95)
    assert first == again
    point, low, high = first
    assert 0 < low < point < high
    same = paired_bootstrap(scores(sharp), scores(sharp), "log_loss", resamples=100, seed=0,
                            confidence=0.9)
    assert same == (0.0, 0.0, 0.0)


def test_the_cron_line_and_a_valid_kubernetes_cronjob(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from mlstrata import api

    root = tmp_path / "p"
    api.init(root, "p")
    printed = cli("retrain", "credit", "--data", str(root / "incoming.csv"), "--print-cron",
                  "-w", root)
    assert printed.code == 0, printed.err
    assert printed.out.startswith(f"0 3 * * * cd {root.resolve()} && mlstrata retrain credit "
                                  f"--data {root / 'incoming.csv'} --trigger schedule")
    manifest = tmp_path / "cronjob.yaml"
    written = cli("retrain", "credit", "--data", str(root.resolve() / "incoming.csv"),
                  "--cronjob", manifest, "--image", "registry.example/mlstrata:1.0",
                  "--claim", "credit-project", "--schedule", "30 2 * * 1", "-w", root)
    assert written.code == 0, written.err
    document = yaml.safe_load(manifest.read_text())
    assert kubernetes_errors(document) == []
    assert document["spec"]["schedule"] == "30 2 * * 1"
    assert document["spec"]["concurrencyPolicy"] == "Forbid"
    container = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mlstrata", "retrain", "credit", "--data",
                                    "/project/incoming.csv", "--trigger", "schedule", "-w",
                                    "/project"]
    bad = cli("retrain", "credit", "--data", "x.csv", "--print-cron", "--schedule", "daily",
              "-w", root)
    assert bad.code == 2 and "retrain.schedule 'daily' is not a cron schedule" in bad.err


class _Load:
    """Client threads each posting one record every 20 ms (about 100 requests a second in
    all, while the retrain trains on the same two cores), counting every answer."""

    def __init__(self, url: str, records: list[dict[str, Any]], threads: int = 3) -> None:
        self.url = url
        self.records = records
        self.failures: list[str] = []
        self.versions: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, offset: int) -> None:
        with httpx.Client(timeout=30) as client:
            sent = offset
            while not self._stop.is_set():
                record = self.records[sent % len(self.records)]
                sent += 1
                try:
                    answer = client.post(f"{self.url}/v1/predict", json=record)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                else:
                    self.versions.append(answer.json()["version"])
                time.sleep(0.02)

    def wait_for(self, version: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and version not in self.versions[-20:]:
            time.sleep(0.1)


def _retrain(project: Path, batch: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLSTRATA, "retrain", "credit", "--data", str(batch), "-w",
                           str(project), *extra], capture_output=True, text=True, env=WIDE,
                          timeout=600)


@pytest.mark.slow
def test_proof_a_changed_relationship_is_promoted_and_served_then_corrupted_labels_refused(
        project: Workspace, months: pa.Table, tmp_path: Path) -> None:
    root = project.root
    old_package = locate_package("credit@champion", project)
    records = valid_records(old_package)
    changed = write(changed_relationship(between(months, date(2022, 1, 1), date(2022, 7, 1))),
                    tmp_path / "2022-h1.csv")
    with serve_process("credit@champion", "--reload-interval", "0.2", cwd=root,
                       timeout=120) as served, \
            _Load(served.url, records) as load:
        load.wait_for(1)
        done = _retrain(root, changed, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        load.wait_for(2)
        served_versions = set(load.versions)
    assert load.failures == []
    assert report["status"] == "promoted", report["reasons"]
    assert served_versions >= {1, 2} and load.versions[-1] == 2
    newest, history = report["comparisons"]
    assert newest["slice"] == "newest" and history["slice"] == "history"
    assert newest["challenger"] > newest["champion"] + 0.2
    assert newest["ci95"][0] > 0
    assert history["rows"] > newest["rows"]
    current = Workspace(root)
    evaluation = find_evaluation(current, current.resolve(report["challenger"]["model"]))
    assert evaluation is not None  # retrain times only the latency the gate checks: ONNX's
    gates = json.loads(current.path_for_read(evaluation).read_text())
    assert set(gates["latency_ms"]) == {"onnx"}
    assert [g["gate"] for g in gates["gates"]] == ["roc_auc >= 0.62", "latency_ms <= 1000"]

    ws = Workspace(root)
    version = fitted_recipes_since_ingest(ws, ws.resolve("credit", ("dataset",)))[0]
    parents = dict(ws.parents(version.id))
    assert parents["previous"].ref == "credit@1" and parents["batch"].name == "credit.batch"
    assert len(version.meta["batches"]) == 2
    slice_ = ws.get(str(version.meta["batches"][-1]["testset"]))
    batch_rows = pq.read_table(ws.path_for_read(parents["batch"]))
    assert pc.max(batch_rows.column("application_date")).as_py() <= pc.min(
        pq.read_table(ws.store / slice_.relpath).column("application_date")).as_py()

    corrupted = write(corrupted_labels(between(months, date(2022, 7, 1), date(2023, 1, 1))),
                      tmp_path / "2022-h2.csv")
    refused = _retrain(root, corrupted)
    assert refused.returncode == 1, refused.stderr
    assert "NOT promoted; the champion stays" in refused.stdout
    assert "business gate(s) failed: roc_auc >= 0.62" in refused.stdout
    assert show(ws, "credit@champion").to_dict()["version"] == 2
    assert (root / "reports" / "credit-retrain.html").is_file()
    assert rollback(ws, "credit").version == 1
