"""The log writer: the line format, files and rotation, the bounded queue, flush on close."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlstrata.predlog import FORMAT_VERSION, LogFormatError, PredictionLog, open_log
from mlstrata.predlog.files import FileSink, log_files
from mlstrata.predlog.reading import find_request, read_lines
from mlstrata.runtime.model import LoadedModel

from .conftest import log_request

LINE_FIELDS = {"format", "kind", "request_id", "record", "time", "model", "version", "package",
               "source", "key", "inputs", "prediction", "probabilities", "latency_ms",
               "warnings"}


def _lines(root: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted(root.rglob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def test_one_line_per_record_in_the_documented_layout(tmp_path: Path, model: LoadedModel,
                                                      records: list[dict[str, Any]],
                                                      credit_package: Path) -> None:
    root = tmp_path / "log"
    with open_log(root) as log:
        predictions = log_request(log, model, records[:3], "req-1")
    assert json.loads((root / "FORMAT.json").read_text()) == {"format_version": 1}
    [path] = log_files(root)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert path.parent == root / "credit.model" / "v1" / day
    assert path.name.endswith("-000001.jsonl") and oct(path.stat().st_mode)[-3:] == "600"
    lines = _lines(root)
    assert [line["record"] for line in lines] == [0, 1, 2]
    manifest = (credit_package / "manifest.json").read_bytes()
    for line, record, label, probabilities in zip(
            lines, records[:3], predictions.predictions, predictions.probabilities.tolist(),
            strict=True):
        assert set(line) == LINE_FIELDS
        assert (line["format"], line["kind"], line["request_id"], line["source"]) == (
            FORMAT_VERSION, "prediction", "req-1", "rest")
        assert (line["model"], line["version"]) == ("credit.model", 1)
        assert line["package"] == hashlib.sha256(manifest).hexdigest()
        assert line["time"].endswith("Z") and line["time"][:10] == day
        assert line["prediction"] == label and line["latency_ms"] == 1.25
        assert line["probabilities"] == {"0": probabilities[0], "1": probabilities[1]}
        sent = {**record, "application_date": record["application_date"][:10]}
        assert line["inputs"] == sent  # every input, typed as sent; a date as YYYY-MM-DD
        assert line["warnings"] == [] and line["key"] is None
    assert log.written == 3 and log.dropped == 0


def test_files_rotate_by_size_time_and_day(tmp_path: Path) -> None:
    def row(day: str, n: int) -> dict[str, Any]:
        return {"kind": "prediction", "model": "m", "version": 2, "time": f"{day}T00:00:0{n}Z",
                "record": n}

    by_size = FileSink(tmp_path / "size", max_bytes=1)
    by_size.write([row("2026-12-01", 1)])
    by_size.write([row("2026-12-01", 2)])
    by_size.write([row("2026-12-02", 3)])  # a new UTC day: a new directory
    by_size.close()
    files = sorted(log_files(tmp_path / "size"))
    assert [(p.parent.name, p.name[-11:]) for p in files] == [
        ("2026-12-01", "00001.jsonl"), ("2026-12-01", "00002.jsonl"),
        ("2026-12-02", "00003.jsonl")]
    by_time = FileSink(tmp_path / "time", max_seconds=0)
    by_time.write([row("2026-12-01", 1), row("2026-12-01", 2)])  # one write, one file
    by_time.write([row("2026-12-01", 3)])
    by_time.close()
    assert sorted(len(p.read_bytes().splitlines()) for p in log_files(tmp_path / "time")) == [1, 2]
    kept = FileSink(tmp_path / "kept")
    kept.write([row("2026-12-01", 1)])
    kept.write([row("2026-12-01", 2)])
    kept.close()
    [one] = log_files(tmp_path / "kept")
    assert len(one.read_bytes().splitlines()) == 2


class _Gate:
    """A sink that holds every write until released (a slow disk)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.closed = False

    def write(self, rows: Any, pause: Any = None) -> None:
        self.release.wait(10)
        self.rows += rows

    def find(self, model: str, ids: Any, keys: Any) -> tuple[dict[str, int], set[str]]:
        return {}, set()

    def close(self) -> None:
        self.closed = True


def test_a_full_queue_drops_counts_and_warns_once(model: LoadedModel,
                                                  records: list[dict[str, Any]],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    sink = _Gate()
    log = PredictionLog(sink, capacity=4, interval=0.01, warn_every=60)
    with caplog.at_level(logging.WARNING, "mlstrata.predlog"):
        log_request(log, model, records[:2], "a")
        log_request(log, model, records[:2], "b")  # 4 waiting (or 2 being written)
        for name in "cdefg":
            log_request(log, model, records[:3], name)
    assert log.dropped == 15
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1 and "queue is full" in warnings[0].getMessage()
    sink.release.set()
    log.close()
    assert log.written == len(sink.rows) == 4 and sink.closed
    assert log.written + log.dropped == 4 + 15


def test_close_writes_everything_queued_and_refuses_more(tmp_path: Path, model: LoadedModel,
                                                         records: list[dict[str, Any]]) -> None:
    log = open_log(tmp_path, interval=3600)  # the timer never fires: only close() writes
    for n in range(5):
        log_request(log, model, records[:2], f"r{n}")
    assert log.pending == 10 and not list(tmp_path.rglob("*.jsonl"))
    log.close()
    assert len(_lines(tmp_path)) == 10 and log.written == 10
    log_request(log, model, records[:1], "late")
    assert log.dropped == 1 and len(_lines(tmp_path)) == 10
    log.close()  # idempotent


def test_a_batch_run_waits_for_room_instead_of_dropping(tmp_path: Path, model: LoadedModel,
                                                        records: list[dict[str, Any]]) -> None:
    with open_log(tmp_path, capacity=3, interval=0.01) as log:
        for n in range(10):
            log_request(log, model, records[:3], f"batch{n}", block=True)
    assert log.dropped == 0 and len(_lines(tmp_path)) == 30


class _Broken:
    def __init__(self) -> None:
        self.calls = 0

    def write(self, rows: Any, pause: Any = None) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OSError("No space left on device")

    def find(self, model: str, ids: Any, keys: Any) -> tuple[dict[str, int], set[str]]:
        return {}, set()

    def close(self) -> None:
        pass


def test_a_failing_sink_counts_the_lost_records_and_keeps_going(
        model: LoadedModel, records: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture) -> None:
    log = PredictionLog(_Broken(), interval=3600)
    with caplog.at_level(logging.WARNING, "mlstrata.predlog"):
        log_request(log, model, records[:2], "lost")
        log._wake.set()
        for _ in range(200):
            if log.pending == 0:
                break
            threading.Event().wait(0.01)
        log_request(log, model, records[:3], "kept")
        log.close()
    assert (log.dropped, log.written) == (2, 3)
    assert any("No space left on device" in r.getMessage() for r in caplog.records)


def test_a_log_written_by_a_newer_format_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "FORMAT.json").write_text('{"format_version": 2}')
    with pytest.raises(LogFormatError, match=r"format_version 2, newer than this mlstrata "
                                             r"reads \(1\); upgrade mlstrata"):
        FileSink(tmp_path)
    with pytest.raises(LogFormatError):
        list(read_lines(tmp_path))


def test_find_request_reads_back_a_request_and_skips_a_torn_last_line(
        tmp_path: Path, model: LoadedModel, records: list[dict[str, Any]]) -> None:
    with open_log(tmp_path) as log:
        log_request(log, model, records[:2], "wanted")
        log_request(log, model, records[:4], "other")
    [path] = log_files(tmp_path)
    with path.open("ab") as handle:
        handle.write(b'{"request_id":"wanted","rec')  # a line being written right now
    predictions, feedback = find_request(tmp_path, "wanted")
    assert [p["record"] for p in predictions] == [0, 1] and feedback == []
    assert find_request(tmp_path, "missing") == ([], [])
    counts, keys = log.sink.find("credit.model", ["wanted", "other", "nope"], [])
    assert counts == {"wanted": 2, "other": 4}


def test_json_records_are_logged_as_sent_and_typed_inputs_in_between(
        tmp_path: Path, model: LoadedModel, records: list[dict[str, Any]]) -> None:
    """A request that came as JSON records logs each record's input fields as the client sent
    them (a text field's number as text); typed-only requests (OIP, batch) queued in the same
    drain keep their own inputs, in order."""
    root = tmp_path / "log"
    names = model.signature.input_names
    sent = [{**records[0], "region": 7}, records[1]]
    with open_log(root, interval=60) as log:  # one drain, at close
        log_request(log, model, records[2:4], "typed-1")
        checked = model.check_records([{**sent[0], "region": "7"}, sent[1]])
        log.log_predictions(model, request_id="json", source="rest", columns=checked.columns,
                            predictions=model.score(checked.columns), latency_ms=1.0,
                            records=sent)
        log_request(log, model, records[4:5], "typed-2")
    lines = {(line["request_id"], line["record"]): line["inputs"] for line in _lines(root)}
    assert lines[("json", 0)] == {name: sent[0][name] for name in names} | {"region": "7"}
    assert lines[("json", 1)] == {name: records[1][name] for name in names}
    assert lines[("typed-1", 1)]["age"] == records[3]["age"]
    assert lines[("typed-2", 0)]["income"] == records[4]["income"]
