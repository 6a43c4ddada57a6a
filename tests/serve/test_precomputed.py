"""Looking up precomputed predictions: URLs, errors, threads, read-only access, reconnection."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from mlstrata.batch.precompute import store_predictions
from mlstrata.batch.scoring import ScoredBatch
from mlstrata.serve.precomputed import (
    Database,
    PrecomputedError,
    lookup,
    open_precomputed,
    parse_db_url,
)


def _fill(db_url: str, keys: list[str], table: str = "predictions") -> None:
    scored = pa.table({"id": keys, "prediction": ["yes"] * len(keys),
                       "probability_no": [0.25] * len(keys), "probability_yes": [0.75] * len(keys)})
    store_predictions([ScoredBatch(scored, pa.table({}), len(keys))], key="id", db_url=db_url,
                      table=table, model="churn", model_version=4)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    _fill(url, [f"c{i}" for i in range(100)])
    return url


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///data/p.db", Database("sqlite", "data/p.db")),
    ("sqlite:////abs/p.db", Database("sqlite", "/abs/p.db")),
    ("out/p.db", Database("sqlite", "out/p.db")),
    ("postgresql://u@h:5/db", Database("postgresql", "postgresql://u@h:5/db")),
    ("postgres://u@h/db", Database("postgresql", "postgres://u@h/db")),
])
def test_urls_name_sqlite_files_or_postgresql_servers(url: str, expected: Database) -> None:
    assert parse_db_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("", "empty database URL"),
    ("sqlite://", "unsupported database URL 'sqlite://'"),
    ("mysql://u:pw@h/db", r"unsupported database URL 'mysql://u:\*\*\*@h/db'; use sqlite:///"),
])
def test_bad_urls_fail_in_one_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(PrecomputedError, match=message) as error:
        parse_db_url(url)
    assert "pw" not in str(error.value)


def test_lookup_returns_the_row_with_class_probabilities(sqlite_url: str) -> None:
    found = lookup(sqlite_url, "c7")
    assert found is not None
    assert list(found) == ["key", "prediction", "probabilities", "model", "model_version",
                           "run_id", "computed_at", "age_seconds"]
    assert (found["key"], found["prediction"], found["model"], found["model_version"]) == (
        "c7", "yes", "churn", 4)
    assert found["probabilities"] == {"no": 0.25, "yes": 0.75}
    assert lookup(sqlite_url, "c7'; DROP TABLE predictions; --") is None
    assert lookup(sqlite_url, "c8") is not None


def test_unknown_table_and_missing_file_fail_naming_them(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(PrecomputedError, match="table 'scores' not found in sqlite:///.*p.db; "
                                               "fill it with 'mlstrata precompute"):
        open_precomputed(sqlite_url, "scores")
    with pytest.raises(PrecomputedError, match="no SQLite database at .*nothing.db"):
        open_precomputed(str(tmp_path / "nothing.db"))
    assert not (tmp_path / "nothing.db").exists()
    with pytest.raises(PrecomputedError, match="invalid table name 'a-b'"):
        open_precomputed(sqlite_url, "a-b")


def test_a_file_that_is_not_sqlite_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("just some text, not a database" * 50)
    with pytest.raises(PrecomputedError, match="cannot open SQLite database .*notes.db: file is "
                                               "not a database"):
        open_precomputed(str(tmp_path / "notes.db"))


def test_the_store_reads_sqlite_read_only(sqlite_url: str) -> None:
    store = open_precomputed(sqlite_url)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._connection().execute("DELETE FROM predictions")
        assert store.lookup("c1") is not None
    finally:
        store.close()


def test_threads_share_a_store_with_a_connection_each(sqlite_url: str) -> None:
    store = open_precomputed(sqlite_url)
    results: list[Any] = []

    def work(start: int) -> None:
        results.extend(store.lookup(f"c{i}")["key"] for i in range(start, start + 20))

    threads = [threading.Thread(target=work, args=(n * 20,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"c{i}" for i in range(100))
    assert len(store._connections) == 6
    store.close()
    assert store._connections == []


def test_describe_names_the_latest_run(sqlite_url: str) -> None:
    store = open_precomputed(sqlite_url)
    try:
        run = store.describe()
        assert run is not None
        assert (run["model"], run["model_version"], run["row_count"]) == ("churn", 4, 100)
    finally:
        store.close()


def test_postgres_lookup_and_reconnect_after_the_server_drops_us(postgres: Any) -> None:
    _fill(postgres.url, ["p1", "p2"], table="pg_lookup")
    store = open_precomputed(postgres.url, "pg_lookup")
    try:
        found = store.lookup("p1")
        assert found is not None and found["probabilities"] == {"no": 0.25, "yes": 0.75}
        assert found["computed_at"].endswith("+00:00")
        pid = store._connection().info.backend_pid
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(PrecomputedError, match="cannot read table 'pg_lookup' in "
                                                   "postgresql://"):
            store.lookup("p1")
        assert store.lookup("p2") is not None
        assert store.lookup("p3") is None
    finally:
        store.close()


def test_the_lookup_module_stays_lean() -> None:
    code = ("import sys, mlstrata.serve.precomputed as p; "
            "print(sorted(m for m in ('pyarrow', 'pandas', 'duckdb', 'psycopg') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
