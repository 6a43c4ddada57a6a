"""``mlstrata online create | replay | show`` end to end, through the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlstrata.workspace import Workspace

from .._factories import make_dataset
from . import _stream


def _write_stream(folder: Path, rows: list[dict[str, Any]]) -> dict[str, Path]:
    """The same rows as CSV, Parquet (dates typed) and JSON Lines."""
    paths = {fmt: folder / f"events.{fmt}" for fmt in ("csv", "parquet", "jsonl")}
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join("" if r[c] is None else str(r[c]) for c in columns)
                                   for r in rows]
    paths["csv"].write_text("\n".join(lines) + "\n")
    typed = [{**r, "opened": date.fromisoformat(r["opened"])} for r in rows]
    pq.write_table(pa.Table.from_pylist(typed), paths["parquet"])
    paths["jsonl"].write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return paths


@pytest.fixture
def stream(tmp_path: Path) -> dict[str, Path]:
    rows = _stream.rows(2500)
    rows[10]["amount"] = -1.0  # breaks an error rule: refused, counted, the rest goes on
    return _write_stream(tmp_path, rows)


def _json(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.err
    body: dict[str, Any] = json.loads(result.out)
    return body


def test_create_replay_and_show(cli: Any, workspace: Workspace, tmp_path: Path,
                                stream: dict[str, Path]) -> None:
    ws = workspace.root
    contract = _stream.write_contract(tmp_path / "contract.yaml")
    created = _json(cli("online", "create", "loans", "--contract", contract, "--target", "paid",
                        "-w", ws, "--json"))
    assert created["events"] == 0 and created["checkpoints"] == 1
    assert created["spec"]["features"] == ["amount", "lines", "region", "opened"]

    dry = {fmt: _json(cli("online", "replay", "loans", path, "-w", ws, "--json"))
           for fmt, path in stream.items()}
    assert dry["csv"]["learnt"] == 2499 and dry["csv"]["refused"] == 1
    assert "row 11: event refused: field 'amount' (rule min)" in dry["csv"]["refusals"][0]
    assert dry["csv"]["points"] == dry["parquet"]["points"] == dry["jsonl"]["points"]
    assert len(dry["csv"]["points"]) == 3 and dry["csv"]["overall"] > 0.7
    assert not dry["csv"]["committed"]
    assert _json(cli("online", "show", "loans", "-w", ws, "--json"))["events"] == 0

    committed = _json(cli("online", "replay", "loans", stream["parquet"], "--commit",
                          "--every", "500", "-w", ws, "--json"))
    assert committed["events"] == [1, 2499] and len(committed["points"]) == 5
    shown = _json(cli("online", "show", "loans", "-w", ws, "--json"))
    assert shown["events"] == 2499 and shown["events_since_checkpoint"] == 0
    assert shown["last_checkpoint"]["meta"]["last_event"] == 2499
    html = (ws / "reports" / "loans-replay.html").read_text()
    assert "data:image/png;base64" in html and "committed as events 1..2499" in html

    again = _json(cli("online", "replay", "loans", stream["jsonl"], "-w", ws, "--json"))
    assert again["overall"] > dry["jsonl"]["overall"]  # it learnt the stream once already


def test_create_from_a_dataset_with_a_warm_start(cli: Any, workspace: Workspace,
                                                 stream: dict[str, Path]) -> None:
    make_dataset(workspace, f"SELECT * FROM read_parquet('{stream['parquet']}') WHERE amount >= 0",
                 name="loans", target="paid")
    created = _json(cli("online", "create", "warm", "--dataset", "loans", "--target", "paid",
                        "--warm-start", "loans", "-w", workspace.root, "--json"))
    assert created["spec"]["classes"] == ["no", "yes"]
    assert created["spec"]["dates"] == ["opened"] and created["events"] == 0
    assert cli("online", "create", "cold", "--dataset", "loans", "--target", "paid", "-w",
               workspace.root).code == 0
    warm, cold = (_json(cli("online", "replay", name, stream["csv"], "--every", "250", "-w",
                            workspace.root, "--json"))["points"][0]["block"]
                  for name in ("warm", "cold"))
    assert warm > cold + 0.05  # it knew the stream from its first event


def test_mistakes_get_one_line_with_the_fix(cli: Any, workspace: Workspace,
                                            tmp_path: Path) -> None:
    contract = _stream.write_contract(tmp_path / "contract.yaml")
    ws = workspace.root
    assert cli("online", "create", "a", "--contract", contract, "--target", "paid", "-w",
               ws).code == 0
    taken = cli("online", "create", "a", "--contract", contract, "--target", "paid", "-w", ws)
    assert taken.code == 2 and "an online model named 'a' exists" in taken.err
    missing = cli("online", "show", "b", "-w", ws)
    assert missing.code == 2 and "no online named 'b'" in missing.err
    both = cli("online", "create", "c", "--target", "paid", "-w", ws)
    assert both.code == 2 and "exactly one of --contract FILE or --dataset REF" in both.err
    metric = cli("online", "replay", "a", contract, "-w", ws)
    assert metric.code == 2 and "cannot tell the format" in metric.err


@pytest.mark.parametrize("command", ["create", "replay", "show"])
def test_every_command_has_help(cli: Any, command: str) -> None:
    result = cli("online", command, "--help")
    assert result.code == 0 and "--json" in result.out


def test_the_online_settings_of_mlstrata_yaml(cli: Any, workspace: Workspace, tmp_path: Path,
                                              stream: dict[str, Path]) -> None:
    ws = workspace.root
    config = ws / "mlstrata.yaml"
    config.write_text(config.read_text() + "online:\n  model: knn\n"
                      "  params: {knn: {n_neighbors: 3, window_size: 200}}\n  seed: 4\n"
                      "  drop: [lines]\n  metric: balanced_accuracy\n  checkpoint_events: 1000\n")
    contract = _stream.write_contract(tmp_path / "contract.yaml")
    spec = _json(cli("online", "create", "k", "--contract", contract, "--target", "paid",
                     "-w", ws, "--json"))["spec"]
    assert (spec["model"], spec["params"], spec["seed"]) == \
        ("knn", {"n_neighbors": 3, "window_size": 200}, 4)
    assert spec["numbers"] == ["amount"]
    replayed = _json(cli("online", "replay", "k", stream["parquet"], "--commit", "-w", ws,
                         "--json"))
    assert replayed["metric"] == "balanced_accuracy"
    shown = _json(cli("online", "show", "k", "-w", ws, "--json"))
    # created; due after the second chunk (event 1999: row 11 was refused); on close (2499)
    assert shown["checkpoints"] == 3 and shown["last_checkpoint"]["meta"]["first_event"] == 2000

    config.write_text(config.read_text() + "  checkpoint_event: 5\n")
    wrong = cli("online", "show", "k", "-w", ws)
    assert wrong.code == 2 and "online.checkpoint_event" in wrong.err
