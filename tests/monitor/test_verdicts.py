"""The verdicts are right: real shifts are flagged on exactly their columns, stable traffic
raises (almost) no alarm, and labels that stop following the model are decay.

Each test writes a prediction log in the documented format and runs the real check on it
(DuckDB reading the JSON Lines, the sketches, the statistics, the Bonferroni correction).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlstrata.monitor import MonitorRequest, Window, run_monitor

from ._log import (
    START,
    LogWriter,
    applications,
    fitted_reference,
    risk,
    sketch_reference,
    write_package,
)

HOUR = Window(seconds=3600)


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return applications(5_000, seed=1)


def _package(tmp_path: Path, training: pd.DataFrame) -> Path:
    return write_package(tmp_path / "package", sketch_reference(training))


def test_a_new_level_and_a_3_sd_shift_are_flagged_on_exactly_those_columns(
        tmp_path: Path, training: pd.DataFrame) -> None:
    batch = applications(2_000, seed=2)
    batch["score"] = batch["score"] + 3 * training["score"].std()
    batch.loc[np.random.default_rng(3).random(len(batch)) < 0.2, "purpose"] = "crypto"
    LogWriter(tmp_path / "log").predictions(batch, START, timedelta(seconds=1), prediction=risk)

    report = run_monitor(MonitorRequest(_package(tmp_path, training), tmp_path / "log", HOUR))

    assert [w.drifted_columns for w in report.windows] == [["score", "purpose"]]
    window = report.windows[0]
    purpose = next(c for c in window.columns if c.name == "purpose")
    assert list(purpose.new_levels) == ["crypto"] and purpose.new_share > 0.15
    score = next(c for c in window.columns if c.name == "score")
    assert score.wasserstein == pytest.approx(3.0, rel=0.1) and score.psi > 1
    assert window.prediction_drift  # the score drives the predictions
    assert report.verdict == "drift" and report.exit_code == 1


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_twenty_windows_from_the_training_distribution_raise_at_most_one_alarm(
        tmp_path: Path, training: pd.DataFrame, seed: int) -> None:
    stream = applications(20 * 500, seed=seed)
    LogWriter(tmp_path / "log").predictions(stream, START, timedelta(seconds=7.2),
                                            prediction=risk)

    report = run_monitor(MonitorRequest(_package(tmp_path, training), tmp_path / "log", HOUR))

    assert len(report.windows) == 20 and all(w.rows == 500 for w in report.windows)
    alarms = [(w.label, c.name) for w in report.windows for c in [*w.columns, *w.predictions]
              if c.flagged]
    assert len(alarms) <= 1, alarms
    # stable, not just unflagged: the raw statistics are small too
    assert max(c.psi or 0 for w in report.windows for c in w.columns) < 0.2


def test_labels_with_a_changed_relationship_are_decay(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    data = applications(6_000, seed=4)
    labels = pd.Series((rng.random(len(data)) < risk(data)).astype(int))
    reference, pipeline = fitted_reference(data[:4_000], labels[:4_000], data[4_000:],
                                           labels[4_000:], gates=["roc_auc >= 0.6"])
    package = write_package(tmp_path / "package", reference)
    stream = applications(2_000, seed=5)
    log = LogWriter(tmp_path / "log")
    ids = log.predictions(
        stream, START, timedelta(seconds=3.6), prediction=lambda f: pipeline.predict(f),
        probabilities=lambda f: [{"0": float(1 - p), "1": float(p)}
                                 for p in pipeline.predict_proba(f)[:, 1]])
    truth = risk(stream)
    changed = 1 - truth  # the world now defaults where the model sees safety
    drawn = rng.random(len(stream))
    label = np.where(np.arange(len(stream)) < 1_000, drawn < truth, drawn < changed).astype(int)
    log.feedback(dict(zip(ids, label.tolist(), strict=True)), START + timedelta(days=3))

    report = run_monitor(MonitorRequest(package, tmp_path / "log", HOUR))

    first, second = report.windows
    assert first.decay is not None and second.decay is not None
    assert first.decay.coverage == 1.0 and first.decay.labelled == 1_000
    assert not first.decayed, first.decay.reasons
    assert second.decayed
    assert any("roc_auc" in reason for reason in second.decay.reasons)
    auc = next(m for m in second.decay.metrics if m.metric == "roc_auc")
    assert auc.value is not None and auc.value < 0.4 and auc.worse
    assert report.verdict == "decay"  # the inputs did not move


def test_windows_of_n_rows_follow_time_order(tmp_path: Path, training: pd.DataFrame) -> None:
    stream = applications(1_250, seed=6)
    LogWriter(tmp_path / "log").predictions(stream, START, timedelta(seconds=90),
                                            prediction=risk)

    report = run_monitor(MonitorRequest(_package(tmp_path, training), tmp_path / "log",
                                        Window(rows=500)))

    assert [w.rows for w in report.windows] == [500, 500, 250]
    assert report.windows[0].start < report.windows[1].start < report.windows[2].start
    assert report.windows[2].evaluated and report.verdict == "healthy"
