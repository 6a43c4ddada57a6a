"""A prediction log in PostgreSQL (``monitor.log: postgresql://...``) gives the same verdicts as
the same lines in files: read from the real server the test suite starts."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlstrata.monitor import MonitorRequest, Window, run_monitor
from mlstrata.predlog.postgres import PostgresSink

from ._log import (
    START,
    LogWriter,
    applications,
    fitted_reference,
    risk,
    write_package,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _lines(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(root.rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_a_postgresql_log_gives_the_verdicts_of_the_files(postgres: Any, tmp_path: Path
                                                          ) -> None:
    rng = np.random.default_rng(8)
    data = applications(4_000, seed=8)
    labels = pd.Series((rng.random(len(data)) < risk(data)).astype(int))
    reference, pipeline = fitted_reference(data[:3_000], labels[:3_000], data[3_000:],
                                           labels[3_000:])
    model = f"pg-{uuid.uuid4().hex[:8]}"  # the server is shared: a model of our own
    reference = replace(reference, model=model)
    package = write_package(tmp_path / "package", reference)
    stream = applications(1_200, seed=9)
    stream.loc[600:, "debt_ratio"] = stream.loc[600:, "debt_ratio"] + 0.3
    log = LogWriter(tmp_path / "files", model=model)
    ids = log.predictions(
        stream, START, timedelta(seconds=6), prediction=lambda f: pipeline.predict(f),
        probabilities=lambda f: [{"0": float(1 - p), "1": float(p)}
                                 for p in pipeline.predict_proba(f)[:, 1]])
    log.feedback({i: int(y) for i, y in zip(ids[:300], rng.integers(0, 2, 300), strict=True)},
                 START + timedelta(days=2))
    sink = PostgresSink(postgres.url)
    try:
        sink.write(_lines(tmp_path / "files"))
    finally:
        sink.close()

    from_files = run_monitor(MonitorRequest(package, tmp_path / "files", Window(seconds=3600)))
    from_postgres = run_monitor(MonitorRequest(package, postgres.url, Window(seconds=3600)))

    assert from_postgres.rows == from_files.rows == 1_200
    assert [w.drifted_columns for w in from_postgres.windows] == \
        [w.drifted_columns for w in from_files.windows] == [[], ["debt_ratio"]]
    first = from_postgres.windows[0].decay
    assert first is not None and first.labelled == 300 and first.coverage == 0.5
    assert from_postgres.log.startswith("postgresql://") and ":" not in \
        from_postgres.log.split("@")[0].removeprefix("postgresql://")
