"""Every source reader passes the same contract: a small table round-trips with its logical types
and values; plus encodings, delimiters, schema overrides and format detection."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlstrata.data.sources import SourceSpec, detect_format, load_source, source_size

HEADER = ["id", "code", "amount", "active", "opened", "name"]
ROWS: list[tuple[Any, ...]] = [
    (1, "08001", 1.5, True, dt.date(2024, 1, 2), "José"),
    (2, "00042", None, False, dt.date(2024, 2, 29), "Ann"),
    (3, "12345", -3.25, None, None, None),
]
TYPES = {"id": "integer", "code": "text", "amount": "float", "active": "boolean",
         "opened": "date", "name": "text"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _csv(folder: Path) -> Path:
    path = folder / "t.csv"
    lines = [",".join(HEADER)] + [",".join(_text(v) for v in row) for row in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tsv(folder: Path) -> Path:
    path = folder / "t.tsv"
    lines = ["\t".join(HEADER)] + ["\t".join(_text(v) for v in row) for row in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _records() -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if isinstance(v, dt.date) else v)
             for k, v in zip(HEADER, row, strict=True)} for row in ROWS]


def _json(folder: Path) -> Path:
    path = folder / "t.json"
    path.write_text(json.dumps(_records()), encoding="utf-8")
    return path


def _jsonl(folder: Path) -> Path:
    path = folder / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    return path


def _parquet(folder: Path) -> Path:
    path = folder / "t.parquet"
    columns = list(zip(*ROWS, strict=True))
    types = [pa.int64(), pa.string(), pa.float64(), pa.bool_(), pa.date32(), pa.string()]
    arrays = {n: pa.array(c, t) for n, c, t in zip(HEADER, columns, types, strict=True)}
    pq.write_table(pa.table(arrays), path)
    return path


def _xlsx(folder: Path) -> Path:
    from openpyxl import Workbook

    path = folder / "t.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(list(row))
    book.save(path)
    return path


def _sqlite(folder: Path) -> Path:
    path = folder / "t.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE loans (id INTEGER, code TEXT, amount REAL, active TEXT, "
                   "opened TEXT, name TEXT)")
        db.executemany("INSERT INTO loans VALUES (?, ?, ?, ?, ?, ?)",
                       [tuple(_text(v) or None if isinstance(v, bool | dt.date) else v
                              for v in row) for row in ROWS])
    db.close()
    return path


def _duckdb(folder: Path) -> Path:
    path = folder / "t.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE loans (id BIGINT, code VARCHAR, amount DOUBLE, active BOOLEAN, "
                   "opened DATE, name VARCHAR)")
        db.executemany("INSERT INTO loans VALUES (?, ?, ?, ?, ?, ?)", [list(r) for r in ROWS])
    return path


WRITERS: dict[str, Callable[[Path], Path]] = {
    "csv": _csv, "tsv": _tsv, "json": _json, "jsonl": _jsonl, "parquet": _parquet,
    "xlsx": _xlsx, "sqlite": _sqlite, "duckdb": _duckdb,
}


def _check_round_trip(con: duckdb.DuckDBPyConnection, loaded: Any) -> None:
    assert {c.name: c.type for c in loaded.columns} == TYPES
    assert [c.name for c in loaded.columns] == HEADER
    assert loaded.rows == len(ROWS)
    assert con.execute(f"SELECT * FROM {loaded.table}").fetchall() == ROWS


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_every_file_format_round_trips_types_and_values(fmt: str, tmp_path: Path) -> None:
    path = WRITERS[fmt](tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    con = duckdb.connect()
    loaded = load_source(SourceSpec(str(path)), con, tmp_path / "stage")
    _check_round_trip(con, loaded)
    assert loaded.format == fmt
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # never modified
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {loaded.table}  # no raw table left behind
    if fmt in ("sqlite", "duckdb"):
        assert loaded.raw_path.parent == tmp_path / "stage"
        assert pq.read_table(loaded.raw_path).num_rows == len(ROWS)
        assert loaded.details["table"] == "loans"
    else:
        assert loaded.raw_path == path


@pytest.mark.postgres
def test_postgres_table_and_query_round_trip(postgres: Any, tmp_path: Path) -> None:
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS loans_rt")
        pg.execute("CREATE TABLE loans_rt (id bigint, code text, amount numeric(8,2), "
                   "active boolean, opened date, name varchar(20))")
        with pg.cursor() as cursor:
            cursor.executemany("INSERT INTO loans_rt VALUES (%s, %s, %s, %s, %s, %s)", ROWS)
    con = duckdb.connect()
    loaded = load_source(SourceSpec(postgres.url, table="loans_rt"), con, tmp_path)
    _check_round_trip(con, loaded)
    assert loaded.format == "postgres" and loaded.details["target"] == loaded.location
    assert pq.read_table(loaded.raw_path).num_rows == 3
    query = load_source(SourceSpec(postgres.url, query="SELECT id, code FROM loans_rt "
                                   "WHERE id > 1 ORDER BY id"), con, tmp_path)
    assert con.execute(f"SELECT * FROM {query.table}").fetchall() == [(2, "00042"),
                                                                      (3, "12345")]


def test_sqlite_and_duckdb_sources_take_a_query(tmp_path: Path) -> None:
    con = duckdb.connect()
    for path in (_sqlite(tmp_path), _duckdb(tmp_path)):
        spec = SourceSpec(str(path), query="SELECT code, amount FROM loans WHERE id < 3;")
        loaded = load_source(spec, con, tmp_path / "stage")
        assert con.execute(f"SELECT * FROM {loaded.table}").fetchall() == [("08001", 1.5),
                                                                          ("00042", None)]
        assert loaded.details["query"] == spec.query


def _load(tmp_path: Path, name: str, data: bytes, **options: Any) -> list[tuple[Any, ...]]:
    path = tmp_path / name
    path.write_bytes(data)
    con = duckdb.connect()
    loaded = load_source(SourceSpec(str(path), **options), con, tmp_path / "stage")
    return [tuple(c.name for c in loaded.columns),
            *con.execute(f"SELECT * FROM {loaded.table}").fetchall()]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16", "utf-8-sig"])
def test_encodings_are_detected(encoding: str, tmp_path: Path) -> None:
    text = "código,ciudad\n007,Málaga\n"
    if encoding == "cp1252":
        text = "código,quote\n007,\u201cok\u201d\n"
    rows = _load(tmp_path, "e.csv", text.encode(encoding))
    assert rows == [tuple(text.splitlines()[0].split(",")), tuple(text.splitlines()[1].split(","))]


def test_a_given_encoding_is_used(tmp_path: Path) -> None:
    data = "name\nJosé\n".encode("latin-1")
    assert _load(tmp_path, "e.csv", data, encoding="latin-1") == [("name",), ("José",)]


@pytest.mark.parametrize(("delimiter", "given"), [(";", None), ("|", None), ("\t", "tab"),
                                                  (";", ";")])
def test_delimiters_are_sniffed_or_given(delimiter: str, given: str | None,
                                         tmp_path: Path) -> None:
    data = delimiter.join(["a", "b", "c"]) + "\n" + delimiter.join(["1", "x y", "2.5"]) + "\n"
    rows = _load(tmp_path, "d.csv", data.encode(), delimiter=given)
    assert rows == [("a", "b", "c"), (1, "x y", 2.5)]


def test_quoted_values_with_newlines_and_nulls(tmp_path: Path) -> None:
    data = b'id,note\r\n1,"two\r\nlines"\r\n2,NA\r\n3,"a, b"\r\n'
    assert _load(tmp_path, "q.csv", data) == [("id", "note"), (1, "two\r\nlines"), (2, None),
                                             (3, "a, b")]


def test_unnamed_header_cells_get_positional_names(tmp_path: Path) -> None:
    assert _load(tmp_path, "i.csv", b",value\n0,x\n1,y\n") == [("column1", "value"), (0, "x"),
                                                                (1, "y")]


def test_sqlite_storage_classes_are_typed_by_inference(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (n, f, code, blob)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                       [(1, 2.0, "007", b"\x00\xff"), (2, 0.5, "010", None)])
    db.close()
    assert _load(tmp_path, "s.sqlite", path.read_bytes()) == [
        ("n", "f", "code", "blob"), (1, 2.0, "007", "00ff"), (2, 0.5, "010", None)]


def test_schema_overrides_beat_inference(tmp_path: Path) -> None:
    rows = _load(tmp_path, "s.csv", b"zip,n,flag\n8001,1,0\n28004,2,1\n",
                 schema={"zip": "text", "n": "float", "flag": "boolean"})
    assert rows == [("zip", "n", "flag"), ("8001", 1.0, False), ("28004", 2.0, True)]


def test_schema_overrides_typed_sources(tmp_path: Path) -> None:
    con = duckdb.connect()
    spec = SourceSpec(str(_parquet(tmp_path)), schema={"id": "text", "amount": "text"})
    loaded = load_source(spec, con, tmp_path)
    types = {c.name: c.type for c in loaded.columns}
    assert types["id"] == "text" and types["amount"] == "text" and types["opened"] == "date"
    assert con.execute(f"SELECT id, amount FROM {loaded.table}").fetchall()[0] == ("1", "1.5")


def test_xlsx_sheet_choice_blank_rows_and_dates(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["ignored"])
    sheet = book.create_sheet("data")
    for row in (["when", "code"], [dt.datetime(2024, 5, 1, 8, 30), "001"], [None, None],
                [dt.datetime(2024, 5, 2), "002"], [None, None]):
        sheet.append(row)
    book.save(tmp_path / "b.xlsx")
    con = duckdb.connect()
    loaded = load_source(SourceSpec(str(tmp_path / "b.xlsx"), sheet="data"), con, tmp_path)
    assert {c.name: c.type for c in loaded.columns} == {"when": "timestamp", "code": "text"}
    assert con.execute(f"SELECT * FROM {loaded.table}").fetchall() == [
        (dt.datetime(2024, 5, 1, 8, 30), "001"), (None, None), (dt.datetime(2024, 5, 2), "002")]
    assert loaded.details == {"sheet": "data"}


@pytest.mark.parametrize(("location", "expected"), [
    ("a.CSV", "csv"), ("a.tab", "tsv"), ("a.pq", "parquet"), ("a.ndjson", "jsonl"),
    ("a.sqlite3", "sqlite"), ("a.ddb", "duckdb"), ("postgresql://u:p@h/db", "postgres"),
    ("postgres://h/db", "postgres"),
])
def test_format_detection(location: str, expected: str) -> None:
    assert detect_format(SourceSpec(location)) == expected


def test_db_extension_is_told_apart_by_magic_bytes(tmp_path: Path) -> None:
    sqlite_file, duck_file = tmp_path / "a.db", tmp_path / "b.db"
    sqlite3.connect(sqlite_file).execute("CREATE TABLE t (x)").connection.close()
    duckdb.connect(str(duck_file)).close()
    assert detect_format(SourceSpec(str(sqlite_file))) == "sqlite"
    assert detect_format(SourceSpec(str(duck_file))) == "duckdb"


def test_source_size_is_bytes_on_disk(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    assert source_size(SourceSpec(str(path))) == path.stat().st_size
    assert source_size(SourceSpec("postgresql://u:p@h/db")) == 0
