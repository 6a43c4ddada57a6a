"""``mlstrata online show`` lists the guard's quarantine: counts per decision and ranges."""

from __future__ import annotations

import json
from typing import Any

from mlstrata.online.quarantine import Quarantine, quarantine_path
from mlstrata.workspace import Workspace


def test_show_lists_the_quarantine_with_counts_and_ranges(online_ws: Workspace,
                                                          cli: Any) -> None:
    empty = cli("online", "show", "loans", "-w", online_ws.root)
    assert empty.code == 0 and "quarantine: empty" in empty.out
    quarantine = Quarantine.load(quarantine_path(online_ws, "loans"))
    quarantine.add(10, 19, reason="rollback: window accuracy 0.41 < shadow 0.83 - 0.1")
    quarantine.add(40, 44, reason="rollback")
    quarantine.add(60, 60, reason="rollback")
    quarantine.decide("2", "dropped")
    quarantine.decide("3", "released")

    shown = cli("online", "show", "loans", "--json", "-w", online_ws.root)

    assert shown.code == 0, shown.err
    summary = json.loads(shown.out)["quarantine"]
    assert {k: summary[k] for k in ("entries", "quarantined", "dropped", "released")} == {
        "entries": 3, "quarantined": 10, "dropped": 5, "released": 1}
    assert summary["skipped"] == [[10, 19], [40, 44]]
    assert [(e["id"], e["status"]) for e in summary["list"]] == [
        (1, "quarantined"), (2, "dropped"), (3, "released")]
    text = " ".join(cli("online", "show", "loans", "-w", online_ws.root).out.split())
    assert ("quarantine: 3 entries — 10 events quarantined, 5 dropped, 1 released; learning "
            "skips 10..19, 40..44") in text
    assert "1 events 10..19 (10) quarantined rollback: window accuracy 0.41" in text
