"""Sources read through a SQLAlchemy URL: SQLite through its built-in dialect and the real MariaDB
server through ``mysql+pymysql``; reflected types for a table, inference for a query."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mlstrata.data.sources import SourceSpec, detect_format, load_source
from mlstrata.errors import SourceError

from .._mariadb import PASSWORD, MariaDBServer


def _sqlite(folder: Path) -> str:
    path = folder / "shop.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE orders (id INTEGER, total NUMERIC(8, 2), paid BOOLEAN, day DATE, "
               "note TEXT)")
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                   [(1, "10.50", 1, "2024-01-02", "first"), (2, None, 0, None, None)])
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def _load(url: str, tmp_path: Path, **options: Any) -> tuple[duckdb.DuckDBPyConnection, Any]:
    con = duckdb.connect()
    return con, load_source(SourceSpec(url, **options), con, tmp_path / "stage")


def test_detects_sqlalchemy_urls() -> None:
    assert detect_format(SourceSpec("mysql+pymysql://a@h/db")) == "sqlalchemy"
    assert detect_format(SourceSpec("sqlite:///x.db")) == "sqlalchemy"
    assert detect_format(SourceSpec("mysql://a@h/db")) == "mysql"
    assert detect_format(SourceSpec("mariadb://a@h/db")) == "mysql"


def test_sqlite_table_keeps_reflected_types(tmp_path: Path) -> None:
    con, loaded = _load(_sqlite(tmp_path), tmp_path, table="orders")
    assert [(c.name, c.engine_type) for c in loaded.columns] == [
        ("id", "BIGINT"), ("total", "DOUBLE"), ("paid", "BOOLEAN"), ("day", "DATE"),
        ("note", "VARCHAR")]
    assert con.execute(f"SELECT * FROM {loaded.table}").fetchall() == [
        (1, 10.5, True, dt.date(2024, 1, 2), "first"), (2, None, False, None, None)]
    assert loaded.format == "sqlalchemy"


def test_sqlite_query_is_typed_by_inference(tmp_path: Path) -> None:
    con, loaded = _load(_sqlite(tmp_path), tmp_path, query="SELECT id, day FROM orders")
    assert [(c.name, c.type) for c in loaded.columns] == [("id", "integer"), ("day", "date")]


def test_mariadb_through_sqlalchemy(mariadb: MariaDBServer, tmp_path: Path) -> None:
    mariadb.execute("CREATE TABLE IF NOT EXISTS sa_items (id INT, price DECIMAL(6,2), "
                    "ok BOOL, made DATETIME)",
                    "DELETE FROM sa_items",
                    "INSERT INTO sa_items VALUES (1, 9.99, 1, '2024-05-06 07:08:09'), "
                    "(2, NULL, 0, NULL)")
    url = mariadb.url(scheme="mysql+pymysql")
    con, loaded = _load(url, tmp_path, table="sa_items")
    assert con.execute(f"SELECT * FROM {loaded.table} ORDER BY id").fetchall() == [
        (1, 9.99, True, dt.datetime(2024, 5, 6, 7, 8, 9)), (2, None, False, None)]
    assert loaded.details["decimal_columns"] == {"price": "DECIMAL(6,2)"}
    assert PASSWORD not in loaded.location and loaded.location.startswith("mysql+pymysql://")


@pytest.mark.parametrize(("url", "options", "expected"), [
    ("nosuchdialect+driver://u:pw@h/db", {"table": "t"}, "SQLAlchemy has no dialect"),
    ("SQLITE", {"table": "order"}, "has no table 'order'; did you mean 'orders'?"),
    ("SQLITE", {"query": "SELECT nope FROM orders"}, "reading the query failed"),
])
def test_bad_input(url: str, options: dict[str, str], expected: str, tmp_path: Path) -> None:
    url = _sqlite(tmp_path) if url == "SQLITE" else url
    with pytest.raises(SourceError) as error:
        _load(url, tmp_path, **options)
    assert expected in str(error.value) and "pw" not in str(error.value).replace("pwd", "")
    assert len(str(error.value).splitlines()) == 1


def test_wrong_password_is_not_shown(mariadb: MariaDBServer, tmp_path: Path) -> None:
    url = mariadb.url(scheme="mysql+pymysql", password="Wrong-Secret")
    with pytest.raises(SourceError, match="cannot connect to mysql\\+pymysql://mlstrata@") as error:
        _load(url, tmp_path, table="x")
    assert "Wrong-Secret" not in str(error.value)
    assert "(error 1045: Access denied for user 'mlstrata'" in str(error.value)
