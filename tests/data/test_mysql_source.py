"""MySQL/MariaDB sources against a real MariaDB server: types, streaming, the full ingest
guarantees, and one-line errors that leave nothing behind and never print the password."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from mlstrata.data.sources import SourceSpec, load_source
from mlstrata.errors import SourceError
from mlstrata.workspace import Workspace

from .._mariadb import PASSWORD, MariaDBServer
from .._processes import free_port

TYPED = """CREATE TABLE IF NOT EXISTS typed (
  id BIGINT UNSIGNED PRIMARY KEY, amount DECIMAL(10,2), rate DOUBLE, paid TINYINT(1),
  active BOOL, level TINYINT, grade ENUM('A','B','C'), note TEXT, email VARCHAR(80),
  opened DATE, seen DATETIME(6), at_time TIME, tags SET('x','y'))"""
TYPED_ROWS = """INSERT IGNORE INTO typed VALUES
  (1, 1234.50, 0.5, 1, 0, -3, 'A', 'héllo, wörld', 'ann@example.com', '2024-01-31',
   '2024-01-31 10:11:12.123456', '12:00:01', 'x,y'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (18446744073709551615, -0.01, 1e300, 0, 1, 127, 'C', '', 'bob@example.org', '1999-12-31',
   '2000-01-01 00:00:00', '00:00:00', '')"""


@pytest.fixture(autouse=True, params=["mysqlclient", "pymysql"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each driver (mysqlclient only where it is installed)."""
    if request.param == "mysqlclient":
        pytest.importorskip("MySQLdb")
    monkeypatch.setenv("MLSTRATA_MYSQL_DRIVER", request.param)
    return str(request.param)


@pytest.fixture(scope="module")
def server(mariadb: MariaDBServer) -> MariaDBServer:
    """The session server with the tables these tests read."""
    mariadb.execute(TYPED, TYPED_ROWS,
                    "CREATE TABLE IF NOT EXISTS loans (id INT PRIMARY KEY, amount DECIMAL(12,2),"
                    " grade ENUM('A','B','C'), defaulted BOOL, email VARCHAR(80))",
                    "INSERT IGNORE INTO loans SELECT seq, seq * 10.25, ELT(1 + seq % 3, 'A', "
                    "'B', 'C'), seq % 4 = 0, CONCAT('user', seq, '@example.com') "
                    "FROM seq_1_to_25000")
    return mariadb


def _load(url: str, tmp_path: Path, **options: Any) -> tuple[duckdb.DuckDBPyConnection, Any]:
    con = duckdb.connect()
    return con, load_source(SourceSpec(url, **options), con, tmp_path / "stage")


def test_types_are_kept(server: MariaDBServer, tmp_path: Path, driver: str) -> None:
    con, loaded = _load(server.url(), tmp_path, table="typed")
    types = {c.name: (c.type, c.engine_type) for c in loaded.columns}
    assert types == {
        "id": ("integer", "UBIGINT"), "amount": ("float", "DOUBLE"),
        "rate": ("float", "DOUBLE"), "paid": ("boolean", "BOOLEAN"),
        "active": ("boolean", "BOOLEAN"), "level": ("integer", "BIGINT"),
        "grade": ("text", "VARCHAR"), "note": ("text", "VARCHAR"), "email": ("text", "VARCHAR"),
        "opened": ("date", "DATE"), "seen": ("timestamp", "TIMESTAMP"),
        "at_time": ("text", "VARCHAR"), "tags": ("text", "VARCHAR")}
    rows = con.execute(f"SELECT * FROM {loaded.table} ORDER BY id").fetchall()
    assert rows[0] == (1, 1234.5, 0.5, True, False, -3, "A", "héllo, wörld",
                       "ann@example.com", dt.date(2024, 1, 31),
                       dt.datetime(2024, 1, 31, 10, 11, 12, 123456), "12:00:01", "x,y")
    assert rows[1] == (2, *([None] * 12))
    assert rows[2][:3] == (18446744073709551615, -0.01, 1e300)
    assert loaded.format == "mysql" and PASSWORD not in json.dumps(loaded.details)
    backup = pq.read_table(loaded.raw_path)  # the query-plus-result backup keeps the decimals
    assert backup.column("amount").to_pylist() == [Decimal("1234.50"), None, Decimal("-0.01")]
    assert loaded.details["decimal_columns"] == {"amount": "DECIMAL(10,2)"}
    assert loaded.details["driver"] == driver


def test_a_query_streams_in_chunks(server: MariaDBServer, tmp_path: Path) -> None:
    con, loaded = _load(server.url(scheme="mariadb"), tmp_path,
                        query="SELECT id, amount FROM loans WHERE id > 100 ORDER BY id;")
    assert loaded.rows == 24_900  # more than two 10,000-row chunks
    assert con.execute(f"SELECT min(id), max(amount) FROM {loaded.table}").fetchone() == (
        101, 256250.0)
    assert loaded.details["query"].startswith("SELECT id, amount")


def test_password_from_mysql_pwd(server: MariaDBServer, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYSQL_PWD", PASSWORD)
    _, loaded = _load(server.url(password=None), tmp_path, query="SELECT 1 AS one")
    assert loaded.rows == 1 and loaded.location == server.url(password=None)


def test_ingest_keeps_every_guarantee(server: MariaDBServer, workspace: Workspace) -> None:
    from mlstrata.data.ingest import IngestOptions, ingest

    spec = SourceSpec(server.url(), table="loans")
    result = ingest(workspace, spec, IngestOptions(name="loans", target="defaulted", key="id"))
    meta = result.dataset.meta
    assert meta["format"] == "mysql" and meta["rows"] + result.testset.meta["rows"] == 25_000
    assert {f["column"]: f["action"] for f in meta["pii"]} == {"email": "mask"}
    assert result.raw.meta["table"] == "loans"
    catalog = (workspace.root / ".mlstrata").rglob("*")
    assert not any(PASSWORD in p.read_text(errors="ignore") for p in catalog if p.is_file())
    again = ingest(workspace, spec, IngestOptions(name="loans", target="defaulted", key="id"))
    assert again.reused_existing and again.dataset.id == result.dataset.id


@pytest.mark.parametrize(("case", "expected"), [
    ("unreachable", "cannot connect to mysql://mlstrata@127.0.0.1:"),
    ("password", "Access denied for user 'mlstrata'"),
    ("database", "Unknown database 'no_such_db'"),
    ("table", "has no table 'loan'; did you mean 'loans'?"),
    ("query", "reading the query failed"),
])
def test_bad_input_is_one_line_and_writes_nothing(
        case: str, expected: str, server: MariaDBServer, workspace: Workspace, cli: Any) -> None:
    url, options = server.url(), ["--table", "loans"]
    if case == "unreachable":
        url = f"mysql://mlstrata:{PASSWORD}@127.0.0.1:{free_port()}/mlstrata"
    elif case == "password":
        url = server.url(password="wrong-" + PASSWORD)
    elif case == "database":
        url = server.url(database="no_such_db")
    elif case == "table":
        options = ["--table", "loan"]
    else:
        options = ["--query", "SELEC id FROM loans"]
    before = sorted(p.name for p in workspace.root.rglob("*"))
    result = cli("ingest", url, "--name", "x", *options, cwd=workspace.root)
    assert result.code != 0 and expected in result.err
    assert PASSWORD not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert sorted(p.name for p in workspace.root.rglob("*")) == before


def test_load_source_error_names_the_redacted_url(server: MariaDBServer, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^mysql://mlstrata@127\.0\.0\.1:\d+/mlstrata: "
                                          r"reading the query failed"):
        _load(server.url(), tmp_path, query="SELECT * FROM missing_table")


# Values a CSV line must carry exactly: quotes, commas, CR/LF and NUL in text and bytes, empty
# text and bytes next to NULL, the word NULL, latin1 and binary-collated text (hex: MariaDB flags
# it binary) beside the default collation, floats that print with 17 digits, a zero date, a
# negative TIME, an ENUM value with a comma, JSON.
TRICKY = """CREATE TABLE IF NOT EXISTS tricky (id INT PRIMARY KEY, d DOUBLE, f FLOAT,
  t TEXT, l VARCHAR(20) CHARACTER SET latin1, u VARCHAR(20) COLLATE utf8mb4_bin,
  b VARBINARY(20), bl BLOB, dt DATETIME(6), tm TIME, st ENUM('a,b', 'c'), j JSON, y YEAR)"""
TRICKY_ROWS = """INSERT IGNORE INTO tricky VALUES
  (1, 3.0000000000000004e-1, 0.1, 'quote " and, comma\\r\\nnext', 'café', 'ÅÄ"', X'220A00', X'',
   '2024-01-31 10:11:12.5', '-838:59:59', 'a,b', '{"k": [1, "x"]}', 2024),
  (2, 1e-7, 3.4e38, '', NULL, '', '', NULL, NULL, NULL, 'c', NULL, NULL),
  (3, -0.0, -1.5, 'NULL', 'x', NULL, NULL, X'FFFE0D0A', '0000-00-00 00:00:00', '00:00:00',
   'c', 'null', 1901),
  (4, 123456789012345680, 1.17549435e-38, '"', '""', ',', X'2C', X'22', NULL, NULL, NULL,
   '[]', NULL)"""


def test_lines_give_the_drivers_values_exactly(server: MariaDBServer, tmp_path: Path) -> None:
    """A table is read as CSV lines the server writes; a query as the driver's values. Both give
    the same typed rows and backup, byte for byte. (A query's text with a binary collation —
    ``u``, and MariaDB's JSON — is cast to text as the README says: its metadata does not tell
    it from bytes.)"""
    server.execute(TRICKY, TRICKY_ROWS)
    con, lines = _load(server.url(), tmp_path / "lines", table="tricky")
    con2, values = _load(server.url(), tmp_path / "values", query=(
        "SELECT id, d, f, t, l, CAST(u AS CHAR) AS u, b, bl, dt, tm, st, CAST(j AS CHAR) AS j, y "
        "FROM tricky ORDER BY id"))
    assert pq.read_table(lines.raw_path).equals(pq.read_table(values.raw_path))
    rows = con.execute(f"SELECT * FROM {lines.table}").fetchall()
    assert rows == con2.execute(f"SELECT * FROM {values.table}").fetchall()
    assert rows[0][3:8] == ('quote " and, comma\r\nnext', "café", 'ÅÄ"', "220a00", "")
    assert rows[1][3:8] == ("", None, "", "", None) and rows[2][3] == "NULL"
    assert rows[0][1] == 0.1 + 0.2 and rows[2][8] is None and rows[0][10] == "a,b"
    assert [row[11] for row in rows] == ['{"k": [1, "x"]}', None, "null", "[]"]


def test_a_row_longer_than_max_allowed_packet_is_read_as_values(
        server: MariaDBServer, tmp_path: Path) -> None:
    """The server cannot write a line longer than its max_allowed_packet (it gives NULL): the
    read starts again with the driver's values, and nothing of the first attempt remains."""
    server.execute("CREATE TABLE IF NOT EXISTS wide (id INT PRIMARY KEY, doc LONGTEXT)",
                   "INSERT IGNORE INTO wide VALUES (1, 'short'), (2, REPEAT('x', 70000)), "
                   "(3, 'after')")
    server.execute("SET GLOBAL max_allowed_packet = 65536")
    try:
        con, loaded = _load(server.url(), tmp_path, table="wide")
    finally:
        server.execute("SET GLOBAL max_allowed_packet = 16777216")
    assert con.execute(f"SELECT id, length(doc) FROM {loaded.table}").fetchall() == [
        (1, 5), (2, 70000), (3, 5)]


def test_text_with_a_binary_collation_is_read_as_text(server: MariaDBServer,
                                                      tmp_path: Path) -> None:
    """The protocol flags ``utf8mb4_bin`` text as binary, like a VARBINARY: the table's declared
    character sets tell them apart."""
    server.execute("CREATE TABLE IF NOT EXISTS collated (id INT PRIMARY KEY, "
                   "code VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, "
                   "raw VARBINARY(8))",
                   "INSERT IGNORE INTO collated VALUES (1, 'Ab-é', X'00FF'), (2, NULL, NULL)")
    con, loaded = _load(server.url(), tmp_path, table="collated")
    assert {c.name: c.engine_type for c in loaded.columns} == {
        "id": "BIGINT", "code": "VARCHAR", "raw": "VARCHAR"}
    assert con.execute(f"SELECT * FROM {loaded.table} ORDER BY id").fetchall() == [
        (1, "Ab-é", "00ff"), (2, None, None)]
