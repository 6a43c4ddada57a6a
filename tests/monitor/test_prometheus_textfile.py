"""``mlstrata monitor --prometheus FILE``: gauges node-exporter's textfile collector reads,
written atomically, in a format promtool accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlstrata.errors import MlstrataError
from mlstrata.monitor.prometheus import (
    FeatureGauge,
    MetricGauge,
    MonitorGauges,
    render,
    write_textfile,
)

from ._log import START, LogWriter, applications, risk, sketch_reference, write_package

RUN = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)


def full_gauges(run_at: datetime = RUN) -> MonitorGauges:
    """A verdict with every gauge filled: drift on one feature, decay of one metric."""
    return MonitorGauges(
        "credit.model", run_at=run_at,
        features=(FeatureGauge("income", 0.42, True), FeatureGauge("age", 0.01, False),
                  FeatureGauge("region", None, False)),
        prediction_psi=0.05, drift=True, decay=True,
        metrics=(MetricGauge("roc_auc", 0.61, 0.74, 0.8, True),
                 MetricGauge("accuracy", 0.8, None, None)),
        label_coverage=0.35, warning_rate=0.01, window_records=5000,
        window_end=datetime(2026, 12, 2, 22, 0, tzinfo=UTC))


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "model"))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_verdict_becomes_gauges(tmp_path: Path) -> None:
    target = tmp_path / "mlstrata-credit.prom"
    write_textfile(target, full_gauges())
    found = values(target.read_text())
    assert found[("mlstrata_monitor_feature_psi", (("feature", "income"),))] == 0.42
    assert found[("mlstrata_monitor_feature_drift", (("feature", "income"),))] == 1
    assert found[("mlstrata_monitor_feature_drift", (("feature", "age"),))] == 0
    assert ("mlstrata_monitor_feature_psi", (("feature", "region"),)) not in found  # no value
    assert found[("mlstrata_monitor_drift", ())] == 1
    assert found[("mlstrata_monitor_decay", ())] == 1
    assert found[("mlstrata_monitor_metric", (("metric", "roc_auc"),))] == 0.61
    assert found[("mlstrata_monitor_metric_validation_low", (("metric", "roc_auc"),))] == 0.74
    assert found[("mlstrata_monitor_metric_validation_high", (("metric", "roc_auc"),))] == 0.8
    assert ("mlstrata_monitor_metric_validation_low", (("metric", "accuracy"),)) not in found
    assert found[("mlstrata_monitor_metric_decay", (("metric", "roc_auc"),))] == 1
    assert found[("mlstrata_monitor_metric_decay", (("metric", "accuracy"),))] == 0
    assert found[("mlstrata_monitor_window_records", ())] == 5000
    assert found[("mlstrata_monitor_last_run_timestamp_seconds", ())] == RUN.timestamp()
    assert found[("mlstrata_monitor_last_window_end_timestamp_seconds", ())] == \
        datetime(2026, 12, 2, 22, 0, tzinfo=UTC).timestamp()
    assert 'model="credit.model"' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["mlstrata-credit.prom"]  # no temp left


def test_the_textfile_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'; .ci/run installs it)")
    target = tmp_path / "m.prom"
    write_textfile(target, full_gauges())
    checked = subprocess.run([promtool, "check", "metrics"], input=target.read_text(),
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    """The collector may read while a run rewrites the file: it sees the old one or the new."""
    target = tmp_path / "m.prom"
    write_textfile(target, full_gauges())
    expected = {render(full_gauges(RUN.replace(minute=m))) for m in range(60)}
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(target.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for minute in range(60):
            for _ in range(5):
                write_textfile(target, full_gauges(RUN.replace(minute=minute)))
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) <= expected


def test_a_file_the_collector_would_ignore_or_cannot_be_written_is_one_clear_line(
    tmp_path: Path
) -> None:
    with pytest.raises(MlstrataError, match=r"name the file \*\.prom"):
        write_textfile(tmp_path / "metrics.txt", full_gauges())
    with pytest.raises(MlstrataError, match="does not exist"):
        write_textfile(tmp_path / "nowhere" / "m.prom", full_gauges())
    (tmp_path / "taken.prom").mkdir()
    with pytest.raises(MlstrataError, match="cannot write it"):
        write_textfile(tmp_path / "taken.prom", full_gauges())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.prom"]


def test_monitor_writes_its_verdict_for_the_textfile_collector(cli: Any, tmp_path: Path) -> None:
    package = write_package(tmp_path / "package", sketch_reference(applications(3_000, 1)))
    batch = applications(800, 2)
    batch["debt_ratio"] = batch["debt_ratio"] * 3
    LogWriter(tmp_path / "log").predictions(batch, START, timedelta(seconds=1), prediction=risk)
    target = tmp_path / "textfile" / "mlstrata-credit.prom"
    target.parent.mkdir()
    result = cli("monitor", package, "--log", tmp_path / "log", "--out", tmp_path / "r",
                 "--json", "--prometheus", target, cwd=tmp_path)
    assert result.code == 1, result.err
    [window] = json.loads(result.out)["windows"]
    found = values(target.read_text())
    drifted = {key[1][0][1] for key, v in found.items()
               if key[0] == "mlstrata_monitor_feature_drift" and v == 1}
    assert "debt_ratio" in drifted and drifted == set(window["drifted_columns"])
    assert {key[1][0][1] for key in found if key[0] == "mlstrata_monitor_feature_psi"} == \
        {c["name"] for c in window["columns"] if c["psi"] is not None}
    assert found[("mlstrata_monitor_drift", ())] == 1
    assert found[("mlstrata_monitor_decay", ())] == 0  # no feedback: nothing to judge
    assert found[("mlstrata_monitor_window_records", ())] == 800
    assert found[("mlstrata_monitor_last_window_end_timestamp_seconds", ())] == \
        datetime.fromisoformat(window["end"]).timestamp()


def test_a_path_the_collector_would_ignore_is_refused_before_the_check(cli: Any,
                                                                        tmp_path: Path) -> None:
    result = cli("monitor", tmp_path / "no-package", "--log", tmp_path / "log", "--prometheus",
                 tmp_path / "metrics.txt", cwd=tmp_path)
    assert result.code == 2
    assert result.err.strip().splitlines() == [result.err.strip()]
    assert "name the file *.prom" in result.err
