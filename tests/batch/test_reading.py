"""read_batches: every input format streamed in bounded batches, text kept as written."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlstrata.batch.reading import read_batches
from mlstrata.errors import SourceError

from .._postgres import PostgresServer

ROWS = [("01234", 1, 2.5, "2024-01-31"), ("28004", 2, None, "2024-02-01"),
        ("08001", 3, 7.0, None)]


def _table() -> pa.Table:
    return pa.table({"zip": [r[0] for r in ROWS], "n": [r[1] for r in ROWS],
                     "x": [r[2] for r in ROWS],
                     "day": pa.array([dt.date.fromisoformat(r[3]) if r[3] else None for r in ROWS],
                                     pa.date32())})


def _rows(source: str, **options: object) -> list[dict[str, object]]:
    batches = list(read_batches(source, batch_rows=2, **options))  # type: ignore[arg-type]
    assert [b.num_rows for b in batches] == [2, 1]
    return pa.Table.from_batches(batches).to_pylist()


def test_csv_columns_stay_text_as_written(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("zip,n,x,day\n01234,1,2.5,2024-01-31\n28004,2,,2024-02-01\n08001,3,7,\n")
    rows = _rows(str(path))
    assert rows[0] == {"zip": "01234", "n": "1", "x": "2.5", "day": "2024-01-31"}
    assert rows[1]["x"] is None


def test_tsv_and_json_lines(tmp_path: Path) -> None:
    tsv = tmp_path / "in.tsv"
    tsv.write_text("zip\tn\n01234\t1\n28004\t2\n08001\t3\n")
    assert [r["zip"] for r in _rows(str(tsv))] == ["01234", "28004", "08001"]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"zip": "01234", "n": 1}\n{"zip": "28004", "n": 2.5}\n'
                     '{"zip": null, "n": 3}\n')
    assert _rows(str(jsonl)) == [{"zip": "01234", "n": "1"}, {"zip": "28004", "n": "2.5"},
                                 {"zip": None, "n": "3"}]


def test_a_key_value_folder_on_the_path_is_no_column(tmp_path: Path) -> None:
    """DuckDB would read ``region=north/`` as a Hive partition column — here one named like a
    model input, which it would silently fill."""
    folder = tmp_path / "region=north"
    folder.mkdir()
    (folder / "in.csv").write_text("zip,n\n01234,1\n28004,2\n08001,3\n")
    (folder / "in.jsonl").write_text('{"zip": "01234"}\n{"zip": "28004"}\n{"zip": "08001"}\n')
    assert list(_rows(str(folder / "in.csv"))[0]) == ["zip", "n"]
    assert list(_rows(str(folder / "in.jsonl"))[0]) == ["zip"]


def test_parquet_file_and_folder_keep_types(tmp_path: Path) -> None:
    pq.write_table(_table(), tmp_path / "in.parquet")
    rows = _rows(str(tmp_path / "in.parquet"))
    assert rows[0] == {"zip": "01234", "n": 1, "x": 2.5, "day": dt.date(2024, 1, 31)}
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(_table().slice(0, 2), folder / "part-0.parquet")
    pq.write_table(_table().slice(2), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    batches = list(read_batches(str(folder), batch_rows=2))
    assert pa.Table.from_batches(batches).column("zip").to_pylist() == ["01234", "28004", "08001"]


def test_sqlite_table_or_query(tmp_path: Path) -> None:
    path = tmp_path / "in.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE loans (zip TEXT, n INTEGER, x REAL, day TEXT)")
        db.executemany("INSERT INTO loans VALUES (?, ?, ?, ?)", ROWS)
        db.execute("CREATE TABLE other (a)")
    db.close()
    assert _rows(str(path), table="loans")[1] == {"zip": "28004", "n": "2", "x": None,
                                                  "day": "2024-02-01"}
    assert [r["n"] for r in _rows(str(path), query="SELECT n FROM loans ORDER BY n")] == \
        ["1", "2", "3"]
    with pytest.raises(SourceError, match=r"holds 2 tables \(loans, other\); pass --table"):
        read_batches(str(path))
    with pytest.raises(SourceError, match="has no table 'loan'; did you mean 'loans'"):
        read_batches(str(path), table="loan")


def test_duckdb_file_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "in.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("t", _table())
        con.execute("CREATE TABLE loans AS SELECT * FROM t")
    rows = _rows(str(path))
    assert rows[0] == {"zip": "01234", "n": 1, "x": 2.5, "day": dt.date(2024, 1, 31)}


@pytest.mark.postgres
def test_postgres_server_side_cursor(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url) as pg:
        pg.execute("DROP TABLE IF EXISTS batch_in")
        pg.execute("CREATE TABLE batch_in (zip TEXT, n INTEGER, x NUMERIC, day DATE)")
        pg.cursor().executemany("INSERT INTO batch_in VALUES (%s, %s, %s, %s)", ROWS)
    rows = _rows(postgres.url, table="batch_in")
    assert rows[0] == {"zip": "01234", "n": 1, "x": 2.5, "day": dt.date(2024, 1, 31)}
    assert [r["n"] for r in _rows(postgres.url, query="SELECT n FROM batch_in ORDER BY n")] == \
        [1, 2, 3]


def test_batches_are_bounded_and_lazy(tmp_path: Path) -> None:
    pq.write_table(pa.table({"n": list(range(10_000))}), tmp_path / "big.parquet",
                   row_group_size=1000)
    batches = read_batches(str(tmp_path / "big.parquet"), batch_rows=300)
    first = next(batches)
    assert first.num_rows == 300
    assert max(b.num_rows for b in batches) <= 300


@pytest.mark.parametrize(("name", "content", "options", "message"), [
    ("missing.csv", None, {}, "missing.csv does not exist; check the path"),
    ("empty.csv", "", {}, "empty.csv is empty (0 bytes)"),
    ("data.xyz", "a\n1\n", {}, "unsupported file type '.xyz'"),
    ("book.xlsx", "x", {}, "Excel workbooks are not read in batch; export the sheet"),
    ("in.csv", "a\n1\n", {"table": "t"}, "--table/--query apply to database sources"),
    ("bad.parquet", "not parquet", {}, "is not a readable Parquet file"),
])
def test_bad_inputs_fail_at_the_call_in_one_line(tmp_path: Path, name: str,
                                                 content: str | None, options: dict[str, str],
                                                 message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError) as caught:
        read_batches(str(path), **options)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_ragged_line_fails_mid_stream_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n" + "1,2\n" * 5000 + "3,4,5\n")
    with pytest.raises(SourceError, match="ragged.csv") as caught:
        list(read_batches(str(path), batch_rows=100))
    assert "\n" not in str(caught.value)


def test_unreachable_postgres_names_the_server_without_password() -> None:
    with pytest.raises(SourceError) as caught:
        read_batches("postgresql://ann:s3cret@127.0.0.1:1/db", table="t")
    assert "cannot connect to postgresql://ann@127.0.0.1:1/db" in str(caught.value)
    assert "s3cret" not in str(caught.value)
