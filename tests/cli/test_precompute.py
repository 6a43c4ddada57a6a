"""``mlstrata precompute`` and ``mlstrata lookup`` end to end, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def source(credit_package: Path) -> Path:
    return credit_package.parent.parent / "data" / "credit.csv"


def test_precompute_then_lookup_a_key(cli: Any, credit_package: Path, source: Path,
                                      tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    done = cli("precompute", credit_package, "--input", source, "--key", "application_id",
               "--db", f"sqlite:///{db}", "--table", "credit_scores", "--batch-rows", "500",
               "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["table"] == "credit_scores"
    assert report["rows"] + report["rejects"] == 1500
    assert report["model"] == "credit.model"
    key = source.read_text().splitlines()[1].split(",")[0]
    found = cli("lookup", key, "--db", db, "--table", "credit_scores", "--json")
    assert found.code == 0, found.err
    row = json.loads(found.out)
    assert row["key"] == key
    assert row["model_version"] == 1
    assert set(row["probabilities"]) == {"0", "1"}
    shown = cli("lookup", key, "--db", db, "--table", "credit_scores")
    assert "age_seconds" in shown.out


def test_model_by_name_in_the_project(cli: Any, credit_package: Path, source: Path,
                                      tmp_path: Path) -> None:
    done = cli("precompute", "credit.model", "--input", source, "--key", "application_id",
               "--db", tmp_path / "p.db", cwd=credit_package.parent.parent)
    assert done.code == 0, done.err
    assert "precomputed" in done.out and "rows/s" in done.out


def test_unknown_key_exits_1(cli: Any, tmp_path: Path, credit_package: Path,
                             source: Path) -> None:
    cli("precompute", credit_package, "--input", source, "--key", "application_id", "--db",
        tmp_path / "p.db")
    missing = cli("lookup", "nobody", "--db", tmp_path / "p.db")
    assert missing.code == 1
    assert "key 'nobody' is not in table 'predictions'" in missing.err


@pytest.mark.parametrize(("args", "message"), [
    (["--db", "mysql://h/db"], "unsupported database URL 'mysql://h/db'"),
    (["--key", "customer"], "key column 'customer' not found in"),
    (["--table", "bad name"], "invalid table name 'bad name'"),
    (["--db", "postgresql://u@127.0.0.1:1/db"], "cannot connect to postgresql://u@127.0.0.1:1/db"),
])
def test_user_mistakes_fail_in_one_line_with_exit_2(cli: Any, credit_package: Path,
                                                    source: Path, tmp_path: Path,
                                                    args: list[str], message: str) -> None:
    defaults = {"--key": "application_id", "--db": str(tmp_path / "p.db")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        defaults[flag] = value
    options = [item for pair in defaults.items() for item in pair]
    failed = cli("precompute", credit_package, "--input", source, *options)
    assert failed.code == 2
    assert message in failed.err
    assert len(failed.err.strip().splitlines()) == 1
    tables = _tables(tmp_path / "p.db")
    assert not any("__staging_" in name for name in tables)
    assert "predictions" not in tables


def test_lookup_of_an_unknown_table_exits_2(cli: Any, tmp_path: Path) -> None:
    failed = cli("lookup", "k", "--db", tmp_path / "none.db")
    assert failed.code == 2
    assert "no SQLite database at" in failed.err


def _tables(path: Path) -> list[str]:
    import sqlite3

    if not path.exists():
        return []
    with sqlite3.connect(path) as con:
        names = [row[0] for row in con.execute("SELECT name FROM sqlite_master")]
    con.close()
    return names
