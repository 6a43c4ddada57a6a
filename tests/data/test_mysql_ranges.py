"""Parallel key-range reads of MySQL/MariaDB tables against a real MariaDB server: the result is
the single stream's row for row (key order), the fallbacks, and the worker protocol's failures."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from mlstrata.data import _mysql_ranges
from mlstrata.data._mysql_client import connect, explained_rows, fetch_all, mysql_driver
from mlstrata.data._mysql_ranges import CONNECTIONS_VARIABLE, connections, in_order, plan_reads
from mlstrata.data.sources import SourceSpec, load_source
from mlstrata.errors import SourceError

from .._mariadb import MariaDBServer

# Keys with gaps, negative keys and a hole at the start of a range; a BLOB (hex), exact decimals,
# dates and text with a tab and a newline travel through the workers' Arrow files.
RANGED = """CREATE TABLE IF NOT EXISTS ranged (id INT PRIMARY KEY, amount DECIMAL(12,2),
  opened DATE, note VARCHAR(40), payload BLOB)"""
RANGED_ROWS = """INSERT IGNORE INTO ranged SELECT CAST(seq AS SIGNED) * 7 - 20000,
  IF(seq % 11 = 0, NULL, seq * 1.25), DATE_ADD('2024-01-01', INTERVAL seq % 400 DAY),
  IF(seq % 13 = 0, CONCAT('tab\\there\\nline ', seq), CONCAT('n', seq)),
  IF(seq % 5 = 0, UNHEX(HEX(seq)), NULL) FROM seq_1_to_6000 WHERE seq % 17 <> 3"""

# 3,000 dense keys and five far outliers: ranges of equal key width put every dense key in one.
SKEWED = "CREATE TABLE IF NOT EXISTS skewed (id BIGINT PRIMARY KEY, v VARCHAR(12))"
SKEWED_ROWS = """INSERT IGNORE INTO skewed SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000
  UNION ALL SELECT 1000000000000 + seq, 'far' FROM seq_1_to_5"""


@pytest.fixture(scope="module")
def server(mariadb: MariaDBServer) -> MariaDBServer:
    mariadb.execute(RANGED, RANGED_ROWS, "ANALYZE TABLE ranged", SKEWED, SKEWED_ROWS,
                    "ANALYZE TABLE skewed",
                    "CREATE TABLE IF NOT EXISTS textkey (code VARCHAR(8) PRIMARY KEY, v INT)",
                    "INSERT IGNORE INTO textkey VALUES ('b', 2), ('a', 1), ('c', 3)",
                    "CREATE TABLE IF NOT EXISTS nokey (v INT)",
                    "INSERT INTO nokey VALUES (3), (1), (2)")
    return mariadb


@pytest.fixture(autouse=True, params=["mysqlclient", "pymysql"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with each driver (mysqlclient only where installed); small ranges, so the
    6,000-row table is cut into many."""
    if request.param == "mysqlclient":
        pytest.importorskip("MySQLdb")
    monkeypatch.setenv("MLSTRATA_MYSQL_DRIVER", request.param)
    monkeypatch.setattr(_mysql_ranges, "RANGE_ROWS", 500)
    return str(request.param)


def _read(server: MariaDBServer, tmp_path: Path, table: str, connections: int,
          monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[Any, ...]], dict[str, Any], Any]:
    monkeypatch.setenv(CONNECTIONS_VARIABLE, str(connections))
    con = duckdb.connect()
    stage = tmp_path / f"stage-{connections}"
    loaded = load_source(SourceSpec(server.url(), table=table), con, stage)
    rows = con.execute(f"SELECT * FROM {loaded.table}").fetchall()  # as stored: no ORDER BY
    leftovers = [p.name for p in stage.iterdir() if p.suffix == ".arrows"]
    assert leftovers == []  # each range's file is deleted once loaded
    return rows, dict(loaded.details), pq.read_table(loaded.raw_path)


def test_parallel_ranges_give_the_single_stream_row_for_row(
        server: MariaDBServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    single, single_details, single_backup = _read(server, tmp_path, "ranged", 1, monkeypatch)
    parallel, details, backup = _read(server, tmp_path, "ranged", 3, monkeypatch)
    assert parallel == single and backup.equals(single_backup)
    assert [row[0] for row in parallel] == sorted(row[0] for row in parallel)  # key order
    assert parallel[0][0] == -19993 and len(parallel) == 6000 - 353
    assert details["connections"] == 3 and details["key_ranges"] >= 4
    assert details["order_by"] == ["id"] and "key_ranges" not in single_details
    tabbed = next(row for row in parallel if row[0] == 13 * 7 - 20000)
    assert tabbed[3] == "tab\there\nline 13" and tabbed[1] == 16.25
    assert next(row for row in parallel if row[0] == 5 * 7 - 20000)[4] == "05"  # hex of 0x05


@pytest.mark.parametrize(("table", "order"), [("textkey", ["code"]), ("nokey", None)])
def test_tables_without_an_integer_key_are_one_stream(
        table: str, order: list[str] | None, server: MariaDBServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows, details, _ = _read(server, tmp_path, table, 4, monkeypatch)
    assert "key_ranges" not in details and details.get("order_by") == order
    if order:  # read in key order, whatever the insertion order was
        assert rows == [("a", 1), ("b", 2), ("c", 3)]


def test_a_bad_connection_count_is_one_line(
        server: MariaDBServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONNECTIONS_VARIABLE, "many")
    with pytest.raises(SourceError, match="MLSTRATA_MYSQL_CONNECTIONS='many': give a whole "
                                          "number of connections"):
        load_source(SourceSpec(server.url(), table="ranged"), duckdb.connect(), tmp_path / "s")


def test_a_worker_that_dies_or_fails_is_one_line() -> None:
    dies = [sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"]
    with pytest.raises(SourceError, match=r"a reader process stopped \(exit code 3: boom\); "
                                          "read the table as one stream with "
                                          "MLSTRATA_MYSQL_CONNECTIONS=1"):
        list(in_order(dies, [{"n": 1}, {"n": 2}], 2))
    fails = [sys.executable, "-c", "import sys\nfor _ in sys.stdin: "
             "print('{\"error\": \"range 2 failed\"}', flush=True)"]
    with pytest.raises(SourceError, match="^range 2 failed$"):
        list(in_order(fails, [{"n": 1}], 1))
    echo = [sys.executable, "-c", "import json, sys\nfor line in sys.stdin: "
            "print(json.dumps({'result': json.loads(line)['n']}), flush=True)"]
    assert list(in_order(echo, [{"n": n} for n in range(9)], 2)) == [str(n) for n in range(9)]


def test_a_chatty_worker_does_not_hang_the_read() -> None:
    """A worker writing far more than a pipe holds to stderr (warnings) still answers: its
    stderr goes to a file, not a pipe nobody reads until it exits."""
    chatty = [sys.executable, "-c", "import json, sys\nsys.stderr.write('w' * 300_000)\n"
              "sys.stderr.flush()\nfor line in sys.stdin: "
              "print(json.dumps({'result': json.loads(line)['n']}), flush=True)"]
    assert list(in_order(chatty, [{"n": n} for n in range(4)], 2)) == ["0", "1", "2", "3"]


def test_too_many_connections_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONNECTIONS_VARIABLE, "1000")
    with pytest.raises(SourceError, match="connections from 1 to 16"):
        _mysql_ranges.connections("mysql://ann@db.example/sales")


def test_ranges_of_a_skewed_key_hold_comparable_row_counts(
        server: MariaDBServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges are cut at the server's row estimates, not at equal key widths: no range holds
    most of the table, and the parallel read is still the single stream row for row."""
    db = connect(mysql_driver(), server.url())
    try:
        plan = plan_reads(functools.partial(fetch_all, db), lambda q: explained_rows(db, q),
                          "skewed", "`skewed`", 3)
        counts = [int(fetch_all(db, f"SELECT COUNT(*) FROM skewed WHERE id BETWEEN {lo} "
                                    f"AND {hi}")[0][0]) for lo, hi in plan.ranges]
    finally:
        db.close()
    assert sum(counts) == 3005 and len(counts) >= 3
    assert max(counts) <= 3 * _mysql_ranges.RANGE_ROWS, counts  # estimates are approximate
    single, _, _ = _read(server, tmp_path, "skewed", 1, monkeypatch)
    parallel, details, _ = _read(server, tmp_path, "skewed", 3, monkeypatch)
    assert parallel == single and details["key_ranges"] == len(counts)


def test_one_connection_by_default_beside_the_server_or_on_few_cores(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONNECTIONS_VARIABLE, raising=False)
    monkeypatch.setattr(_mysql_ranges.os, "cpu_count", lambda: 8)
    assert connections("mysql://ann@db.example:3306/sales") == 4
    for local in ("mysql://ann@127.0.0.1/s", "mysql://ann@localhost/s",
                  "mysql://ann@db.example/s?unix_socket=/run/mysqld.sock"):
        assert connections(local) == 1
    monkeypatch.setattr(_mysql_ranges.os, "cpu_count", lambda: 2)
    assert connections("mysql://ann@db.example:3306/sales") == 1


def test_a_table_name_with_a_backslash_and_a_quote_finds_its_key_in_any_sql_mode(
        server: MariaDBServer) -> None:
    """The table name is bound as a parameter, which the driver escapes for the session's
    ``sql_mode`` (with NO_BACKSLASH_ESCAPES a backslash-escaped literal names another table)."""
    server.execute("CREATE TABLE IF NOT EXISTS `o'neil\\loans` (id INT PRIMARY KEY, x INT)")
    db = connect(mysql_driver(), server.url())
    try:
        db.cursor().execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        plan = plan_reads(functools.partial(fetch_all, db), lambda q: explained_rows(db, q),
                          "o'neil\\loans", "`o'neil\\loans`", 1)
    finally:
        db.close()
    assert plan.order_by == ("id",)
