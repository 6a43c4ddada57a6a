"""Lakes of many small CSV files are read in runs (one DuckDB read per folder of files sharing a
header) with the same rows, order, partition typing and located errors as file by file — local
folders and a real S3-compatible server (moto) holding 1,000 objects."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from mlstrata.data.sources import SourceSpec, load_source

from .._s3 import S3Server
from .test_object_store import s3, s3_env  # noqa: F401  (the moto server fixtures)
from .test_source_errors import _error as source_error


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _expected(parts: int, files: int) -> list[tuple[int, float, int]]:
    return [(part * 1000 + index * 3 + line, index + line / 10, part)
            for part in range(parts) for index in range(files) for line in range(3)]


def _lake(root: Path, parts: int, files: int) -> None:
    for part in range(parts):
        for index in range(files):
            rows = "".join(f"{part * 1000 + index * 3 + line},{index + line / 10}\n"
                           for line in range(3))
            _write(root, f"part={part}/f-{index:03d}.csv", "id,amount\n" + rows)


def test_a_folder_of_small_files_reads_like_file_by_file(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _lake(root, 3, 40)
    _write(root, "part=1/f-020.csv", "id,amount,note\n1060,20.0,x\n1061,20.1,\n1062,20.2,y\n")
    con = duckdb.connect()
    loaded = load_source(SourceSpec(str(root)), con, tmp_path / "stage")
    rows = con.execute(f"SELECT id, amount, part, note FROM {loaded.table}").fetchall()
    assert [row[:3] for row in rows] == _expected(3, 40)  # path order, partition typed
    assert [row[3] for row in rows if row[3] is not None] == ["x", "y"]  # another header: its
    assert loaded.details["files"] == 120  # own run; the new column is null elsewhere


def test_errors_in_a_run_name_the_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _lake(root, 1, 30)
    _write(root, "part=0/f-011.csv", "id,amount\n")  # header only: no rows, still a file
    _write(root, "part=0/f-012.csv", "id,amount\n36,1.0\n37,lots\n")
    assert f"'lots' at line 3 of {root / 'part=0/f-012.csv'}" in source_error(tmp_path, root)
    _write(root, "part=0/f-025.csv", "id,amount\n75,1.0,9\n")  # a ragged row: DuckDB refuses
    assert source_error(tmp_path, root).startswith(  # the run; each file is then read alone
        f"{root / 'part=0/f-025.csv'}: line 2 has 3 fields but the header has 2")


def test_a_thousand_small_objects_on_s3(s3_env: S3Server, tmp_path: Path) -> None:  # noqa: F811
    client = s3_env.client()
    client.create_bucket(Bucket="small")

    def put(number: int) -> None:
        part, index = divmod(number, 500)
        rows = "".join(f"{part * 1000 + index * 3 + line},{index + line / 10}\n"
                       for line in range(3))
        client.put_object(Bucket="small", Key=f"events/part={part}/f-{index:03d}.csv",
                          Body=("id,amount\n" + rows).encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(1_000)))
    con = duckdb.connect()
    started = time.perf_counter()
    loaded = load_source(SourceSpec("s3://small/events/"), con, tmp_path / "stage")
    print(f"1,000 objects read in {time.perf_counter() - started:.1f} s")
    rows = con.execute(f"SELECT id, amount, part FROM {loaded.table}").fetchall()
    assert rows == _expected(2, 500) and loaded.details["files"] == 1_000


def test_json_files_are_read_in_runs_with_their_keys_united(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    for index in range(12):
        extra = f', "tag": "t{index}"' if index == 5 else ""
        _write(root, f"day=1/e-{index:02d}.jsonl",
               f'{{"id": {2 * index}, "kind": "a"{extra}}}\n\n{{"id": {2 * index + 1}}}\n')
    _write(root, "day=2/e-00.json", '[{"id": 24, "kind": "b"}]')  # an array: a run of its own
    con = duckdb.connect()
    loaded = load_source(SourceSpec(str(root), format="json"), con, tmp_path / "stage")
    rows = con.execute(f"SELECT id, kind, tag, day FROM {loaded.table}").fetchall()
    assert [row[0] for row in rows] == list(range(25))
    assert rows[10] == (10, "a", "t5", 1) and rows[11] == (11, None, None, 1)
    assert rows[24] == (24, "b", None, 2)
    _write(root, "day=1/e-07.jsonl", '{"id": 14}\n{"id": "lots"}\n')
    assert f"'lots' at line 2 of {root / 'day=1/e-07.jsonl'}" in source_error(
        tmp_path, root, format="json")
    _write(root, "day=1/e-09.jsonl", '{"id": 18}\n[1, 2]\n')
    assert source_error(tmp_path, root, format="json").startswith(
        f"{root / 'day=1/e-09.jsonl'}: line 2 is not a JSON object")


def test_a_key_clashing_with_a_partition_inside_a_run_names_its_file(tmp_path: Path) -> None:
    """The keys of a run of JSON files are united; a key that clashes with a partition folder,
    brought by a file in the middle of the run, is reported for that file (not the run's first),
    and nothing is left behind."""
    root = tmp_path / "lake"
    for index in range(6):
        extra = ', "day": 5' if index == 3 else ""
        _write(root, f"day=1/e-{index}.jsonl", f'{{"id": {index}{extra}}}\n')
    assert source_error(tmp_path, root, format="json").startswith(
        f"{root / 'day=1/e-3.jsonl'} has a column 'day' and sits in a day=... partition folder")
