"""Replay: progressive validation over a stream, and reading streams in row order."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from mlstrata.contract import Contract
from mlstrata.errors import ConfigError, SourceError
from mlstrata.online.estimators import build_pipeline
from mlstrata.online.events import EventRefusedError
from mlstrata.online.learner import OnlineModel
from mlstrata.online.reading import read_records
from mlstrata.online.replay import replay
from mlstrata.online.spec import build_spec

from . import _stream


def _model(kind: str = "logistic_regression") -> OnlineModel:
    spec = build_spec("loans", _stream.contract(), "paid", kind)
    return OnlineModel(spec, build_pipeline(spec))


def test_the_metric_is_reported_per_block_and_overall() -> None:
    rows = _stream.rows(1050)
    report = replay(_model(), [rows[:600], rows[600:]], every=250)
    assert [p.events for p in report.points] == [250, 500, 750, 1000, 1050]
    assert report.points[-1].overall == report.overall
    assert report.learnt == report.rows == 1050 and report.events is None
    assert report.points[-1].block > report.points[0].block  # it learns as it goes
    console = Console(record=True, width=120)
    report.render_terminal(console)
    assert "live state untouched" in console.export_text()
    assert "data:image/png;base64" in report.to_html()


def test_refusals_are_counted_and_the_first_ten_listed() -> None:
    rows = _stream.rows(100)
    for row in rows[::5]:
        row["amount"] = -1.0
    report = replay(_model(), [rows[:50], rows[50:]])
    assert report.refused == 20 and report.learnt == 80 and len(report.refusals) == 10
    assert report.refusals[0].startswith("row 1: event refused: field 'amount' (rule min)")
    assert report.refusals[-1].startswith("row 46: ")


def test_a_regression_replay_reports_its_error() -> None:
    columns = {n: s.model_dump() for n, s in _stream.contract().columns.items()}
    columns["paid"] = {"type": "float"}
    spec = build_spec("m", Contract.model_validate({"columns": columns}), "paid",
                      "linear_regression")
    rows = [{**r, "paid": 3 * r["amount"]} for r in _stream.rows(600)]
    report = replay(OnlineModel(spec, build_pipeline(spec)), [rows], metric="rmse", every=200)
    assert report.metric == "rmse" and report.points[-1].block < report.points[0].block
    with pytest.raises(ConfigError, match="'accuracy' is not one for regression.*use one of mae"):
        replay(OnlineModel(spec, build_pipeline(spec)), [rows], metric="accuracy")


def test_csv_cells_are_read_as_the_contract_types(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("amount,lines,region,opened,paid\n"
                    "12.5,3.0,north,2024-02-01,yes\n"
                    "abc,,south,2024-02-02,no\n")
    first, second = next(read_records(path, _stream.contract()))
    assert first == {"amount": 12.5, "lines": 3.0, "region": "north", "opened": "2024-02-01",
                     "paid": "yes"}
    assert second["amount"] == "abc" and second["lines"] is None
    checker = _model().checker
    assert checker.learn_event(first)["record"]["lines"] == 3.0
    with pytest.raises(EventRefusedError, match="field 'amount' must be float, got str 'abc'"):
        checker.learn_event(second)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("events.txt", "", "cannot tell the format"),
    ("events.jsonl", '{"a": 1}\n[1, 2]\n', "line 2: not a JSON object"),
    ("events.jsonl", '{"a": 1}\n{"a": \n', "line 2: not JSON"),
])
def test_unreadable_streams_name_the_file_and_line(tmp_path: Path, name: str, text: str,
                                                   message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SourceError, match=message):
        list(read_records(path))
