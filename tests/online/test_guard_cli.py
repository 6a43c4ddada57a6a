"""``mlstrata online replay --guard/--no-guard`` and ``mlstrata online quarantine``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from mlstrata.online.durability import events_dir
from mlstrata.online.eventlog import EventLog
from mlstrata.workspace import Workspace

from . import _stream


def _json(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.err
    body: dict[str, Any] = json.loads(result.out)
    return body


def test_guarded_replay_quarantine_list_drop_and_release(cli: Any, online_ws: Workspace,
                                                         tmp_path: Path) -> None:
    ws = online_ws.root
    rows = _stream.rows(6_000, seed=3)
    for row in rows[3_000:3_300]:  # 5 % of the stream, labels flipped (the proportion)
        row["paid"] = "no" if row["paid"] == "yes" else "yes"
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    plain = _json(cli("online", "replay", "loans", stream, "--no-guard", "-w", ws, "--json"))
    assert not any(note.startswith("guard:") for note in plain["notes"])
    guarded = _json(cli("online", "replay", "loans", stream, "--guard", "--commit", "-w", ws,
                        "--json"))
    assert any(note.startswith("guard: 1 rollback(s)") for note in guarded["notes"])
    assert guarded["learnt"] == plain["learnt"] == 6_000  # every event logged, none lost

    listed = _json(cli("online", "quarantine", "loans", "-w", ws, "--json"))
    (entry,) = listed["entries"]
    assert entry["status"] == "quarantined" and entry["first"] <= 3_001 <= 3_300 <= entry["last"]

    with EventLog(events_dir(online_ws, "loans")):  # held by a server: refused, nothing changed
        busy = cli("online", "quarantine", "loans", "--drop", "all", "-w", ws)
    assert busy.code != 0 and "open for writing in another process" in busy.err
    unknown = cli("online", "quarantine", "loans", "--release", "9", "-w", ws)
    assert unknown.code != 0 and "no quarantine entry '9'" in unknown.err

    dropped = _json(cli("online", "quarantine", "loans", "--drop", "1", "-w", ws, "--json"))
    assert dropped["entries"][0]["status"] == "dropped"
    again = cli("online", "quarantine", "loans", "--release", "1", "-w", ws)
    assert again.code != 0 and "is dropped already" in again.err
    text = cli("online", "quarantine", "loans", "-w", ws)
    assert text.code == 0 and "dropped" in text.out
