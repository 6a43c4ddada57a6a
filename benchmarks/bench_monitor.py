"""Monitoring benchmark: ``mlstrata monitor`` vs Evidently's ``DataDriftPreset`` on one log.

The data: 20 columns (14 numbers of several shapes, 6 categories). The reference is
``--reference-rows`` rows of the stable distribution (what training saw); the current traffic is
``--rows`` rows with five shifted columns, as issue 11 lists them —

- ``n_mean``: the mean moved by half a standard deviation;
- ``n_scale``: the spread multiplied by 1.5;
- ``n_mode``: a new mode, 10% of the values six standard deviations away;
- ``c_new``: a level never seen in training on 5% of the rows;
- ``c_share``: one level's share moved by 10 points (40% instead of 30%) —

and fifteen stable ones. mlstrata reads the traffic as its prediction log (JSON Lines in the
documented layout, written by DuckDB) against the reference stored in a package
(``reference.json``, computed once, as ``mlstrata package`` does — not timed); Evidently 0.7 reads
the same rows from Parquet into pandas, with the reference rows, and writes its HTML report.
Each runs in its own process (wall time and its own peak RSS: ``_rss.py``). Evidently pins its
own pandas/numpy, so it runs from ``benchmarks/work/evidently-venv`` (created on first use).

Targets (issue 11): at least 10x faster than Evidently at 1M rows, under 1 GB peak RSS at 5M
rows, every shifted column flagged and no stable one.

Usage: ``.venv/bin/python benchmarks/bench_monitor.py --rows 1000000`` (then ``--rows 5000000``;
each size is stored under its row count in ``results/bench_monitor.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _results import RESULTS, write_results
from _rss import run_measured

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "monitor"
BIN = Path(sys.executable).parent
EVIDENTLY = "evidently==0.7.23"
SHIFTED = ["n_mean", "n_scale", "n_mode", "c_new", "c_share"]
NUMBERS = ["n_mean", "n_scale", "n_mode", *(f"n{i}" for i in range(11))]
CATEGORIES = ["c_new", "c_share", "c0", "c1", "c2", "c3"]
LEVELS = ["a", "b", "c", "d"]
CHUNK = 500_000

EVIDENTLY_RUN = """
import json, sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
snapshot.save_html(sys.argv[3])
print(json.dumps(snapshot.dict(), default=str))
"""


def generate(path: Path, rows: int, seed: int, *, shifted: bool) -> None:
    """Write ``rows`` rows to Parquet in chunks (stable, or with the five shifts)."""
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        table = pa.table(_columns(rng, n, shifted))
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def _columns(rng: np.random.Generator, n: int, shifted: bool) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "n_mean": rng.normal(0.5 if shifted else 0.0, 1.0, n),
        "n_scale": rng.normal(0.0, 1.5 if shifted else 1.0, n),
        "n_mode": np.where(rng.random(n) < (0.1 if shifted else 0.0),
                           rng.normal(6.0, 0.3, n), rng.normal(0.0, 1.0, n)),
    }
    for i in range(11):  # stable numbers: normal, skewed, counts, bounded
        kind = i % 4
        columns[f"n{i}"] = (rng.normal(10 * i, 1 + i, n) if kind == 0 else
                            rng.lognormal(1.0, 0.6, n) if kind == 1 else
                            rng.poisson(3 + i, n).astype(np.float64) if kind == 2 else
                            rng.beta(2, 5, n))
    new = rng.random(n) < (0.05 if shifted else 0.0)
    columns["c_new"] = np.where(new, "zz", rng.choice(LEVELS, n, p=[0.4, 0.3, 0.2, 0.1]))
    columns["c_share"] = rng.choice(LEVELS, n, p=[0.4, 0.2, 0.2, 0.2] if shifted
                                    else [0.3, 0.3, 0.2, 0.2])
    for i in range(4):
        columns[f"c{i}"] = rng.choice([f"l{k}" for k in range(5 + 5 * i)], n)
    return columns


def package(directory: Path, reference: Path) -> None:
    """A package as far as monitoring reads one: manifest and ``reference.json``."""
    from mlstrata.monitor.reference import PredictionReference, Reference
    from mlstrata.monitor.sketch import CategorySketch, NumberSketch
    from mlstrata.runtime.manifest import MANIFEST_SCHEMA_VERSION, Manifest

    frame = pq.read_table(reference).to_pandas()
    inputs: dict[str, Any] = {n: NumberSketch.from_values(frame[n].to_numpy()) for n in NUMBERS}
    for name in CATEGORIES:
        counts = frame[name].value_counts()
        inputs[name] = CategorySketch.from_counts({str(k): int(v) for k, v in counts.items()}, 0)
    score = NumberSketch.from_values(_prediction(frame["n0"].to_numpy(), frame["n1"].to_numpy()))
    ref = Reference("bench", 1, "regression", "y", None, len(frame), inputs,
                    PredictionReference(len(frame), None, score, "value"), None)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(MANIFEST_SCHEMA_VERSION, "0.1.0", "2026-12-01T00:00:00+00:00", "bench",
                        1, "0" * 64, "regression", {}, {}, {}, {}, "double", {})
    (directory / "manifest.json").write_text(manifest.to_json())
    (directory / "reference.json").write_text(ref.to_json())


def _prediction(n0: Any, n1: Any) -> Any:
    return 0.1 * n0 + np.log(n1)


def write_log(current: Path, log: Path) -> None:
    """The current rows as a prediction log (64 MB files), written by DuckDB."""
    import duckdb

    day = log / "bench" / "v1" / "2026-12-01"
    shutil.rmtree(log, ignore_errors=True)
    day.mkdir(parents=True)
    (log / "FORMAT.json").write_text('{"format_version": 1}\n')
    inputs = ", ".join(f"{c} := {c}" for c in [*NUMBERS, *CATEGORIES])
    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    con.execute(f"""
        COPY (SELECT 1 AS format, 'prediction' AS kind, 'r' || id AS request_id, 0 AS record,
                     strftime(TIMESTAMP '2026-12-01' + to_milliseconds(id * 10),
                              '%Y-%m-%dT%H:%M:%S.%fZ') AS time,
                     'bench' AS model, 1 AS version, 'x' AS package, 'batch' AS source,
                     NULL::VARCHAR AS key, struct_pack({inputs}) AS inputs,
                     0.1 * n0 + ln(n1) AS prediction, NULL AS probabilities,
                     0.5 AS latency_ms, []::STRUCT(field VARCHAR, rule VARCHAR)[] AS warnings
              FROM (SELECT *, row_number() OVER () - 1 AS id
                    FROM read_parquet('{current}')))
        TO '{day}' (FORMAT json, FILE_SIZE_BYTES '64MB', FILENAME_PATTERN 'bench-1-{{i}}')""")
    for part in day.glob("*.json"):
        part.rename(part.with_suffix(".jsonl"))


def evidently_python() -> Path:
    """The interpreter of the Evidently environment, created when missing."""
    venv = HERE / "work" / "evidently-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # pandas 3 removed a function evidently 0.7.23 imports
        subprocess.run([str(python), "-m", "pip", "install", "-q", EVIDENTLY, "pandas<3",
                        "pyarrow"], check=True)
    return python


def run_mlstrata(pkg: Path, log: Path, out: Path) -> dict[str, Any]:
    print("· mlstrata monitor ...", flush=True)
    run = run_measured([str(BIN / "mlstrata"), "monitor", str(pkg), "--log", str(log),
                        "--window", "1d", "--json", "--out", str(out)], cwd=WORK, capture=True)
    if run.exit_code not in (0, 1):
        raise SystemExit(f"mlstrata monitor failed with exit code {run.exit_code}")
    body = json.loads(run.stdout)
    [window] = body["windows"]
    html = out / "bench-v1-monitor.html"
    return {"tool": "mlstrata monitor", "seconds": round(run.seconds, 2),
            "peak_rss_mb": round(run.peak_rss_mb, 1), "html_bytes": html.stat().st_size,
            "flagged": sorted(window["drifted_columns"]), "exit_code": run.exit_code}


def run_evidently(reference: Path, current: Path, out: Path) -> dict[str, Any]:
    python = evidently_python()
    print("· evidently DataDriftPreset ...", flush=True)
    html = out / "evidently.html"
    run = run_measured([str(python), "-c", EVIDENTLY_RUN, str(reference), str(current),
                        str(html)], cwd=WORK, capture=True)
    if run.exit_code != 0:
        raise SystemExit(f"evidently failed with exit code {run.exit_code}")
    return {"tool": f"evidently {EVIDENTLY.split('==')[1]} DataDriftPreset",
            "seconds": round(run.seconds, 2), "peak_rss_mb": round(run.peak_rss_mb, 1),
            "html_bytes": html.stat().st_size,
            "flagged": sorted(evidently_flagged(json.loads(run.stdout)))}


def evidently_flagged(snapshot: dict[str, Any]) -> list[str]:
    """The columns Evidently's per-column drift metrics call drifted: a p-value below, or a
    distance at or above, the threshold the preset chose for the column."""
    flagged = []
    for metric in snapshot.get("metrics", []):
        config = metric.get("config") or {}
        if str(config.get("type", "")).split(":")[-1] != "ValueDrift":
            continue
        column = config.get("column")
        method = str(config.get("method") or "")
        threshold = config.get("threshold")
        value = metric.get("value")
        if column is None or threshold is None or value is None:
            continue
        p_value = "p_value" in method.lower()  # "K-S p_value"; else a distance
        if (value < threshold) if p_value else (value >= threshold):
            flagged.append(str(column))
    return flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-evidently", action="store_true",
                        help="measure mlstrata only (Evidently's figures are not updated)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    reference, current = WORK / "reference.parquet", WORK / f"current-{args.rows}.parquet"
    if not reference.exists() or pq.read_metadata(reference).num_rows != args.reference_rows:
        generate(reference, args.reference_rows, seed=1, shifted=False)
    if not current.exists():
        generate(current, args.rows, seed=2, shifted=True)
    pkg, log, out = WORK / "package", WORK / f"log-{args.rows}", WORK / f"out-{args.rows}"
    package(pkg, reference)
    write_log(current, log)
    out.mkdir(exist_ok=True)
    runs = [run_mlstrata(pkg, log, out)]
    if not args.skip_evidently:
        runs.append(run_evidently(reference, current, out))
    for run in runs:
        run["missed"] = sorted(set(SHIFTED) - set(run["flagged"]))
        run["false_alarms"] = sorted(set(run["flagged"]) - set(SHIFTED))
        print(f"  {run}", flush=True)
    previous = {}
    if (RESULTS / "bench_monitor.json").exists():
        previous = json.loads((RESULTS / "bench_monitor.json").read_text()).get("sizes", {})
    entry: dict[str, Any] = {"rows": args.rows, "reference_rows": args.reference_rows,
                             "columns": len(NUMBERS) + len(CATEGORIES),
                             "log_bytes": sum(f.stat().st_size for f in log.rglob("*.jsonl")),
                             "runs": runs}
    if len(runs) == 2:
        entry["speedup_vs_evidently"] = round(runs[1]["seconds"] / runs[0]["seconds"], 1)
    elif str(args.rows) in previous:
        entry["runs"] += [r for r in previous[str(args.rows)]["runs"]
                          if r["tool"] != "mlstrata monitor"]
    write_results("bench_monitor", {
        "shifted": SHIFTED,
        "sizes": {**previous, str(args.rows): entry},
        "targets": {"speedup_at_1m_at_least": 10, "peak_rss_at_5m_under_mb": 1024,
                    "every_shift_flagged": True, "no_stable_column_flagged": True},
    })


if __name__ == "__main__":
    main()
