"""A small labelled stream for the online tests: numbers, a category, a date, a text label."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from mlstrata.contract import Contract

CONTRACT = {
    "columns": {
        "amount": {"type": "float", "min": 0},
        "lines": {"type": "integer", "nullable": True},
        "region": {"type": "text", "allowed": ["north", "south", "east"],
                   "severity": {"allowed": "warn"}},
        "opened": {"type": "date"},
        "paid": {"type": "text", "allowed": ["no", "yes"], "severity": {"allowed": "warn"}},
    },
}


def contract() -> Contract:
    """The stream's contract."""
    return Contract.model_validate(CONTRACT)


def write_contract(path: Path) -> Path:
    """The contract as a YAML file."""
    path.write_text(yaml.safe_dump(CONTRACT, sort_keys=False))
    return path


def rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` labelled rows; the label depends on the amount, the region and the month."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        amount = rng.uniform(0, 100)
        region = rng.choice(["north", "south", "east"])
        opened = date(2024, 1, 1) + timedelta(days=rng.randrange(365))
        score = amount / 50 + (region == "north") - (opened.month > 6) + rng.gauss(0, 0.5)
        out.append({"amount": amount, "lines": rng.choice([None, 1, 2, 3]), "region": region,
                    "opened": opened.isoformat(), "paid": "yes" if score > 1 else "no"})
    return out
