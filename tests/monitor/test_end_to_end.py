"""End to end: ``mlstrata serve`` logs what it answers, feedback arrives, ``mlstrata monitor``
finds the drift in the traffic that changed and measures performance where labels came back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.serve.conftest import serve_process

BATCH = 20


@pytest.mark.slow
def test_serve_then_feedback_then_monitor(credit_package: Path, tmp_path: Path, cli: Any
                                          ) -> None:
    project = tmp_path / "project"
    # without the predictions other tests served from the shared package's project
    shutil.copytree(credit_package.parent.parent, project,
                    ignore=shutil.ignore_patterns("predictions"))
    package = project / "packages" / credit_package.name
    signature = json.loads((package / "signature.json").read_text())
    names = [field["name"] for field in signature["inputs"]]
    frame = pd.read_csv(project / "data" / "credit.csv", dtype={"postal_code": str})
    frame = frame.dropna(subset=names).head(800).reset_index(drop=True)
    records: list[dict[str, Any]] = json.loads(frame[names].to_json(orient="records",
                                                                    date_format="iso"))
    older = int(frame["age"].quantile(0.95))
    for record in records[400:]:  # the second half of the traffic comes from older people
        record["age"] = older

    with serve_process(str(package), cwd=project) as served:
        request_ids = []
        for start in range(0, len(records), BATCH):
            answer = httpx.post(f"{served.url}/v1/predict", json=records[start:start + BATCH],
                                timeout=10)
            assert answer.status_code == 200, answer.text
            request_ids.append(answer.json()["request_id"])
        labels = frame["default"].tolist()
        feedback = [{"request_id": request_ids[i // BATCH], "record": i % BATCH,
                     "label": labels[i]} for i in range(200)]
        answer = httpx.post(f"{served.url}/v1/feedback", json=feedback, timeout=10)
        assert answer.status_code == 200 and answer.json()["accepted"] == 200, answer.text

    result = cli("monitor", "credit.model@1", "--window", "200rows", "--json", "-w", project,
                 "--out", tmp_path / "reports", cwd=project)

    assert result.code == 1, result.err
    body = json.loads(result.out)
    windows = body["windows"]
    assert [w["rows"] for w in windows] == [200, 200, 200, 200]
    assert [w["drifted_columns"] for w in windows[:2]] == [[], []]
    assert all("age" in w["drifted_columns"] for w in windows[2:])
    assert windows[0]["performance"]["coverage"] == 1.0
    assert windows[1]["performance"]["labelled"] == 0
    assert body["verdict"] in ("drift", "drift and decay")
    assert (tmp_path / "reports" / "credit.model-v1-monitor.html").is_file()
