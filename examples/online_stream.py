"""Stream labelled events to ``mlstrata serve --online`` as a client would (used by `make demo`).

Each batch of rows is predicted (``POST /v1/predict``), then its labels are sent back by request
id (``POST /v1/learn``) — predict-then-learn over HTTP. Rows ``--poison A:B`` (event numbers)
are sent with flipped 0/1 labels: a burst of bad data. Every ``--every`` events one line shows
the metric over time: the accuracy of the served predictions against the *true* labels over
that block, and what the server's /metrics says (progressive accuracy, the guard's live and
shadow window accuracy, rollbacks, quarantined events). Rows the contract refuses (HTTP 422
names them) are left out, as a client would after fixing nothing.

    python examples/online_stream.py URL EVENTS.csv --contract contracts/credit.yaml \\
        --target default --poison 5000:6000
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mlstrata.contract import Contract
from mlstrata.online.reading import read_records


def main() -> None:
    """Parse the arguments, stream the file, print the metric over time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("events", type=Path)
    parser.add_argument("--contract", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--poison", default="", help="A:B — flip the labels of events A..B")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--every", type=int, default=1000)
    args = parser.parse_args()
    first, _, last = args.poison.partition(":")
    poison = range(int(first), int(last) + 1) if args.poison else range(0)
    with httpx.Client(base_url=args.url, timeout=30) as client:
        _stream(client, _rows(args.events, args.contract), args.target, poison, args.batch,
                args.every)


def _rows(path: Path, contract: Path) -> Iterator[dict[str, Any]]:
    for chunk in read_records(path, Contract.load(contract)):
        yield from ({k: _json(v) for k, v in row.items()} for row in chunk)


def _json(value: Any) -> Any:
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else value


def _stream(client: httpx.Client, rows: Iterator[dict[str, Any]], target: str,
            poison: range, batch: int, every: int) -> None:
    sent = right = seen = refused = 0
    pending: list[dict[str, Any]] = []
    for row in rows:
        pending.append(row)
        if len(pending) < batch:
            continue
        kept, dropped = _predict_and_learn(client, pending, target, poison, sent)
        pending, refused = [], refused + dropped
        for event, (truth, answer) in enumerate(kept, start=sent + 1):
            seen, right = seen + 1, right + (truth == answer)
            if event % every == 0:
                _report(client, event, right / seen, _overlaps(event - seen + 1, event, poison))
                seen = right = 0
        sent += len(kept)
    print(f"{sent} events streamed ({len(poison)} with flipped labels), {refused} rows refused "
          "by the contract")


def _predict_and_learn(client: httpx.Client, rows: list[dict[str, Any]], target: str,
                       poison: range, sent: int) -> tuple[list[tuple[Any, Any]], int]:
    """Predict a batch, then send its labels (flipped inside the poison range) by request id;
    rows the contract refuses are dropped. (true label, prediction) of each row learnt."""
    learnt = list(rows)
    answer = client.post("/v1/predict", json=[_features(row, target) for row in learnt])
    while answer.status_code == 422:  # the service names the records the contract refuses
        refused = {int(p["record"]) for p in answer.json()["problems"]}
        learnt = [row for i, row in enumerate(learnt) if i not in refused]
        answer = client.post("/v1/predict", json=[_features(row, target) for row in learnt])
    answer.raise_for_status()
    body = answer.json()
    labels = [1 - row[target] if sent + i + 1 in poison else row[target]
              for i, row in enumerate(learnt)]
    client.post("/v1/learn", json=[{"request_id": body["request_id"], "record": i, "label": y}
                                   for i, y in enumerate(labels)]).raise_for_status()
    predictions = [p.get("label") for p in body["predictions"]]
    return [(row[target], p) for row, p in zip(learnt, predictions, strict=True)], \
        len(rows) - len(learnt)


def _overlaps(first: int, last: int, poison: range) -> bool:
    """Whether events ``first..last`` include a poisoned one."""
    return bool(poison) and first <= poison[-1] and last >= poison[0]


def _features(row: dict[str, Any], target: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != target}


def _report(client: httpx.Client, event: int, accuracy: float, poisoned: bool) -> None:
    metrics = dict(re.findall(r"^mlstrata_online_(\w+)\{[^}]*\} (\S+)$",
                              client.get("/metrics").text, re.MULTILINE))
    guard = (f"  guard: live {float(metrics.get('guard_live_window_score', 'nan')):.3f} "
             f"shadow {float(metrics.get('guard_shadow_window_score', 'nan')):.3f}, "
             f"{int(float(metrics.get('guard_rollbacks_total', 0)))} rollback(s), "
             f"{int(float(metrics.get('guard_quarantined_events_total', 0)))} quarantined"
             if "guard_rollbacks_total" in metrics else "")
    print(f"events {event:>6,}: accuracy {accuracy:.3f} on the last block (true labels)"
          f"{'  <- poisoned burst' if poisoned else ''}{guard}", flush=True)


if __name__ == "__main__":
    main()
