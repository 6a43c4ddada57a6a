"""Ingest: dataset version + sealed test set + byte-exact backup, idempotent, PII applied."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from collections import namedtuple
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlstrata.data.datasets import open_dataset, workspace_connection
from mlstrata.data.ingest import IngestOptions, ingest
from mlstrata.data.sources import SourceSpec
from mlstrata.errors import AccessDeniedError, DataError, InsufficientSpaceError
from mlstrata.workspace import Workspace


def _write_csv(path: Path, rows: int = 200) -> Path:
    lines = ["id,zip,email,income,label"]
    for i in range(rows):
        lines.append(f"{i},{i % 50:05d},user{i}@example.com,{1000 + i * 7},{int(i % 4 == 0)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    return _write_csv(tmp_path / "loans.csv")


def _ingest(ws: Workspace, path: Path, **options: object) -> object:
    return ingest(ws, SourceSpec(location=str(path)), IngestOptions(name="loans", **options))  # type: ignore[arg-type]


def test_ingest_creates_dataset_testset_and_exact_backup(workspace: Workspace,
                                                         csv_file: Path) -> None:
    original = csv_file.read_bytes()
    result = _ingest(workspace, csv_file, target="label", key="id")
    assert csv_file.read_bytes() == original, "the user's file must not be modified"
    dataset, testset, raw = result.dataset, result.testset, result.raw  # type: ignore[attr-defined]
    assert dataset.meta["rows"] + testset.meta["rows"] == 200
    assert testset.meta["rows"] == 40
    assert raw.id == hashlib.sha256(original).hexdigest()
    assert (workspace.store / raw.relpath).read_bytes() == original
    for artifact in (raw, testset):
        mode = stat.S_IMODE((workspace.store / artifact.relpath).stat().st_mode)
        assert mode == 0o600, f"{artifact.kind} must be owner-only"
    types = {c["name"]: c["type"] for c in dataset.meta["columns"]}
    assert types == {"id": "integer", "zip": "text", "email": "text", "income": "integer",
                     "label": "integer"}
    assert [role for role, _ in workspace.parents(dataset.id)] == ["source"]


def test_sealed_split_is_stratified_and_disjoint(workspace: Workspace, csv_file: Path) -> None:
    result = _ingest(workspace, csv_file, target="label", key="id")
    con = workspace_connection(workspace)
    train = open_dataset(workspace, "loans").relation(con)
    sealed_artifact = result.testset  # type: ignore[attr-defined]
    test_path = workspace.path_for_read(sealed_artifact, purpose="acceptance-test")
    test_ids = {row[0] for row in con.execute(f"SELECT id FROM '{test_path}'").fetchall()}
    train_ids = {row[0] for row in train.project("id").fetchall()}
    assert not train_ids & test_ids and len(train_ids | test_ids) == 200
    positives = con.execute(f"SELECT sum(label) FROM '{test_path}'").fetchall()[0][0]
    assert positives == 10, "20% of the 50 positives are sealed"


def test_sealed_split_of_a_continuous_target_is_the_fraction_with_both_tails(
        workspace: Workspace, tmp_path: Path) -> None:
    # Stratified per distinct value, a continuous target sealed almost nothing (0 of 1 row each).
    prices = np.random.default_rng(0).lognormal(8.0, 1.5, size=500).round(2)
    path = tmp_path / "houses.csv"
    path.write_text("id,price\n" + "".join(f"{i},{p}\n" for i, p in enumerate(prices)))
    result = ingest(workspace, SourceSpec(location=str(path)),
                    IngestOptions(name="houses", target="price"))
    assert result.testset is not None
    test_path = workspace.path_for_read(result.testset, purpose="acceptance-test")
    sealed = {row[0] for row in workspace_connection(workspace).execute(
        f"SELECT id FROM '{test_path}'").fetchall()}
    assert result.testset.meta["rows"] == len(sealed) == 100
    assert result.dataset.meta["rows"] == 400
    by_price = np.argsort(prices, kind="stable")
    assert sealed & set(by_price[:50].tolist()) and sealed & set(by_price[-50:].tolist())
    assert {len(sealed & set(band.tolist())) for band in by_price.reshape(10, 50)} == {10}


def test_sealed_test_set_refused_to_training_and_reads_logged(workspace: Workspace,
                                                              csv_file: Path) -> None:
    result = _ingest(workspace, csv_file, target="label")
    with pytest.raises(AccessDeniedError, match="sealed test set"):
        open_dataset(workspace, "loans.test")
    open_dataset(workspace, "loans.test", purpose="acceptance-test")
    log = workspace.access_log(result.testset.id)  # type: ignore[attr-defined]
    assert [record.purpose for record in log] == ["acceptance-test"]


def test_reingesting_identical_content_returns_same_version(workspace: Workspace,
                                                            csv_file: Path) -> None:
    first = _ingest(workspace, csv_file, target="label")
    copy = csv_file.with_name("copy.csv")
    shutil.copy(csv_file, copy)
    second = _ingest(workspace, copy, target="label")
    assert second.dataset.id == first.dataset.id  # type: ignore[attr-defined]
    assert second.reused_existing  # type: ignore[attr-defined]
    assert len(workspace.artifacts("dataset")) == 1


def test_pii_is_found_and_hashed_before_writing(workspace: Workspace, csv_file: Path) -> None:
    result = _ingest(workspace, csv_file, target="label", pii={"email": "hash"})
    meta = result.dataset.meta  # type: ignore[attr-defined]
    assert any(f["column"] == "email" and "email" in f["kinds"] for f in meta["pii"])
    con = workspace_connection(workspace)
    path = workspace.store / result.dataset.relpath  # type: ignore[attr-defined]
    emails = [row[0] for row in con.execute(f"SELECT email FROM '{path}'").fetchall()]
    assert all(len(value) == 64 and "@" not in value for value in emails)


def test_unknown_target_is_refused_and_nothing_written(workspace: Workspace,
                                                       csv_file: Path) -> None:
    expected = r"--target column 'lable' does not exist; did you mean label"
    with pytest.raises(DataError, match=expected):
        _ingest(workspace, csv_file, target="lable")
    assert workspace.artifacts() == []
    assert list((workspace.store / "tmp").iterdir()) == []


def test_duplicate_key_is_refused(workspace: Workspace, csv_file: Path) -> None:
    with pytest.raises(DataError, match="--key column 'label' repeats value"):
        _ingest(workspace, csv_file, key="label")
    assert workspace.artifacts() == []


def test_lack_of_space_is_refused_before_writing(workspace: Workspace, csv_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("mlstrata.workspace.shutil.disk_usage", lambda _: usage(1, 1, 1024))
    with pytest.raises(InsufficientSpaceError, match="free some space"):
        _ingest(workspace, csv_file)
    assert workspace.artifacts() == []


def test_cli_ingest_json_and_error_line(cli, workspace: Workspace, csv_file: Path) -> None:  # type: ignore[no-untyped-def]
    ok = cli("ingest", csv_file, "--name", "loans", "--target", "label", "--json",
             "-w", workspace.root)
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["dataset"]["ref"] == "loans@1"
    bad = cli("ingest", csv_file, "--name", "x", "--target", "nope", "-w", workspace.root)
    assert bad.code == 2
    assert len(bad.err.strip().splitlines()) == 1 and "'nope' does not exist" in bad.err
    missing = cli("ingest", csv_file.with_name("absent.csv"), "--name", "x", "-w", workspace.root)
    assert missing.code == 2 and "absent.csv" in missing.err


def test_reingest_after_clean_returns_the_ingested_version(workspace: Workspace,
                                                           csv_file: Path, tmp_path: Path) -> None:
    from mlstrata.data.clean import clean_dataset

    first = _ingest(workspace, csv_file, target="label")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("steps:\n  - derive: {name: double_income, sql: 'income * 2'}\n")
    clean_dataset(workspace, "loans", recipe)
    again = _ingest(workspace, csv_file, target="label")
    assert again.dataset.id == first.dataset.id  # type: ignore[attr-defined]


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_key_value_folders_on_the_paths_add_no_column(tmp_path: Path, suffix: str) -> None:
    """DuckDB reads a ``key=value`` folder on a path as a Hive partition column unless told not
    to: neither the user's file under ``day=1/`` nor a project under ``team=risk/`` may grow
    one, at ingest or when the dataset is read back."""
    ws = Workspace.init(tmp_path / "team=risk" / "project")
    folder = tmp_path / "day=1"
    folder.mkdir()
    source = _write_csv(folder / "loans.csv")
    if suffix != "csv":
        table = pacsv.read_csv(source)
        source = folder / f"loans.{suffix}"
        if suffix == "parquet":
            pq.write_table(table, source)
        else:
            source.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))
    result = _ingest(ws, source, target="label", key="id")
    names = [c["name"] for c in result.dataset.meta["columns"]]  # type: ignore[attr-defined]
    assert names == ["id", "zip", "email", "income", "label"]
    con = workspace_connection(ws)
    assert open_dataset(ws, "loans").relation(con).columns == names
