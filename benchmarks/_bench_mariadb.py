"""The MariaDB row of ``bench_data.py``: ingest a table from a real MariaDB server vs the same
rows from the local CSV file, each in its own process (wall time and its own peak RSS).

The server is a throw-away one started from Debian's ``mariadb-server`` binaries exactly as the
tests start theirs (``tests/_mariadb.py``: own data directory, socket and free loopback port).
The synthetic credit CSV gets an integer ``id`` first column (the table's primary key, as most
tables have one) and is loaded with ``LOAD DATA INFILE`` into typed columns (``DECIMAL`` amounts,
``DATE``, ``TINYINT`` target, text); then ``mlstrata ingest mysql://... --table credit`` reads it
back — with the default settings (one stream: the server is on this machine), and once more in
key ranges over two connections (``MLSTRATA_MYSQL_CONNECTIONS=2``) — and the same keyed CSV is
ingested as the local file.

Peak RSS is the largest single process's: with two connections the reader processes' memory
(each ~60 MB: the interpreter, pyarrow and the driver) comes on top of the ingesting process's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._mariadb import binaries_present, start_mariadb  # noqa: E402

DDL = """CREATE TABLE credit (
  id INT PRIMARY KEY, application_id VARCHAR(16) UNIQUE, application_date DATE, age SMALLINT,
  income DECIMAL(12,2) NULL, employment_years SMALLINT, loan_amount INT, term_months SMALLINT,
  interest_rate DECIMAL(5,2), debt_to_income DECIMAL(6,3), num_credit_lines SMALLINT,
  previous_defaults SMALLINT, home_ownership VARCHAR(16), purpose VARCHAR(32),
  region VARCHAR(32), postal_code CHAR(5), email VARCHAR(80), phone VARCHAR(32),
  `default` TINYINT) ENGINE=InnoDB"""
LOAD = """LOAD DATA INFILE '{path}' INTO TABLE credit FIELDS TERMINATED BY ','
  OPTIONALLY ENCLOSED BY '"' IGNORE 1 LINES
  (id, application_id, application_date, @age, @income, @employment_years, loan_amount, term_months,
   interest_rate, debt_to_income, num_credit_lines, previous_defaults, home_ownership, purpose,
   region, postal_code, email, phone, `default`)
  SET age = NULLIF(@age, ''), income = NULLIF(@income, ''),
      employment_years = NULLIF(@employment_years, '')"""

Measure = Callable[[str, list[str], Path], dict[str, object]]


def mariadb_rows(project: Path, rows: int, mlstrata: Callable[..., list[str]],
                 measure: Measure) -> dict[str, object]:
    """Ingest ``rows`` synthetic credit rows from MariaDB and from the local CSV; the two rows."""
    if not binaries_present():
        raise SystemExit("mariadb-server is not installed (apt-get install mariadb-server)")
    synthetic, data = project / "credit-synth.csv", project / "credit-mariadb.csv"
    subprocess.run(mlstrata("synth", "credit", "--rows", str(rows), "--seed", "4", "--out",
                            str(synthetic)), check=True, cwd=project)
    duckdb.execute(f"COPY (SELECT row_number() OVER () AS id, * FROM read_csv('{synthetic}', "
                   f"all_varchar = true)) TO '{data}' (HEADER)")
    base = Path(tempfile.mkdtemp(prefix="bench-mariadb-"))
    server = start_mariadb(base)
    try:
        loadable = base / "credit.csv"  # inside the server's own folder, readable by its user
        shutil.copyfile(data, loadable)
        started = time.perf_counter()
        server.execute(DDL, LOAD.format(path=loadable))
        load_seconds = round(time.perf_counter() - started, 1)
        print(f"  loaded {rows} rows into MariaDB in {load_seconds} s", flush=True)
        url = server.url(database="mlstrata")
        results = [
            measure(f"ingest MariaDB table ({rows} rows)",
                    mlstrata("ingest", url, "--table", "credit", "--name", "from_mariadb",
                             "--target", "default", "--json"), project),
            measure(f"ingest MariaDB table, key ranges over 2 connections ({rows} rows)",
                    ["env", "MLSTRATA_MYSQL_CONNECTIONS=2",
                     *mlstrata("ingest", url, "--table", "credit", "--name", "from_mariadb_2",
                               "--target", "default", "--json")], project),
            measure(f"ingest local CSV ({rows} rows)",
                    mlstrata("ingest", str(data), "--name", "from_csv", "--target", "default",
                             "--json"), project),
        ]
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    mariadb, _, local = results
    return {
        "rows": rows, "server_load_seconds": load_seconds, "runs": results,
        "wall_ratio_vs_local": round(float(mariadb["seconds"]) / float(local["seconds"]), 2),
        "rss_ratio_vs_local": round(float(mariadb["peak_rss_mb"]) / float(local["peak_rss_mb"]),
                                    2),
        "target": "MariaDB ingest within the wall time and peak RSS of the local file ingest",
    }
