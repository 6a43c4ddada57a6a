"""End to end: loans from a real MariaDB server, enriched at ingest with a regions table
(``ingest --join``), trained, packaged — and then fed RAW records (no region columns) through the
lean runtime, a batch prediction and the model wheel, which replay the join from the package's
hashed lookup table or the workspace."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mlstrata.runtime.inputs import InvalidInputError
from mlstrata.runtime.model import load
from mlstrata.workspace import Workspace

from .._mariadb import MariaDBServer

CONFIG = """\
project: join-e2e
data: {sealed_test_fraction: 0.2, seed: 0}
model: {seed: 0, candidates: [logistic], cv: {folds: 2}, tune: {top_k: 0}, ensembles: []}
"""
REGIONS = [("R1", 61000.0, "low"), ("R2", 42000.0, "medium"), ("R3", 30500.0, "high"),
           ("R4", 52000.0, "low")]


@pytest.fixture(scope="module")
def loans(mariadb: MariaDBServer) -> str:
    """A loans table whose default rate depends on the region's risk (R5 has no region row)."""
    mariadb.execute(
        "CREATE TABLE IF NOT EXISTS e2e_loans (id INT PRIMARY KEY, region_code CHAR(2), "
        "amount DECIMAL(10,2), age SMALLINT, defaulted TINYINT)",
        "INSERT IGNORE INTO e2e_loans SELECT seq, CONCAT('R', 1 + seq % 5), 500 + (seq * 37) % "
        "9000, 20 + seq % 45, CASE WHEN seq % 5 = 2 THEN seq % 3 > 0 WHEN seq % 5 = 1 THEN "
        "seq % 4 = 0 ELSE seq % 9 = 0 END FROM seq_1_to_600")
    return mariadb.url()


@pytest.mark.slow
def test_ingest_join_train_package_and_score_raw_records(
        loans: str, tmp_path: Path, cli: Any) -> None:
    from mlstrata.model.train import train
    from mlstrata.package.builder import build_package
    from mlstrata.package.wheel import build_wheel

    project = tmp_path / "project"
    ws = Workspace.init(project)
    (project / "mlstrata.yaml").write_text(CONFIG)
    regions = tmp_path / "regions.csv"
    with regions.open("w", newline="") as handle:
        csv.writer(handle).writerows([("region_code", "region_income", "region_risk"), *REGIONS])
    assert cli("ingest", regions, "--name", "regions", "--test-fraction", "0",
               cwd=project).code == 0
    result = cli("ingest", loans, "--table", "e2e_loans", "--name", "loans", "--target",
                 "defaulted", "--key", "id", "--join", "regions", "--on", "region_code",
                 "--json", cwd=project)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["unmatched_rows"] > 0  # R5 has no region row

    ws = Workspace.find(project)
    model = train(ws, report["enriched"]["ref"]).model
    package = build_package(ws, model.ref, project / "packages" / "loans", zip_=False).path
    table = json.loads((package / "joins" / "01.json").read_text())
    assert table["dataset"] == "regions@1" and len(table["rows"]) == 4
    assert "joins/01.json" in json.loads((package / "manifest.json").read_text())["files"]

    runtime = load(package)
    assert {"region_income", "region_risk"} <= set(runtime.signature.input_names)
    raw = [{"id": 1, "region_code": "R3", "amount": 1200.5, "age": 30},
           {"id": 2, "region_code": "R1", "amount": 1200.5, "age": 30}]
    enriched = [{**raw[0], "region_income": 30500.0, "region_risk": "high"},
                {**raw[1], "region_income": 61000.0, "region_risk": "low"}]
    from_raw = runtime.predict_records(raw)
    assert from_raw.to_records() == runtime.predict_records(enriched).to_records()
    assert from_raw.probabilities[0][1] > from_raw.probabilities[1][1]  # high risk scores higher
    with pytest.raises(InvalidInputError, match="region_code"):
        runtime.predict_records([{"id": 3, "amount": 10.0, "age": 30}])  # no key: nothing to join

    # Batch scoring from the package alone (no workspace anywhere): its join tables fill the
    # joined columns, as the runtime does; R5 has no region row (left join: scored, missing).
    batch = tmp_path / "raw.csv"
    batch.write_text("id,region_code,amount,age\n1,R3,1200.5,30\n2,R1,1200.5,30\n"
                     "3,R5,1200.5,30\n")
    alone = tmp_path / "alone"
    shutil.copytree(package, alone / "loans")
    out = alone / "scored.parquet"
    scored = cli("predict", alone / "loans", "--input", batch, "--output", out, "--key", "id",
                 cwd=alone)
    assert scored.code == 0, scored.err
    from_package = pq.read_table(out).to_pylist()
    assert [row["prediction"] for row in from_package[:2]] == from_raw.labels.tolist()
    assert [row["probability_1"] for row in from_package[:2]] == pytest.approx(
        from_raw.probabilities[:, 1].tolist())
    assert len(from_package) == 3

    # The project moved to another folder: the workspace replays the join with DuckDB from the
    # frozen recipe, finding the joined version by id (no path frozen at fitting time).
    moved = tmp_path / "moved" / "project"
    shutil.move(project, moved)
    package = moved / "packages" / "loans"
    replayed = tmp_path / "replayed.parquet"
    scored = cli("predict", package, "--input", batch, "--output", replayed, "--key", "id",
                 "--recipe", "replay", "--no-log", cwd=moved)
    assert scored.code == 0, scored.err
    assert [(str(r["id"]), r["prediction"], round(r["probability_1"], 9)) for r in
            pq.read_table(replayed).to_pylist()] == [
        (r["id"], r["prediction"], round(r["probability_1"], 9)) for r in from_package]
    store = tmp_path / "scores.db"
    precomputed = cli("precompute", package, "--input", batch, "--key", "id", "--db",
                      f"sqlite:///{store}", "--no-log", cwd=moved)
    assert precomputed.code == 0, precomputed.err
    with sqlite3.connect(store) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE "
                                                 "type = 'table' AND name NOT LIKE '%meta%'")]
        assert any(db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 3 for t in tables)

    # The model wheel carries the join table and its runtime applies it (no mlstrata, no pandas).
    wheel = build_wheel(package, tmp_path / "dist")
    assert any(n.endswith("/model/joins/01.json") for n in zipfile.ZipFile(wheel).namelist())
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # what pip would install (a pure-Python wheel)
    module = next(p.name for p in target.iterdir() if (p / "model").is_dir())
    code = (f"import sys; sys.path.insert(0, {str(target)!r}); import {module} as m; "
            f"print(m.predict({raw[0]!r}))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    assert str(from_raw.to_records()[0]["prediction"]) in shown
