"""Every way a source can be wrong gives one line naming the place and the fix, and leaves no table
behind in the connection."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlstrata.data.sources import SourceSpec, load_source, source_size
from mlstrata.errors import SourceError


def _error(tmp_path: Path, location: str | Path, **options: Any) -> str:
    """Load a source that must fail; return the message after checking it is one clean line."""
    con = duckdb.connect()
    with pytest.raises(SourceError) as caught:
        load_source(SourceSpec(str(location), **options), con, tmp_path / "stage")
    message = str(caught.value)
    assert "\n" not in message
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
    return message


def _file(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_missing_path(tmp_path: Path) -> None:
    message = _error(tmp_path, tmp_path / "nope.csv")
    assert "nope.csv does not exist" in message and "check the path" in message
    with pytest.raises(SourceError, match="does not exist"):
        source_size(SourceSpec(str(tmp_path / "nope.csv")))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    assert "is a directory" in _error(tmp_path, tmp_path / "d.csv")


@pytest.mark.parametrize("name", ["e.csv", "e.parquet", "e.jsonl", "e.xlsx", "e.sqlite"])
def test_empty_file(name: str, tmp_path: Path) -> None:
    assert "is empty (0 bytes)" in _error(tmp_path, _file(tmp_path, name, b""))


def test_header_only_file(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "h.csv", "id,name\n"))
    assert "h.csv has a header but no data rows" in message


def test_blank_first_line(tmp_path: Path) -> None:
    assert "line 1 is empty" in _error(tmp_path, _file(tmp_path, "b.csv", "\n1,2\n"))


@pytest.mark.parametrize(("data", "line", "found"), [
    ("a,b,c\n1,2,3\n4,5\n", 3, 2),
    ("a,b\n1,2\n3,4\n5,6,7\n8,9\n", 4, 3),
])
def test_ragged_csv_row_names_the_line(data: str, line: int, found: int, tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "r.csv", data))
    assert f"r.csv: line {line} has {found} fields but the header has" in message


def test_unterminated_quote(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "q.csv", 'a,b\n1,"open\n2,3\n'))
    assert "q.csv: line 2" in message and "unterminated quote" in message


def test_undecodable_bytes_name_the_line_and_suggest_encoding(tmp_path: Path) -> None:
    data = b"a,b\n1,2\n3,\x00\x81\x00\n"
    message = _error(tmp_path, _file(tmp_path, "u.csv", data))
    assert "u.csv: line 3" in message and "--encoding" in message


def test_wrong_given_encoding_names_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "l.csv", "a\nok\nJosé\n".encode("latin-1"))
    message = _error(tmp_path, path, encoding="utf-8")
    assert "l.csv: line 3 has bytes that are not valid utf-8 (0xe9)" in message


def test_utf16_without_bom_is_not_taken_for_text(tmp_path: Path) -> None:
    path = _file(tmp_path, "w.csv", "a,b\n1,2\n".encode("utf-16-le"))
    assert "--encoding utf-16" in _error(tmp_path, path)


def test_unknown_encoding(tmp_path: Path) -> None:
    path = _file(tmp_path, "k.csv", "a\n1\n")
    assert "unknown encoding 'klingon'" in _error(tmp_path, path, encoding="klingon")


def test_column_switching_from_numbers_to_text(tmp_path: Path) -> None:
    rows = "\n".join(str(i) for i in range(1, 8))
    path = _file(tmp_path, "s.csv", f"id,income\n{rows.replace(chr(10), ',5' + chr(10))},5\n"
                 "8,unknown\n9,7\n")
    message = _error(tmp_path, path)
    assert "s.csv: column 'income'" in message
    assert "'unknown' at line 9" in message and "--schema income=text" in message


def test_switching_in_json_lines_names_the_line(tmp_path: Path) -> None:
    lines = [json.dumps({"x": i}) for i in range(5)] + ["", json.dumps({"x": "oops"})]
    message = _error(tmp_path, _file(tmp_path, "s.jsonl", "\n".join(lines) + "\n"))
    assert "column 'x'" in message and "'oops' at line 7" in message


def test_invalid_json_lines_line(tmp_path: Path) -> None:
    data = '{"a": 1}\n{"a": 2\n{"a": 3}\n'
    message = _error(tmp_path, _file(tmp_path, "j.jsonl", data))
    assert "j.jsonl: line 2 is not a JSON object" in message


def test_json_lines_line_that_is_not_an_object(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "j.jsonl", '{"a": 1}\n[1, 2]\n'))
    assert "line 2 is not a JSON object (found list)" in message


def test_json_that_is_neither_array_nor_lines(tmp_path: Path) -> None:
    assert "neither a JSON array" in _error(tmp_path, _file(tmp_path, "n.json", '"text"'))


def test_json_array_without_objects(tmp_path: Path) -> None:
    assert "holds no JSON objects" in _error(tmp_path, _file(tmp_path, "n.json", "[1, 2]"))


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": list(range(1000))}), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = _error(tmp_path, path)
    assert "t.parquet is not a readable Parquet file" in message and "truncated" in message


def test_duplicate_csv_columns_name_both_positions(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "d.csv", "id,x,id\n1,2,3\n"))
    assert "d.csv: line 1 names column 'id' twice (columns 1 and 3)" in message


def test_duplicate_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), path)
    assert "names column 'a' twice (columns 1 and 2)" in _error(tmp_path, path)


def test_duplicate_xlsx_header(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["a", "b", "a"])
    book.active.append([1, 2, 3])
    book.save(tmp_path / "d.xlsx")
    message = _error(tmp_path, tmp_path / "d.xlsx")
    assert "sheet 'Sheet' of" in message and "'a' twice (columns 1 and 3)" in message


def test_duplicate_columns_from_a_query(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.close()
    message = _error(tmp_path, path, query="SELECT a, a FROM t")
    assert "the query names column 'a' twice" in message


def test_xlsx_value_beyond_the_header(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, 2, "stray"])
    book.save(tmp_path / "x.xlsx")
    assert "row 2 has a value in column 3" in _error(tmp_path, tmp_path / "x.xlsx")


def test_unknown_xlsx_sheet(tmp_path: Path) -> None:
    from openpyxl import Workbook

    Workbook().save(tmp_path / "s.xlsx")
    assert "has no sheet 'nope'; its sheets are: Sheet" in _error(tmp_path, tmp_path / "s.xlsx",
                                                                   sheet="nope")


def test_corrupt_xlsx(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "c.xlsx", b"not a zip at all"))
    assert "c.xlsx is not a readable .xlsx workbook" in message


def test_unsupported_extension_lists_formats(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "data.xls", b"x"))
    assert "unsupported file type '.xls'" in message and "csv, tsv, parquet" in message


def test_unknown_format_option(tmp_path: Path) -> None:
    assert "unknown format 'xml'" in _error(tmp_path, _file(tmp_path, "a.csv", "a\n1\n"),
                                            format="xml")


def test_option_that_does_not_apply(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "a.csv", "a\n1\n"), sheet="x")
    assert "--sheet applies to xlsx sources" in message


def test_bad_schema_override_names_column_line_and_value(tmp_path: Path) -> None:
    path = _file(tmp_path, "o.csv", "id,amount\n1,5\n2,n/a\n3,12abc\n")
    message = _error(tmp_path, path, schema={"amount": "integer"})
    assert "o.csv: column 'amount' cannot be read as integer: '12abc' at line 4" in message


def test_override_of_unknown_column_suggests_a_match(tmp_path: Path) -> None:
    path = _file(tmp_path, "o.csv", "amount\n1\n")
    assert "did you mean 'amount'?" in _error(tmp_path, path, schema={"amout": "float"})


def _sqlite_with_tables(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "m.sqlite"
    with sqlite3.connect(path) as db:
        for name in names:
            db.execute(f"CREATE TABLE {name} (x INTEGER)")
            db.execute(f"INSERT INTO {name} VALUES (1)")
    db.close()
    return path


def test_unknown_sqlite_table(tmp_path: Path) -> None:
    message = _error(tmp_path, _sqlite_with_tables(tmp_path, "loans", "users"), table="loan")
    assert "has no table 'loan'; did you mean 'loans'?" in message


def test_several_tables_need_a_choice(tmp_path: Path) -> None:
    message = _error(tmp_path, _sqlite_with_tables(tmp_path, "loans", "users"))
    assert "holds 2 tables (loans, users); pass --table NAME or --query SQL" in message


def test_table_and_query_are_exclusive(tmp_path: Path) -> None:
    path = _sqlite_with_tables(tmp_path, "loans")
    assert "either a table or a query" in _error(tmp_path, path, table="loans", query="SELECT 1")


def test_failing_sqlite_query(tmp_path: Path) -> None:
    path = _sqlite_with_tables(tmp_path, "loans")
    message = _error(tmp_path, path, query="SELECT nope FROM loans")
    assert "reading the query failed (no such column: nope)" in message


def test_empty_database_table(tmp_path: Path) -> None:
    path = tmp_path / "z.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    assert "table 't' of" in _error(tmp_path, path) and "has no rows" in _error(tmp_path, path)


def test_unknown_duckdb_table(tmp_path: Path) -> None:
    path = tmp_path / "u.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE loans AS SELECT 1 AS x")
    assert "has no table 'nope'" in _error(tmp_path, path, table="nope")


def test_not_a_duckdb_file(tmp_path: Path) -> None:
    message = _error(tmp_path, _file(tmp_path, "n.duckdb", b"garbage" * 1000))
    assert "cannot be opened as a DuckDB database" in message


def test_unreachable_database_url_hides_the_password(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://ann:s3cretpw@127.0.0.1:{port}/sales"
    message = _error(tmp_path, url, table="loans")
    assert f"cannot connect to postgresql://ann@127.0.0.1:{port}/sales" in message
    assert "s3cretpw" not in message


@pytest.mark.postgres
def test_unknown_postgres_table(postgres: Any, tmp_path: Path) -> None:
    message = _error(tmp_path, postgres.url, table="no_such_table")
    assert "has no table 'no_such_table'" in message


@pytest.mark.postgres
def test_failing_postgres_query(postgres: Any, tmp_path: Path) -> None:
    message = _error(tmp_path, postgres.url, query="SELECT * FROM missing_relation")
    assert "reading the query failed" in message and "missing_relation" in message


def test_xlsx_header_with_a_gap(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["a", None, "c"])
    book.active.append([1, 2, 3])
    book.save(tmp_path / "g.xlsx")
    assert "row 1, column 2 of the header is empty" in _error(tmp_path, tmp_path / "g.xlsx")


def test_xlsx_switching_column_names_the_sheet_row(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "loans"
    for row in ([None], ["amount"], [1], [2], [3], ["three"]):  # the header is on row 2
        sheet.append(row)
    book.save(tmp_path / "s.xlsx")
    message = _error(tmp_path, tmp_path / "s.xlsx")
    assert "column 'amount'" in message and "'three' at row 6 of sheet 'loans'" in message
