"""``serve MODEL --shadow CHALLENGER``: the champion answers, the challenger scores the same
requests off the request path, both are logged, and the shadow view pairs them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlstrata.model.train import train
from mlstrata.package.builder import build_package
from mlstrata.predlog.reading import read_lines
from mlstrata.retrain.shadow_view import shadow_report
from mlstrata.workspace import Workspace
from tests._packaged import build_credit_package

from .conftest import serve_process, valid_records


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """credit.model@1 (logistic) and @2 (naive Bayes) of one project, both packaged."""
    champion = build_credit_package(tmp_path_factory.mktemp("shadow"))
    ws = Workspace(champion.parent.parent)
    model = ws.config.model.model_copy(update={"candidates": ["naive_bayes"]})
    ws.config = ws.config.model_copy(update={"model": model})
    challenger = train(ws, "credit").model
    return champion, build_package(ws, challenger.ref).path


@dataclass(frozen=True)
class _Traffic:
    """What a served champion with a shadow logged: ``requests`` answered and labelled, the
    shadow counters from ``/metrics``, the server's output."""

    requests: int
    counts: dict[str, float]
    output: str


@pytest.fixture(scope="module")
def traffic(packages: tuple[Path, Path]) -> _Traffic:
    """Serve the champion with the challenger as its shadow; 30 requests, then their labels
    (every test of the shadow's log reads this traffic, whatever order they run in)."""
    champion, challenger = packages
    project = champion.parent.parent
    records = valid_records(champion, rows=30)
    with serve_process(str(champion), "--shadow", str(challenger), "-w", str(project),
                       cwd=project, timeout=120) as served:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            for number, record in enumerate(records):
                answer = client.post("/v1/predict", json=record,
                                     headers={"x-request-id": f"r{number}"})
                assert answer.status_code == 200, answer.text
                assert answer.json()["version"] == 1
            labels = [{"request_id": f"r{n}", "label": n % 2} for n in range(len(records))]
            assert client.post("/v1/feedback", json=labels).status_code < 300
            counts = _shadow_metrics(client, until_scored=len(records))
    return _Traffic(len(records), counts, served.output)


@pytest.mark.slow
def test_the_champion_answers_and_the_shadow_is_logged_beside_it(
        packages: tuple[Path, Path], traffic: _Traffic) -> None:
    champion, challenger = packages
    log = champion.parent.parent / ".mlstrata" / "predictions"
    requests = traffic.requests
    assert traffic.counts == {"scored": requests, "skipped": 0, "failed": 0}
    lines = [line for line in read_lines(log, model="credit.model")
             if line.get("kind") == "prediction"]
    served_lines = {(line["request_id"], line["version"], line["source"]) for line in lines}
    for number in range(requests):
        assert (f"r{number}", 1, "rest") in served_lines
        assert (f"r{number}", 2, "shadow") in served_lines
    assert "shadow credit.model version 2 scores every request" in traffic.output
    assert f"{requests} requests scored, 0 skipped (queue full), 0 failed" in traffic.output

    report = shadow_report(log, champion, challenger)
    assert report.pairs == report.champion_records == requests
    assert 0.0 <= (report.agreement or 0.0) <= 1.0
    assert report.labelled == requests
    assert set(report.metrics) == {"champion", "challenger"}
    assert report.metrics["champion"]["accuracy"] is not None
    assert report.summary().startswith(f"{requests} of {requests} records shadowed")


def _shadow_metrics(client: httpx.Client, until_scored: int,
                    timeout: float = 60.0) -> dict[str, float]:
    """The shadow's counters on ``GET /metrics`` once it has scored ``until_scored`` requests
    (it scores off the request path, so a scrape right after the answers may come early)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        text = client.get("/metrics").text
        counts = {outcome: float(line.split()[-1]) for line in text.splitlines()
                  for outcome in ("scored", "skipped", "failed")
                  if line.startswith(f"mlstrata_shadow_{outcome}_total ")}
        if counts.get("scored", 0) >= until_scored or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


@pytest.fixture(scope="module")
def aliased(packages: tuple[Path, Path]) -> Path:
    """The project, its registry's ``champion`` alias on version 1 and ``challenger`` on the
    challenger's (what ``retrain --shadow-report`` compares)."""
    from mlflow import MlflowClient

    from mlstrata.model.tracking import resolve_uri
    from mlstrata.package.registry import register

    champion, challenger = packages
    project = champion.parent.parent
    ws = Workspace(project)
    version = register(ws, ws.resolve("credit.model@2").ref, challenger).version
    uri = resolve_uri(ws, None)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias("credit", "champion", "1")
    client.set_registered_model_alias("credit", "challenger", str(version))
    return project


@pytest.mark.slow
def test_the_shadow_report_command_pairs_the_aliased_champion_and_challenger(
        aliased: Path, traffic: _Traffic, cli) -> None:  # type: ignore[no-untyped-def]
    """The served traffic's log: the registry's aliases name the champion and challenger."""
    project = aliased
    done = cli("retrain", "credit", "--shadow-report", "--json", "-w", project)
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["champion_version"] == 1 and report["challenger_version"] == 2
    assert report["paired_records"] == report["champion_records"] == traffic.requests
    assert (project / "reports" / "credit-shadow.html").is_file()


@pytest.mark.slow
@pytest.mark.postgres
def test_the_shadow_report_reads_a_postgresql_log_like_the_monitor(
        packages: tuple[Path, Path], aliased: Path, traffic: _Traffic, postgres: Any,
        cli) -> None:  # type: ignore[no-untyped-def]
    """The served traffic's lines, written to a real PostgreSQL by the sink a server uses for a
    postgresql:// log, give the report the directory gives."""
    import uuid

    import psycopg

    from mlstrata.predlog.postgres import PostgresSink

    champion, challenger = packages
    project = champion.parent.parent
    files = project / ".mlstrata" / "predictions"
    database = f"shadow_{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    with psycopg.connect(postgres.url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {database}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{database}"
    sink = PostgresSink(url)
    try:
        sink.write(list(read_lines(files, model="credit.model")))
        sink.write(list(read_lines(files, model="credit.model", feedback=True)))
    finally:
        sink.close()

    from_files = shadow_report(files, champion, challenger).to_dict()
    done = cli("retrain", "credit", "--shadow-report", "--log", url, "--json", "-w", project)
    assert done.code == 0, done.err
    from_postgres = json.loads(done.out)
    assert from_postgres["paired_records"] == from_files["paired_records"] == traffic.requests
    assert from_postgres["labelled_pairs"] == from_files["labelled_pairs"] == traffic.requests
    for figure in ("agreement", "mean_probability_gap"):
        assert from_postgres[figure] == pytest.approx(from_files[figure]), figure
    for side in ("champion", "challenger"):
        assert from_postgres["metrics"][side] == pytest.approx(from_files["metrics"][side])


@pytest.mark.slow
def test_a_full_shadow_queue_skips_requests_instead_of_making_them_wait(
        packages: tuple[Path, Path]) -> None:
    import time

    from mlstrata.serve.holder import ModelHolder
    from mlstrata.serve.shadow import ShadowScorer

    scorer = ShadowScorer(ModelHolder(lambda: packages[1]), capacity=2)  # not started: no drain
    started = time.perf_counter()
    for number in range(5):
        scorer.submit(f"r{number}", {}, [{}])
    assert time.perf_counter() - started < 0.5
    assert (scorer.skipped, scorer.scored, scorer.failed) == (3, 0, 0)
    assert scorer.close() is False  # never started: nothing to stop
