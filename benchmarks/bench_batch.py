"""Batch benchmark: ``mlstrata predict`` vs the raw onnxruntime loop vs pandas + scikit-learn.

On the same package (default: the ``make demo`` model) and the same synthetic Parquet file
(10M credit applications by default, with the recipe's derived column already added so every
path scores the same columns), each in its own process pinned to one CPU, its peak RSS its
own (not this script's: ``_rss.py``):

- ``mlstrata predict`` (streaming, input validated against the contract, rejects file,
  onnxruntime with 1 thread): rows/s and peak RSS;
- the floor: a hand-written loop reading 100k-row Parquet batches and running onnxruntime
  (1 thread) on them, no validation;
- what users do today: pandas ``read_parquet`` + the native pipeline's ``predict_proba`` on the
  whole frame (capped at ``--sklearn-rows``, default 2M), and in 100k-row chunks;
- Spark local mode (``--engine spark``) on a sample: the same predictions row for row?
- precompute into SQLite and PostgreSQL (``--precompute-rows``): rows/s, and lookup latency
  p50/p99 through the Python API and over HTTP (``mlstrata serve --precomputed``).

The scoring comparison runs for two models: the package given (default: the demo's champion,
which may be a cheap linear model) and a HistGradientBoosting credit model trained here on 20,000
synthetic rows (the kind of model the issue's reference figures were measured with), because
the share of time spent outside onnxruntime depends on how heavy the model is.

Results: ``benchmarks/results/bench_batch.json``.
Usage: ``.venv/bin/python benchmarks/bench_batch.py [--rows 10000000] [--package DIR]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _results import write_results
from _rss import run_measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work" / "batch"
BIN = Path(sys.executable).parent
CPU = "0"

FLOOR = r"""
import sys, time
import numpy as np, pyarrow.parquet as pq
from mlstrata.runtime.dates import expand_dates
from mlstrata.runtime.session import open_session
from mlstrata.runtime.signature import Signature
package, source = sys.argv[1], sys.argv[2]
signature = Signature.from_file(__import__("pathlib").Path(package) / "signature.json")
session = open_session(package + "/model.onnx", threads=1)
dates = {f"{d.column}_{k}": d for d in signature.dates for k in
         __import__("mlstrata.runtime.dates", fromlist=["x"]).date_part_keys(d.parts)}
rows = 0
start = time.perf_counter()
for batch in pq.ParquetFile(source).iter_batches(batch_size=100_000):
    parts, feeds = {}, {}
    for name, kind in signature.onnx_inputs:
        if name in dates:
            spec = dates[name]
            if spec.column not in parts:
                parts[spec.column] = expand_dates(
                    batch.column(spec.column).to_numpy(zero_copy_only=False), spec.parts)
            values = parts[spec.column][name[len(spec.column) + 1:]]
        elif kind == "string":
            values = np.asarray(batch.column(name).fill_null("").to_numpy(zero_copy_only=False),
                                dtype=object)
        else:
            values = batch.column(name).cast("float64").to_numpy(zero_copy_only=False)
        feeds[name] = values.reshape(-1, 1)
    session.run(None, feeds)
    rows += batch.num_rows
print(rows, time.perf_counter() - start)
"""

SKLEARN = r"""
import sys, time
import joblib, pandas as pd
package, source, limit, chunked = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
signature = __import__("json").load(open(package + "/signature.json"))
names = [f["name"] for f in signature["inputs"]]
dates = [d["column"] for d in signature["dates"]]
pipeline = joblib.load(package + "/model.joblib")
start = time.perf_counter()
frame = pd.read_parquet(source, columns=names).head(limit)
for column in dates:
    frame[column] = pd.to_datetime(frame[column])
if chunked:
    for begin in range(0, len(frame), 100_000):
        pipeline.predict_proba(frame.iloc[begin:begin + 100_000])
else:
    pipeline.predict_proba(frame)
print(len(frame), time.perf_counter() - start)
"""


def measured(command: list[str]) -> tuple[str, float, float]:
    """Run pinned to one CPU: stdout, wall seconds, peak RSS in MB (its own: ``_rss``)."""
    run = run_measured(command, cpus=CPU, capture=True)
    if run.exit_code != 0:
        raise RuntimeError(f"{command[:3]} failed with exit code {run.exit_code}")
    return run.stdout, run.seconds, run.peak_rss_mb


def make_input(package: Path, rows: int) -> Path:
    """Synthetic applications (Parquet) with the recipe's derived column added."""
    import duckdb

    target = WORK / f"applications-{rows}.parquet"
    if target.exists():
        return target
    WORK.mkdir(parents=True, exist_ok=True)
    raw = WORK / f"raw-{rows}.parquet"
    subprocess.run([str(BIN / "mlstrata"), "synth", "credit", "--rows", str(rows), "--seed",
                    "11", "--out", str(raw)], check=True)
    inputs = {f["name"] for f in json.loads((package / "signature.json").read_text())["inputs"]}
    derived = (", loan_amount / NULLIF(income, 0) AS loan_to_income"
               if "loan_to_income" in inputs else "")
    duckdb.connect().execute(f"COPY (SELECT *{derived} FROM read_parquet('{raw}')) "
                             f"TO '{target}' (FORMAT parquet)")
    raw.unlink()
    return target


def hist_gb_package() -> Path:
    """A HistGradientBoosting credit package (built once under ``work/``)."""
    sys.path.insert(0, str(ROOT))
    from tests._packaged import build_credit_package

    root = WORK / "hist-gb"
    built = sorted((root / "project" / "packages").glob("*-[0-9]*"))
    if built and built[-1].is_dir():
        return built[-1]
    shutil.rmtree(root, ignore_errors=True)
    return build_credit_package(root, candidate="hist_gb", rows=20_000)


def compare_scoring(package: Path, source: Path, sklearn_rows: int) -> dict[str, Any]:
    """mlstrata predict, the raw onnxruntime floor and scikit-learn on one package."""
    figures: dict[str, Any] = {"package": str(package)}
    figures["mlstrata_predict"] = bench_predict(package, source)
    print(f"  mlstrata predict: {figures['mlstrata_predict']}", flush=True)
    figures["onnxruntime_floor"] = bench_script(FLOOR, str(package), str(source))
    print(f"  onnxruntime floor: {figures['onnxruntime_floor']}", flush=True)
    for name, chunked in (("sklearn_whole_frame", "0"), ("sklearn_chunks", "1")):
        figures[name] = bench_script(SKLEARN, str(package), str(source), str(sklearn_rows),
                                     chunked)
        print(f"  {name}: {figures[name]}", flush=True)
    figures["mlstrata_vs_floor"] = round(figures["mlstrata_predict"]["rows_per_second"]
                                         / figures["onnxruntime_floor"]["rows_per_second"], 3)
    return figures


def bench_predict(package: Path, source: Path) -> dict[str, Any]:
    out_file = WORK / "predictions.parquet"
    out, seconds, rss = measured([str(BIN / "mlstrata"), "predict", str(package), "--input",
                                  str(source), "--output", str(out_file), "--key",
                                  "application_id", "--threads", "1", "--json"])
    report = json.loads(out)
    return {"rows_in": report["rows_in"], "rows_scored": report["rows_scored"],
            "rows_rejected": report["rows_rejected"],
            "rows_per_second": round(report["rows_in"] / seconds),
            "scoring_rows_per_second": report["rows_per_second"], "wall_s": round(seconds, 1),
            "peak_rss_mb": round(rss)}


def bench_script(code: str, *args: str) -> dict[str, Any]:
    out, seconds, rss = measured([sys.executable, "-c", code, *args])
    rows, inner = out.split()
    return {"rows": int(rows), "rows_per_second": round(int(rows) / seconds),
            "wall_s": round(seconds, 1), "timed_s": round(float(inner), 1),
            "peak_rss_mb": round(rss)}


def bench_spark(package: Path, source: Path, sample_rows: int) -> dict[str, Any]:
    """Spark local mode vs the local engine on the first ``sample_rows`` rows."""
    import duckdb
    import pyarrow.parquet as pq

    sample = WORK / "spark-sample.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{source}') LIMIT "
                             f"{sample_rows}) TO '{sample}' (FORMAT parquet)")
    results = {}
    for engine in ("local", "spark"):
        out = WORK / f"sample-{engine}.parquet"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([str(BIN / "mlstrata"), "predict", str(package), "--input", str(sample),
                        "--output", str(out), "--key", "application_id", "--engine", engine,
                        "--json"], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        table = pq.read_table(out).sort_by("application_id")
        results[engine] = (table, seconds)
    local, spark = results["local"][0], results["spark"][0]
    probability = [c for c in local.column_names if c.startswith("probability_")]
    same = (local.column("application_id").equals(spark.column("application_id"))
            and local.column("prediction").equals(spark.column("prediction"))
            and all(local.column(c).equals(spark.column(c)) for c in probability))
    return {"rows": local.num_rows, "same_predictions_row_for_row": bool(same),
            "local_wall_s": round(results["local"][1], 1),
            "spark_wall_s": round(results["spark"][1], 1)}


def bench_precompute(package: Path, source: Path, rows: int) -> dict[str, Any]:
    """Precompute into SQLite and PostgreSQL; lookup latency via the API and over HTTP."""
    import duckdb

    sys.path.insert(0, str(ROOT))
    from tests._postgres import start_postgres

    sample = WORK / "precompute-sample.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{source}') LIMIT {rows}) "
                             f"TO '{sample}' (FORMAT parquet)")
    scored = WORK / "predictions.parquet"  # from bench_predict: the rows that passed the contract
    keys = [row[0] for row in duckdb.connect().execute(
        f"SELECT application_id FROM read_parquet('{scored}') WHERE application_id IN "
        f"(SELECT application_id FROM read_parquet('{sample}')) USING SAMPLE 2000 ROWS "
        "(reservoir, 7)").fetchall()]
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    server = start_postgres(base)
    figures: dict[str, Any] = {"rows": rows}
    try:
        urls = {"sqlite": f"sqlite:///{WORK / 'predictions.db'}", "postgresql": server.url}
        for name, url in urls.items():
            out, seconds, rss = measured([str(BIN / "mlstrata"), "precompute", str(package),
                                          "--input", str(sample), "--key", "application_id",
                                          "--db", url, "--json"])
            report = json.loads(out)
            figures[name] = {"rows_stored": report["rows"],
                             "rows_per_second": report["rows_per_second"],
                             "wall_s": round(seconds, 1), "peak_rss_mb": round(rss),
                             "lookup_api": _api_latency(url, keys),
                             "lookup_http": _http_latency(package, url, keys)}
            print(f"  precompute {name}: {figures[name]}", flush=True)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return figures


def _api_latency(url: str, keys: list[str]) -> dict[str, float]:
    from mlstrata.serve.precomputed import open_precomputed

    store = open_precomputed(url)
    times = []
    for key in keys:
        start = time.perf_counter()
        store.lookup(key)
        times.append((time.perf_counter() - start) * 1000)
    store.close()
    return _percentiles(times)


def _http_latency(package: Path, url: str, keys: list[str]) -> dict[str, float]:
    from bench_serve import free_port, stop

    port = free_port()
    process = subprocess.Popen([str(BIN / "mlstrata"), "serve", str(package), "--port",
                                str(port), "--precomputed", url], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/v2/health/ready", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        times = []
        for key in keys:
            start = time.perf_counter()
            urllib.request.urlopen(f"{base}/v1/precomputed/{key}", timeout=5).read()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        stop(process)
    return _percentiles(times)


def _percentiles(times: list[float]) -> dict[str, float]:
    times.sort()
    return {"p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[int(len(times) * 0.99)], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--package", type=Path, default=None)
    parser.add_argument("--sklearn-rows", type=int, default=2_000_000)
    parser.add_argument("--spark-rows", type=int, default=200_000)
    parser.add_argument("--precompute-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from bench_serve import default_package

    package = (args.package or default_package()).resolve()
    heavy = hist_gb_package()
    source = make_input(package, args.rows)
    print(f"package {package}, input {source}", flush=True)
    figures: dict[str, Any] = {"rows": args.rows, "threads": 1}
    print(f"HistGradientBoosting package {heavy}", flush=True)
    figures["hist_gb"] = compare_scoring(heavy, source, args.sklearn_rows)
    print(f"given package {package}", flush=True)
    figures["given"] = compare_scoring(package, source, args.sklearn_rows)
    figures["spark_local"] = bench_spark(package, source, args.spark_rows)
    print(f"  spark: {figures['spark_local']}", flush=True)
    figures["precompute"] = bench_precompute(package, source, args.precompute_rows)
    write_results("bench_batch", figures)


if __name__ == "__main__":
    main()
