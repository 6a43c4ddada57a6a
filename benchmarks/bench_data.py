"""Data-stratum benchmark: mlstrata vs pandas describe() vs ydata-profiling, in one run.

Measures wall time and peak RSS of each step in its own process (its own peak, not this
script's: ``_rss.py``):

1. 5M synthetic credit rows (20 columns) → ``mlstrata ingest``, ``profile``, ``contract infer``,
   ``validate`` — target: profile and validate under 2 GB peak RSS.
2. 1M rows profiled by ``mlstrata profile`` (JSON + self-contained HTML report), by pandas
   ``describe(include="all")`` (numbers only, no report) and by ydata-profiling ``minimal=True``
   writing its HTML report — target: mlstrata at least 10x faster than ydata-profiling.

ydata-profiling pins its own pandas/numpy, so it runs from a separate virtual environment
(``benchmarks/work/peer-venv``, created on first use). Results go to ``benchmarks/results/``.

3. The same 5M rows ingested from one local Parquet file, from a Hive-partitioned folder and
   from that folder on a local S3-compatible server (``_lake_rows.py``; ``--lake-only``) —
   target: the s3:// lake within the local file ingest's peak RSS.
4. The same 5M rows ingested from a table of a real MariaDB server and from the local CSV file
   (``_bench_mariadb.py``; ``--mariadb-only``) — target: within the local file ingest's wall time
   and peak RSS.

Usage: ``.venv/bin/python benchmarks/bench_data.py [--rows 5000000] [--small-rows 1000000]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _bench_mariadb import mariadb_rows
from _lake_rows import lake_rows
from _results import RESULTS, write_results
from _rss import run_measured

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
BIN = Path(sys.executable).parent

PANDAS_DESCRIBE = """
import sys, pandas as pd
frame = pd.read_parquet(sys.argv[1])
frame.describe(include="all").to_json()
"""
YDATA_MINIMAL = """
import sys, pandas as pd
from ydata_profiling import ProfileReport
frame = pd.read_parquet(sys.argv[1])
ProfileReport(frame, minimal=True, progress_bar=False).to_file(sys.argv[2])
"""


def measure(label: str, command: list[str], cwd: Path) -> dict[str, object]:
    """Run ``command`` in its own process; return wall seconds and its peak RSS in MB."""
    print(f"· {label}: {' '.join(command[:4])} ...", flush=True)
    run = run_measured(command, cwd=cwd)
    if run.exit_code not in (0, 1):  # validate exits 1 when rules fail: a result, not a crash
        raise SystemExit(f"{label} failed with exit code {run.exit_code}")
    result = {"step": label, "seconds": round(run.seconds, 2),
              "peak_rss_mb": round(run.peak_rss_mb, 1), "exit_code": run.exit_code}
    print(f"  {result}", flush=True)
    return result


def peer_python() -> Path:
    """The interpreter of the peer environment with ydata-profiling, created when missing."""
    venv = WORK / "peer-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "ydata-profiling", "pandas",
                        "pyarrow", "setuptools"], check=True)
    return python


def mlstrata(*args: str) -> list[str]:
    return [str(BIN / "mlstrata"), *args]


def fresh_project(name: str) -> Path:
    """An empty mlstrata project ``benchmarks/work/<name>`` (an older one is removed)."""
    project = WORK / name
    subprocess.run(["rm", "-rf", str(project)], check=True)
    subprocess.run(mlstrata("init", str(project)), check=True, stdout=subprocess.DEVNULL)
    return project


def large_run(project: Path, rows: int) -> list[dict[str, object]]:
    data = project / "credit-large.csv"
    subprocess.run(mlstrata("synth", "credit", "--rows", str(rows), "--seed", "1",
                            "--out", str(data)), check=True, cwd=project)
    return [
        measure("ingest", mlstrata("ingest", str(data), "--name", "large", "--target", "default",
                                   "--json"), project),
        measure("profile", mlstrata("profile", "large", "--json"), project),
        measure("contract infer", mlstrata("contract", "infer", "large", "--json"), project),
        measure("validate", mlstrata("validate", "large", "--json"), project),
    ]


def small_run(project: Path, rows: int) -> list[dict[str, object]]:
    data = project / "credit-small.parquet"
    subprocess.run(mlstrata("synth", "credit", "--rows", str(rows), "--seed", "2",
                            "--out", str(data)), check=True, cwd=project)
    subprocess.run(mlstrata("ingest", str(data), "--name", "small", "--target", "default",
                            "--test-fraction", "0", "--json"),
                   check=True, cwd=project, stdout=subprocess.DEVNULL)
    peer = str(peer_python())
    return [
        measure("mlstrata profile (1M)", mlstrata("profile", "small", "--json"), project),
        measure("pandas describe (1M)", [sys.executable, "-c", PANDAS_DESCRIBE, str(data)],
                project),
        measure("ydata-profiling minimal (1M)",
                [peer, "-c", YDATA_MINIMAL, str(data), str(project / "ydata-profile.html")],
                project),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--small-only", action="store_true",
                        help="rerun only the 1M comparison, keeping the stored large results")
    parser.add_argument("--lake-only", action="store_true",
                        help="run only the lake rows (local file vs folder vs s3:// lake of "
                             "--rows rows) into results/bench_data_lake.json")
    parser.add_argument("--mariadb-only", action="store_true",
                        help="run only the MariaDB rows (a MariaDB table vs the local CSV of "
                             "--rows rows) into results/bench_data_mariadb.json")
    args = parser.parse_args()
    if args.mariadb_only:
        project = fresh_project("mariadb-project")
        write_results("bench_data_mariadb", mariadb_rows(project, args.rows, mlstrata, measure))
        return
    if args.lake_only:
        project = fresh_project("lake-project")
        write_results("bench_data_lake", lake_rows(project, args.rows, mlstrata, measure))
        return
    project = fresh_project("data-project")
    if args.small_only:
        previous = json.loads((RESULTS / "bench_data.json").read_text())
        large, args.rows = previous["large"], previous["rows_large"]
    else:
        large = large_run(project, args.rows)
    small = small_run(project, args.small_rows)
    by_step = {r["step"]: r for r in small}
    speedup = (by_step["ydata-profiling minimal (1M)"]["seconds"]  # type: ignore[operator]
               / by_step["mlstrata profile (1M)"]["seconds"])
    write_results("bench_data", {
        "rows_large": args.rows,
        "rows_small": args.small_rows,
        "large": large,
        "small": small,
        "speedup_vs_ydata_minimal": round(speedup, 1),
        "targets": {"profile_validate_peak_rss_under_mb": 2048, "speedup_at_least": 10},
    })


if __name__ == "__main__":
    main()
