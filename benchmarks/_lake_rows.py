"""bench_data's lake rows: the same rows ingested from one local Parquet file, from a local
Hive-partitioned folder, and from that folder uploaded to a local S3-compatible server.

The server is moto's standalone server in its own process (``tests/_s3.py``, as in the tests),
so the measured ingest pays for real HTTP listing and fetching; its own memory is not the
ingest's and is not counted. Target: the S3 lake's wall time and peak RSS within those of the
local file ingest (reported as met or missed, never adjusted).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests._s3 import start_s3  # noqa: E402  (the one starter, shared with the tests)

Measure = Callable[..., dict[str, object]]


def lake_rows(project: Path, rows: int, mlstrata: Callable[..., list[str]],
              measure: Measure) -> dict[str, Any]:
    """Build the data, measure the three ingests, return the rows and the verdict."""
    single, lake = project / "credit-lake.parquet", project / "credit-lake"
    _build(project, rows, single, lake, mlstrata)
    server = start_s3(project / "moto.log")
    try:
        _upload(server.client(), lake)
        os.environ.update(server.env())  # the measured commands inherit this environment
        common = ("--target", "default", "--json")
        results = [
            measure("ingest local parquet file", mlstrata("ingest", str(single), "--name",
                                                          "file", *common), project),
            measure("ingest local partitioned folder", mlstrata("ingest", str(lake), "--name",
                                                                "folder", *common), project),
            measure("ingest s3 partitioned lake", mlstrata("ingest", "s3://bench/credit/",
                                                           "--name", "s3", *common), project),
        ]
    finally:
        server.stop()
        for name in server.env():
            os.environ.pop(name, None)
    local, remote = results[0], results[2]
    return {
        "rows": rows,
        "files": sum(1 for _ in lake.rglob("*.parquet")),
        "bytes": sum(p.stat().st_size for p in lake.rglob("*.parquet")),
        "steps": results,
        "s3_within_local_peak_rss": remote["peak_rss_mb"] <= local["peak_rss_mb"],  # type: ignore[operator]
        "s3_over_local_seconds": round(remote["seconds"] / local["seconds"], 2),  # type: ignore[operator]
    }


def _build(project: Path, rows: int, single: Path, lake: Path,
           mlstrata: Callable[..., list[str]]) -> None:
    """``rows`` synthetic credit rows with year and month columns: once as one Parquet file,
    once partitioned by year and month (the columns then live in the folder names)."""
    import duckdb

    raw = project / "credit-lake-source.parquet"
    subprocess.run(mlstrata("synth", "credit", "--rows", str(rows), "--seed", "3", "--out",
                            str(raw)), check=True, cwd=project, stdout=subprocess.DEVNULL)
    con = duckdb.connect()
    query = (f"SELECT *, year(application_date) AS year, month(application_date) AS month "
             f"FROM read_parquet('{raw}')")
    con.execute(f"COPY ({query}) TO '{single}' (FORMAT parquet)")
    con.execute(f"COPY ({query}) TO '{lake}' (FORMAT parquet, PARTITION_BY (year, month))")
    raw.unlink()


def _upload(client: Any, lake: Path) -> None:
    client.create_bucket(Bucket="bench")
    files = sorted(lake.rglob("*.parquet"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda path: client.upload_file(
            str(path), "bench", f"credit/{path.relative_to(lake).as_posix()}"), files))
