"""``mlstrata monitor``: exit codes for schedulers, one-line answers to bad input, reports."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlstrata.monitor import MonitorRequest, Window, run_monitor
from mlstrata.monitor.reference import PredictionReference, Reference
from mlstrata.monitor.sketch import CategorySketch, NumberSketch

from ._log import START, LogWriter, applications, risk, sketch_reference, write_package


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, Path]:
    """A package and a log of 600 stable predictions over one day."""
    package = write_package(tmp_path / "package", sketch_reference(applications(3_000, 1)))
    LogWriter(tmp_path / "log").predictions(applications(600, 2), START,
                                            timedelta(seconds=60), prediction=risk)
    return package, tmp_path / "log"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_healthy_traffic_exits_0_with_json_and_html(cli: Any, logged: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    package, log = logged
    result = cli("monitor", package, "--log", log, "--json", "--out", tmp_path / "reports",
                 cwd=tmp_path)
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["verdict"] == "healthy" and body["rows"] == 600 and body["window"] == "1d"
    assert body["significance"]["correction"] == "bonferroni"
    [window] = body["windows"]
    assert window["requests"] == 600 and window["latency_ms"]["p50"] == pytest.approx(0.85,
                                                                                      rel=0.1)
    html = (tmp_path / "reports" / "credit-v1-monitor.html").read_text()
    assert "<svg" in html and "Monitoring credit@1" in html


def test_drift_exits_1_and_names_the_columns(cli: Any, tmp_path: Path) -> None:
    package = write_package(tmp_path / "package", sketch_reference(applications(3_000, 1)))
    batch = applications(800, 2)
    batch["debt_ratio"] = batch["debt_ratio"] * 3
    LogWriter(tmp_path / "log").predictions(batch, START, timedelta(seconds=1), prediction=risk)
    result = cli("monitor", package, "--log", tmp_path / "log", "--out", tmp_path / "r",
                 cwd=tmp_path)
    assert result.code == 1
    assert "DRIFT" in result.out and "debt_ratio" in result.out
    body = json.loads((tmp_path / "r" / "credit-v1-monitor.json").read_text())
    assert body["drifted_columns"] == ["debt_ratio"] and body["drifted_windows"] == 1
    assert body["decayed_windows"] == 0


def test_an_empty_window_is_one_line(cli: Any, logged: tuple[Path, Path], tmp_path: Path
                                     ) -> None:
    package, log = logged
    result = cli("monitor", package, "--log", log, "--since", "2030-01-01",
                 "--until", "2030-01-02", "--out", tmp_path / "r", cwd=tmp_path)
    assert result.code == 2
    line = _one_line(result.err)
    assert "no predictions between 2030-01-01T00:00:00Z and 2030-01-02T00:00:00Z" in line
    assert not (tmp_path / "r").exists()


def test_a_log_of_a_newer_format_is_one_line(cli: Any, tmp_path: Path) -> None:
    package = write_package(tmp_path / "package", sketch_reference(applications(500, 1)))
    LogWriter(tmp_path / "log", format_version=2).predictions(
        applications(10, 2), START, timedelta(seconds=1), prediction=risk)
    result = cli("monitor", package, "--log", tmp_path / "log", cwd=tmp_path)
    assert result.code == 2
    line = _one_line(result.err)
    assert "format_version 2" in line and "upgrade mlstrata" in line


def test_a_package_without_reference_says_how_to_repackage(cli: Any, logged: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    package, log = logged
    (package / "reference.json").unlink()
    result = cli("monitor", package, "--log", log, cwd=tmp_path)
    assert result.code == 2
    assert "'mlstrata package credit@1'" in _one_line(result.err)


def test_a_bad_window_is_one_line(cli: Any, logged: tuple[Path, Path], tmp_path: Path) -> None:
    package, log = logged
    result = cli("monitor", package, "--log", log, "--window", "soon", cwd=tmp_path)
    assert result.code == 2 and "--window" in _one_line(result.err)


def test_a_torn_last_line_is_skipped(logged: tuple[Path, Path]) -> None:
    """A writer may be appending the last line right now: it is not a prediction yet."""
    package, log = logged
    [file] = list(log.glob("credit/v1/*/*.jsonl"))
    with file.open("a") as handle:
        handle.write('{"format": 1, "kind": "prediction", "request_id": "torn", "rec')
    report = run_monitor(MonitorRequest(package, log, Window(seconds=86400)))
    assert report.rows == 600


@pytest.mark.slow
def test_the_report_of_fifty_drifted_columns_stays_small(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({f"n{i}": rng.normal(0, 1, 5_000) for i in range(35)}
                         | {f"c{i}": rng.choice(list("abcdefghij"), 5_000) for i in range(15)})
    inputs: dict[str, Any] = {
        name: NumberSketch.from_values(train[name].to_numpy()) if name.startswith("n")
        else CategorySketch.from_values(train[name]) for name in train.columns}
    reference = Reference("wide", 1, "regression", "y", None, len(train), inputs,
                          PredictionReference(len(train), None,
                                              NumberSketch.from_values(train["n0"].to_numpy()),
                                              "value"), None)
    package = write_package(tmp_path / "package", reference)
    live = pd.DataFrame({f"n{i}": rng.normal(1, 1, 24_000) for i in range(35)}
                        | {f"c{i}": rng.choice(list("abcdefghijk"), 24_000) for i in range(15)})
    LogWriter(tmp_path / "log", model="wide").predictions(
        live, START, timedelta(seconds=1.5), prediction=lambda f: f["n0"])

    report = run_monitor(MonitorRequest(package, tmp_path / "log", Window(seconds=3600)))

    assert len(report.windows) == 10
    assert all(len(w.drifted_columns) == 50 for w in report.windows)
    html = report.to_html()
    assert html.count("<svg") >= 50 + 5
    assert len(html.encode()) < 2_000_000
    print(f"HTML {len(html.encode()):,} bytes, JSON {len(report.to_json().encode()):,} bytes")
    json.loads(report.to_json())
