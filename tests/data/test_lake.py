"""Partitioned lakes on disk: a folder or glob of files read as one table, Hive partitions restored
and typed, schemas reconciled when safe and refused, naming the partition, when not."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlstrata.data.ingest import IngestOptions, ingest
from mlstrata.data.sources import SourceSpec, load_source, source_size
from mlstrata.workspace import Workspace

from .test_source_errors import _error as source_error


def _parquet(root: Path, name: str, table: pa.Table | dict[str, Any]) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table if isinstance(table, pa.Table) else pa.table(table), path)
    return path


def _text(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _load(location: Path | str, tmp_path: Path, **options: Any) -> tuple[Any, Any]:
    con = duckdb.connect()
    return load_source(SourceSpec(str(location), **options), con, tmp_path / "stage"), con


@pytest.fixture
def sales(tmp_path: Path) -> Path:
    """year/month/region partitions, a column added in 2024, an int32 id widened to int64,
    a null partition and writer bookkeeping that is not data."""
    root = tmp_path / "sales"
    old = pa.table({"id": pa.array([1, 2], pa.int32()), "amount": [1.5, 2.5]})
    new = pa.table({"id": pa.array([3, 4], pa.int64()), "amount": [3.5, None],
                    "channel": ["web", None]})
    _parquet(root, "year=2023/month=12/region=eu/part-0.parquet", old)
    _parquet(root, "year=2024/month=01/region=eu/part-0.parquet", new)
    _parquet(root, "year=2024/month=01/region=__HIVE_DEFAULT_PARTITION__/part-0.parquet", new)
    _text(root, "_SUCCESS", "")
    _text(root, "year=2024/month=01/region=eu/.part-0.parquet.crc", "crc")
    return root


def test_partitions_restored_typed_and_schemas_reconciled(sales: Path, tmp_path: Path) -> None:
    loaded, con = _load(sales, tmp_path)
    assert [(c.name, c.engine_type) for c in loaded.columns] == [
        ("id", "BIGINT"), ("amount", "DOUBLE"), ("year", "BIGINT"), ("month", "BIGINT"),
        ("region", "VARCHAR"), ("channel", "VARCHAR")]
    assert con.execute(f"SELECT * FROM {loaded.table}").fetchall() == [
        (1, 1.5, 2023, 12, "eu", None), (2, 2.5, 2023, 12, "eu", None),
        (3, 3.5, 2024, 1, None, "web"), (4, None, 2024, 1, None, None),
        (3, 3.5, 2024, 1, "eu", "web"), (4, None, 2024, 1, "eu", None)]
    assert loaded.details["partitions"] == ["year", "month", "region"]
    assert loaded.details["files"] == 3 and loaded.location == str(sales)
    assert source_size(SourceSpec(str(sales))) == loaded.details["bytes"]


def test_date_partitions_and_a_schema_override_on_a_partition(tmp_path: Path) -> None:
    root = tmp_path / "events"
    for day, zone in (("2024-01-30", "08001"), ("2024-01-31", "28004")):
        _text(root, f"day={day}/zip={zone}/events.csv", "n,ok\n1,true\n")
    loaded, _ = _load(root, tmp_path, schema={"zip": "text"})
    assert [(c.name, c.type) for c in loaded.columns] == [
        ("n", "integer"), ("ok", "boolean"), ("day", "date"), ("zip", "text")]
    loaded, con = _load(root, tmp_path)
    assert con.execute(f"SELECT zip FROM {loaded.table}").fetchall() == [(8001,), (28004,)]


def test_glob_selects_files(sales: Path, tmp_path: Path) -> None:
    loaded, _ = _load(f"{sales}/year=2024/*/region=eu/*.parquet", tmp_path)
    assert loaded.rows == 2 and loaded.details["partitions"] == ["month", "region"]


def test_incompatible_partition_is_refused_by_name(sales: Path, tmp_path: Path) -> None:
    _parquet(sales, "year=2024/month=02/region=eu/part-0.parquet",
             {"id": ["x5"], "amount": [1.0], "channel": ["web"]})
    message = source_error(tmp_path, sales)
    assert message.startswith("partition year=2024/month=02/region=eu (")
    assert "column 'id' is VARCHAR but BIGINT" in message


def test_new_required_column_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _parquet(root, "p=1/a.parquet", {"x": [1]})
    schema = pa.schema([pa.field("x", pa.int64()), pa.field("y", pa.int64(), nullable=False)])
    _parquet(root, "p=2/a.parquet", pa.table({"x": [2], "y": [3]}, schema=schema))
    message = source_error(tmp_path, root)
    assert "p=1/a.parquet lacks column 'y'" in message and "NOT NULL" in message


def test_mixed_partition_layouts_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _text(root, "year=2024/month=01/a.csv", "x\n1\n")
    _text(root, "year=2024/b.csv", "x\n2\n")
    message = source_error(tmp_path, root)
    assert message.startswith(f"{root / 'year=2024/month=01/a.csv'} sits under partitions "
                              "year/month but year=2024/b.csv under year;")


def test_partition_folder_clashing_with_a_column(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _text(root, "x=1/a.csv", "x\n1\n")
    assert "has a column 'x' and sits in a x=... partition folder" in source_error(tmp_path, root)


def test_text_lake_errors_name_the_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _text(root, "a.csv", "n\n1\n2\n")
    _text(root, "b.csv", "n\n3\nlots\n")
    assert f"'lots' at line 3 of {root / 'b.csv'}" in source_error(tmp_path, root)
    _text(root, "c.csv", "n\n4,5\n")
    assert source_error(tmp_path, root).startswith(f"{root / 'c.csv'}: line 2 has 2 fields")


def test_unusable_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "is a directory with no data files" in source_error(tmp_path, tmp_path / "empty")
    assert "matches no files" in source_error(tmp_path, f"{tmp_path}/empty/*.csv")
    assert "does not exist" in source_error(tmp_path, f"{tmp_path}/nowhere/*.csv")
    mixed = tmp_path / "mixed"
    _text(mixed, "a.csv", "x\n1\n")
    _text(mixed, "b.jsonl", '{"x": 1}\n')
    assert "holds files of 2 kinds: csv (a.csv), jsonl (b.jsonl)" in source_error(tmp_path, mixed)
    assert "not xlsx" in source_error(tmp_path, mixed, format="xlsx")
    loaded, _ = _load(mixed, tmp_path / "forced", format="csv")  # --format: every file is CSV
    assert loaded.details["files"] == 2


def test_ingest_backs_up_every_file_byte_exact(sales: Path, workspace: Workspace) -> None:
    options = IngestOptions(name="sales", test_fraction=0.0)
    result = ingest(workspace, SourceSpec(str(sales)), options)
    assert result.raw.meta["files"] == 3
    backup = workspace.path_for_read(result.raw, "audit")
    with tarfile.open(backup) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for entry in manifest["files"]:
            member = tar.extractfile(f"files/{entry['name']}")
            assert member is not None and member.read() == (sales / entry["name"]).read_bytes()
    assert result.dataset.meta["raw_sha256"] == result.raw.id
    again = ingest(workspace, SourceSpec(str(sales)), options)
    assert again.reused_existing and again.dataset.id == result.dataset.id


def test_corrupt_and_empty_files(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _parquet(root, "p=1/a.parquet", {"x": [1]})
    _text(root, "p=2/b.parquet", "")  # an empty partition file: no rows, still backed up
    loaded, _ = _load(root, tmp_path)
    assert loaded.rows == 1 and loaded.details["files"] == 2
    _text(root, "p=3/c.parquet", "not parquet at all")
    message = source_error(tmp_path, root)
    assert message.startswith(f"{root / 'p=3/c.parquet'} is not a readable Parquet file")
    (root / "p=1/a.parquet").write_bytes(b"")
    (root / "p=3/c.parquet").write_bytes(b"")
    assert "all 3 files are empty (0 bytes)" in source_error(tmp_path, root)


def test_cli_ingest_of_a_lake_seals_a_test_set_and_applies_the_pii_policy(
        tmp_path: Path, workspace: Workspace, cli: Any) -> None:
    root = tmp_path / "loans"
    for year in (2023, 2024):
        _parquet(root, f"year={year}/part-0.parquet", {
            "email": [f"user{i}.{year}@example.com" for i in range(50)],
            "amount": [float(i) for i in range(50)], "paid": [i % 2 == 0 for i in range(50)]})
    result = cli("ingest", f"{root}/year=*/*.parquet", "--name", "loans", "--target", "paid",
                 "--json", cwd=workspace.root)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["dataset"]["meta"]["rows"] + report["testset"]["meta"]["rows"] == 100
    dataset = workspace.resolve("loans")
    assert dataset.meta["source"] == f"{root}/year=*/*.parquet"
    assert {f["column"]: f["action"] for f in dataset.meta["pii"]} == {"email": "mask"}
    emails = duckdb.sql(f"SELECT email FROM '{workspace.path_for_read(dataset)}' LIMIT 1")
    assert "@example.com" not in str(emails.fetchall()[0][0])
