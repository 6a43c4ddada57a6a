"""The prediction log end to end: serve (SIGTERM flushes it), predict, precompute, trace,
feedback, and their one-line errors."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from mlstrata.predlog.reading import read_lines
from mlstrata.workspace import Workspace

from ..serve.conftest import serve_process, valid_records


def _fresh_copy(credit_package: Path, root: Path) -> Path:
    """The credit package inside a new, empty workspace (its own log)."""
    Workspace.init(root, "log-tests")
    copy = root / "packages" / credit_package.name
    shutil.copytree(credit_package, copy)
    return copy


def _log(project: Path, needle: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    root = project / ".mlstrata" / "predictions"
    if not root.exists():
        return []
    containing = json.dumps(needle).encode() if needle is not None else None
    return list(read_lines(root, containing=containing, **kwargs))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_right_after_the_answers_loses_no_prediction(
        tmp_path: Path, credit_package: Path, workers: int) -> None:
    package = _fresh_copy(credit_package, tmp_path / "project")
    records = valid_records(credit_package)
    sent: dict[str, int] = {}
    with serve_process(str(package), "--workers", str(workers), cwd=tmp_path) as served:
        for n in range(40):
            body = records[n % 17:n % 17 + 1 + n % 3]
            answer = httpx.post(f"{served.url}/v1/predict", json=body, timeout=10)
            assert answer.status_code == 200, answer.text
            sent[answer.headers["x-request-id"]] = len(body)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) in (0, -signal.SIGTERM)
    lines = _log(tmp_path / "project")
    assert len(lines) == sum(sent.values())
    logged: dict[str, int] = {}
    for line in lines:
        logged[line["request_id"]] = logged.get(line["request_id"], 0) + 1
    assert logged == sent
    if workers == 1:
        assert "logging predictions to" in served.output


def test_no_log_writes_nothing_and_log_needs_a_workspace(cli: Any, tmp_path: Path,
                                                        credit_package: Path) -> None:
    package = _fresh_copy(credit_package, tmp_path / "project")
    with serve_process(str(package), "--no-log", cwd=tmp_path) as served:
        records = valid_records(credit_package, 2)
        assert httpx.post(f"{served.url}/v1/predict", json=records).status_code == 200
    assert _log(tmp_path / "project") == []
    outside = tmp_path / "outside"
    shutil.copytree(credit_package, outside)
    refused = cli("serve", outside, "--log", cwd=tmp_path)
    assert refused.code == 2
    [line] = refused.err.strip().splitlines()
    assert "--log needs a workspace" in line


def test_predict_logs_every_scored_row_and_trace_walks_to_the_raw_bytes(
        cli: Any, credit_package: Path, tmp_path: Path) -> None:
    project = credit_package.parent.parent
    source = project / "data" / "credit.csv"
    out = tmp_path / "scored.parquet"
    done = cli("predict", "credit.model", "--input", source, "--output", out, "--key",
               "application_id", "--batch-rows", "400", "--json", cwd=project)
    assert done.code == 0, done.err
    report = json.loads(done.out)
    run_id = report["run_id"]
    lines = sorted(_log(project, run_id), key=lambda line: line["record"])
    scored = pq.read_table(out).to_pylist()
    assert len(lines) == report["rows_scored"] == len(scored)
    assert {line["source"] for line in lines} == {"batch"}
    assert [line["key"] for line in lines] == [str(row["application_id"]) for row in scored]
    assert [line["prediction"] for line in lines] == [row["prediction"] for row in scored]
    assert len({line["record"] for line in lines}) == len(lines)

    traced = cli("trace", run_id, "--json", cwd=project)
    assert traced.code == 0, traced.err
    found = json.loads(traced.out)
    assert found["records"] == len(lines) and len(found["predictions"]) == 20
    [steps] = found["lineage"]
    kinds = [step["step"] for step in steps]
    assert kinds[:3] == ["package", "model", "training dataset"] and kinds[-1] == "raw source"
    assert steps[0]["path"] == str(credit_package.resolve())
    assert steps[1]["ref"] == "credit.model@1"
    assert steps[-1]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    shown = cli("trace", run_id, cwd=project)
    assert "raw source" in shown.out and "training dataset" in shown.out

    unknown = cli("trace", "no-such-request", cwd=project)
    assert unknown.code == 1
    [line] = unknown.err.strip().splitlines()
    assert "no logged prediction has request id 'no-such-request'" in line


def test_precompute_logs_with_keys_and_no_log_turns_it_off(cli: Any, credit_package: Path,
                                                           tmp_path: Path) -> None:
    project = credit_package.parent.parent
    source = project / "data" / "credit.csv"
    done = cli("precompute", credit_package, "--input", source, "--key", "application_id",
               "--db", f"sqlite:///{tmp_path / 'p.db'}", "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    lines = _log(project, report["run_id"])
    assert len(lines) == report["rows"] and {line["source"] for line in lines} == {"precompute"}
    assert all(line["key"] for line in lines)
    quiet = cli("precompute", credit_package, "--input", source, "--key", "application_id",
                "--db", f"sqlite:///{tmp_path / 'q.db'}", "--json", "--no-log")
    assert quiet.code == 0, quiet.err
    assert _log(project, json.loads(quiet.out)["run_id"]) == []


def test_feedback_file_attaches_labels_by_key(cli: Any, credit_package: Path,
                                             tmp_path: Path) -> None:
    project = credit_package.parent.parent
    source = project / "data" / "credit.csv"
    done = cli("predict", "credit.model", "--input", source, "--output",
               tmp_path / "scored.parquet", "--key", "application_id", "--json", cwd=project)
    assert done.code == 0, done.err
    keys = [row["application_id"] for row in pq.read_table(tmp_path / "scored.parquet")
            .select(["application_id"]).to_pylist()[:10]]
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["application_id", "default"])
        writer.writerows([key, n % 2] for n, key in enumerate(keys))
        writer.writerows([["NO-SUCH-1", 1], ["NO-SUCH-2", 0], [keys[0], ""]])
    before = len(_log(project, feedback=True))
    result = cli("feedback", labels, "--key", "application_id", "--label", "default", "--json",
                 cwd=project)
    assert result.code == 0, result.err
    assert {k: v for k, v in json.loads(result.out).items() if k in (
        "rows", "matched", "unmatched", "skipped")} == {
        "rows": 13, "matched": 10, "unmatched": 2, "skipped": 1}
    written = _log(project, feedback=True)
    assert len(written) == before + 10
    mine = [line for line in written if line["key"] in set(map(str, keys))]
    assert {line["label"] for line in mine} == {0, 1} and all(
        line["kind"] == "feedback" and line["model"] == "credit.model" for line in mine)

    bad_column = cli("feedback", labels, "--key", "nope", "--label", "default", cwd=project)
    assert bad_column.code == 2 and "has no column 'nope'" in bad_column.err
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(f"application_id,default\n{keys[0]},1\n{keys[1]},maybe\n")
    refused = cli("feedback", wrong, "--key", "application_id", "--label", "default",
                  cwd=project)
    assert refused.code == 2
    [line] = refused.err.strip().splitlines()
    assert "row 2: label 'maybe' is not one of the model's classes [0, 1]" in line
    missing = cli("feedback", tmp_path / "nothing.csv", "--key", "a", "--label", "b",
                  cwd=project)
    assert missing.code == 2 and len(missing.err.strip().splitlines()) == 1
    assert len(_log(project, feedback=True)) == before + 10  # refused runs wrote nothing
