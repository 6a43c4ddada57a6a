"""Ingest from an S3-compatible object store: a real server (moto's standalone server, its own
process, credentials checked) on 127.0.0.1, read through pyarrow's S3 client."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlstrata.data.sources import SourceSpec, load_source, source_size
from mlstrata.workspace import Workspace

from .._s3 import S3Server, start_s3
from .test_source_errors import _error as source_error

_AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server with a bucket ``lake`` holding a small partitioned lake."""
    with tempfile.TemporaryDirectory(prefix="mlstrata-s3-") as folder:
        server = start_s3(Path(folder) / "moto.log")
        try:
            client = server.client()
            client.create_bucket(Bucket="lake")
            for year, month, extra in ((2023, "12", False), (2024, "01", False),
                                       (2024, "02", True)):
                table = {"id": [f"{year}{month}-{i}" for i in range(3)],
                         "amount": [1.5, 2.0, None], "paid": [True, False, True]}
                if extra:
                    table["channel"] = ["web", None, "shop"]
                _put_parquet(client, f"sales/year={year}/month={month}/part-0.parquet",
                             pa.table(table))
            client.put_object(Bucket="lake", Key="sales/_SUCCESS", Body=b"")
            yield server
        finally:
            server.stop()


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The environment of a client of ``s3`` (and nothing else AWS-related)."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3


def _put_parquet(client: Any, key: str, table: pa.Table, bucket: str = "lake") -> None:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    client.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())


def _load(location: str, tmp_path: Path, **options: Any) -> tuple[Any, duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    return load_source(SourceSpec(location, **options), con, tmp_path / "stage"), con


def test_partitioned_parquet_lake_on_s3(s3_env: S3Server, tmp_path: Path) -> None:
    loaded, con = _load("s3://lake/sales/", tmp_path)
    assert [(c.name, c.type) for c in loaded.columns] == [
        ("id", "text"), ("amount", "float"), ("paid", "boolean"), ("year", "integer"),
        ("month", "integer"), ("channel", "text")]
    assert loaded.rows == 9 and loaded.format == "parquet"
    rows = con.execute(f"SELECT year, month, channel FROM {loaded.table}").fetchall()
    assert rows[0] == (2023, 12, None) and rows[-1] == (2024, 2, "shop")
    assert loaded.details["files"] == 3 and loaded.details["partitions"] == ["year", "month"]
    assert loaded.details["store"] == {"endpoint": s3_env.endpoint, "region": "us-east-1"}


def test_backup_holds_the_objects_bytes_keys_and_etags(s3_env: S3Server, tmp_path: Path) -> None:
    loaded, _ = _load("s3://lake/sales/year=2024/*/*.parquet", tmp_path)
    client = s3_env.client()
    with tarfile.open(loaded.raw_path) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert [f["key"] for f in manifest["files"]] == [
            "sales/year=2024/month=01/part-0.parquet", "sales/year=2024/month=02/part-0.parquet"]
        for entry in manifest["files"]:
            stored = client.get_object(Bucket="lake", Key=entry["key"])
            assert entry["etag"] == stored["ETag"].strip('"')
            member = tar.extractfile(f"files/{entry['name']}")
            assert member is not None and member.read() == stored["Body"].read()
    assert manifest["bucket"] == "lake"


def test_ingest_from_s3_catalogs_no_secret_and_reuses(s3_env: S3Server,
                                                      workspace: Workspace, cli: Any) -> None:
    args = ("ingest", "s3://lake/sales/", "--name", "sales", "--target", "paid", "--json")
    first = cli(*args, cwd=workspace.root)
    assert first.code == 0, first.err
    result = json.loads(first.out)
    again = json.loads(cli(*args, cwd=workspace.root).out)
    assert again["reused_existing"] is True
    assert again["dataset"]["id"] == result["dataset"]["id"]
    catalog = (workspace.store / "catalog.sqlite").read_bytes()
    assert s3_env.secret_key.encode() not in catalog
    assert s3_env.access_key.encode() not in catalog
    with sqlite3.connect(workspace.store / "catalog.sqlite") as db:
        (meta,) = db.execute("SELECT meta FROM artifacts WHERE kind = 'dataset'").fetchone()
    assert json.loads(meta)["source"] == "s3://lake/sales/"


@pytest.mark.slow
def test_listing_pages_past_a_thousand_keys(s3_env: S3Server, tmp_path: Path) -> None:
    client = s3_env.client()
    client.create_bucket(Bucket="many")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda index: client.put_object(
            Bucket="many", Key=f"events/e-{index:05d}.csv",
            Body=f"n,label\n{index},x\n".encode()), range(1_050)))
    page = client.list_objects_v2(Bucket="many", Prefix="events/")
    assert page["IsTruncated"] and page["KeyCount"] == 1_000  # the server pages at 1,000
    assert source_size(SourceSpec("s3://many/events/")) == sum(
        len(f"n,label\n{i},x\n") for i in range(1_050))
    # the glob is matched against the whole listing: its keys are all on the second page
    loaded, con = _load("s3://many/events/e-0104?.csv", tmp_path)
    assert loaded.rows == 10 and loaded.details["files"] == 10
    assert con.execute(f"SELECT min(n), max(n) FROM {loaded.table}").fetchall() == [(1_040,
                                                                                      1_049)]


def test_glob_picks_one_kind_of_file(s3_env: S3Server, tmp_path: Path) -> None:
    client = s3_env.client()
    client.put_object(Bucket="lake", Key="mixed/a.csv", Body=b"x\n1\n")
    client.put_object(Bucket="lake", Key="mixed/deep/b.csv", Body=b"x\n2\n")
    client.put_object(Bucket="lake", Key="mixed/notes.txt", Body=b"hello")
    loaded, con = _load("s3://lake/mixed/**/*.csv", tmp_path)
    assert con.execute(f"SELECT x FROM {loaded.table}").fetchall() == [(1,), (2,)]
    assert "files of 2 kinds" in source_error(tmp_path, "s3://lake/mixed/")


def test_bad_value_is_located_in_its_object(s3_env: S3Server, tmp_path: Path) -> None:
    client = s3_env.client()
    client.put_object(Bucket="lake", Key="bad/a.csv", Body=b"amount\n1\n2\n")
    client.put_object(Bucket="lake", Key="bad/b.csv", Body=b"amount\n3\nlots\n4\n")
    message = source_error(tmp_path, "s3://lake/bad/")
    assert "'lots' at line 3 of s3://lake/bad/b.csv" in message


def test_unreachable_endpoint(s3_env: S3Server, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    message = source_error(tmp_path, "s3://lake/sales/")
    assert message.startswith("cannot reach the object store at http://127.0.0.1:9")
    assert "AWS_ENDPOINT_URL" in message


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_wrong_credentials_never_shows_the_secret(variable: str, s3_env: S3Server,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "AKIAWRONGWRONGWRONG0" if variable == "AWS_ACCESS_KEY_ID" else "not-the-s3cret"
    monkeypatch.setenv(variable, wrong)
    message = source_error(tmp_path, "s3://lake/sales/")
    assert "refused the credentials" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert s3_env.secret_key not in message and "not-the-s3cret" not in message


def test_credentials_without_permission(s3_env: S3Server, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_env.stranger[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.stranger[1])
    message = source_error(tmp_path, "s3://lake/sales/")
    assert "access denied" in message and "s3:ListBucket and s3:GetObject" in message
    assert s3_env.stranger[1] not in message


def test_missing_bucket(s3_env: S3Server, tmp_path: Path) -> None:
    message = source_error(tmp_path, "s3://no-such-bucket/sales/")
    assert "bucket 'no-such-bucket' does not exist" in message


def test_empty_prefix_suggests_the_near_one(s3_env: S3Server, tmp_path: Path) -> None:
    assert "did you mean s3://lake/sales?" in source_error(tmp_path, "s3://lake/sale")
    assert "matches no objects" in source_error(tmp_path, "s3://lake/nothing-here/")


def test_failed_s3_ingest_writes_nothing(s3_env: S3Server, workspace: Workspace, cli: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-s3cret")
    result = cli("ingest", "s3://lake/sales/", "--name", "sales", cwd=workspace.root)
    assert result.code == 2 and "refused the credentials" in result.err
    assert "not-the-s3cret" not in result.err + result.out
    assert workspace.artifacts() == []
    assert not list((workspace.store / "objects").rglob("*.*"))


def test_credentials_from_a_profile(s3_env: S3Server, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[lake-reader]\naws_access_key_id = {s3_env.access_key}\n"
                           f"aws_secret_access_key = {s3_env.secret_key}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "lake-reader")
    loaded, _ = _load("s3://lake/sales/year=2023/", tmp_path)
    assert loaded.rows == 3 and loaded.details["store"]["profile"] == "lake-reader"
