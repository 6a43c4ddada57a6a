"""What every benchmark records about the run and how it writes ``benchmarks/results/*.json``."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``results/<name>.json``: the figures plus the date and the machine they came from."""
    report = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        **figures,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {out}")
    return out
