"""Read a lake — the files of a folder, a glob, or an ``s3://`` prefix, maybe Hive-partitioned —
into one raw table, and back them up as one bundle.

Each file is read by the reader of its format, so a CSV in a lake is read exactly as a lone CSV
(encoding, delimiter, line numbers in messages), and appended in path order with its partition
values as typed columns. Text files side by side in one partition folder with one layout (a CSV
header and delimiter; JSON Lines or arrays) are read by one DuckDB scan, each row keeping its file
for messages — a lake of a thousand small objects costs a few statements, not thousands; a run
DuckDB refuses is read again file by file, so the message is exactly a lone file's.

Schemas are reconciled file by file (run by run): a column that only some files have is filled
with nulls where it is missing, which is safe only when it is nullable wherever it
appears; an integer or float column that widens (INTEGER → BIGINT, FLOAT → DOUBLE) is widened;
any other difference is refused, naming the partition and the file, because a silent cast would
change values. Objects of a store are fetched to staging first (:mod:`._object_store`) and read
from there, local files are hashed before they are read; the bundle (:mod:`._bundle`) checks
every file against that hash as it copies it.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import uuid4

import duckdb

from .. import _atomic
from ..config import ColumnType
from ..errors import SourceError
from ._bundle import write_bundle
from ._extract import Extract, check_unique
from ._lake_files import (
    glob_regex,
    has_glob,
    is_bookkeeping,
    lake_format,
    partition_literal,
    partition_type,
    partitions,
    split_glob,
)
from ._object_store import (
    S3Location,
    StoredObject,
    fetch_object,
    list_objects,
    open_store,
    parse_s3_url,
    store_details,
)
from ._source_text import first_line
from ._spark_source import is_spark, spark_snapshot
from ._text_readers import (
    CsvFile,
    JsonFile,
    csv_scan,
    json_scan,
    load_csv,
    load_json,
    prepare_csv,
    prepare_json,
)
from .engine import parquet_scan, quote_identifier

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

__all__ = ["LakePlan", "is_lake", "plan_lake", "plan_source", "read_lake"]

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_FLOATS = ("FLOAT", "DOUBLE")
_FETCHERS = 8
_ORIGIN = "__mlstrata_file"  # the file of each row when a run of files is read together


@dataclass(frozen=True)
class LakePlan:
    """A lake resolved to its files, before any is read: what to call it, their format, their
    names relative to the lake root (partitions are read from these) and total size."""

    shown: str
    format: str
    names: list[str]
    size: int
    local: list[Path] = field(default_factory=list)
    objects: list[StoredObject] = field(default_factory=list)
    store: tuple[S3FileSystem, S3Location] | None = None
    about: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _File:
    """One file of the lake, as a local path, with its manifest entry and its name in messages."""

    path: Path
    entry: dict[str, Any]
    shown: str


def is_lake(location: str) -> bool:
    """Whether ``location`` is a multi-file source: an ``s3://`` URL, a folder or a glob."""
    scheme = urlsplit(location).scheme.lower()
    if "://" in location:
        return scheme == "s3"
    return not is_spark(location) and (has_glob(location) or Path(location).is_dir())


def plan_source(location: str, forced_format: str | None, staging: Path) -> LakePlan | None:
    """The plan of a lake (:func:`plan_lake`) or of a Spark source (Spark writes its snapshot
    under ``staging`` first); None for any other source."""
    if is_spark(location):
        folder = staging / f"spark-{uuid4().hex[:12]}"
        about = spark_snapshot(location, folder)
        return replace(plan_lake(str(folder), "parquet"), shown=location, about=about)
    return plan_lake(location, forced_format) if is_lake(location) else None


def plan_lake(location: str, forced_format: str | None) -> LakePlan:
    """List the files ``location`` names (nothing is read yet) and decide their format."""
    if location.lower().startswith("s3://"):
        fs, where = open_store(), parse_s3_url(location)
        objects = list_objects(fs, where)
        names = [item.relative for item in objects]
        return LakePlan(where.url, lake_format(where.url, names, forced_format), names,
                        sum(item.size for item in objects), objects=objects, store=(fs, where))
    root, paths = _local_files(location)
    names = [path.relative_to(root).as_posix() for path in paths]
    return LakePlan(location, lake_format(location, names, forced_format), names,
                    sum(path.stat().st_size for path in paths), local=paths)


def read_lake(plan: LakePlan, con: duckdb.DuckDBPyConnection, staging: Path, raw: str, *,
              delimiter: str | None, encoding: str | None,
              overrides: Mapping[str, ColumnType]) -> Extract:
    """Read every file of ``plan`` into table ``raw``; back them up in one bundle."""
    files = _materialize(plan, staging, raw)
    types = _partition_types(plan, overrides)
    runs = _runs(plan.format, files, staging, delimiter, encoding)
    try:
        table = _read_runs(con, raw, runs, types)
    except _RunRefused:  # read each file alone: the one DuckDB refuses is named with its line
        table = _read_runs(con, raw, [[p] for run in runs for p in run], types)
    if not table.created:
        raise SourceError(f"{plan.shown}: all {len(files)} files are empty (0 bytes); "
                          "point at the files that hold the data")
    table.check_required()
    about: dict[str, Any] = {"format": plan.format, **plan.about}
    if plan.store is not None:
        about["bucket"] = plan.store[1].bucket
    bundle = write_bundle(staging / f"{raw}.tar", [(f.path, f.entry, f.shown) for f in files],
                          about)
    text = plan.format != "parquet" or "text" in plan.about  # a Spark snapshot of text
    return Extract(plan.shown, text, table.locate, bundle, database=bool(plan.about),
                   details=_details(plan, len(files), list(types)))


def _details(plan: LakePlan, files: int, partitions: list[str]) -> dict[str, Any]:
    """What the catalog records about a lake read (never a credential)."""
    details: dict[str, Any] = {
        "files": files, "bytes": plan.size, "partitions": partitions,
        "backup": "tar of the files and manifest.json (key, size, sha256"
                  + (", ETag)" if plan.store else ")"),
        **{key: value for key, value in plan.about.items() if key != "text"}}
    if plan.store is not None:
        details["store"] = store_details()
    return details


def _local_files(location: str) -> tuple[Path, list[Path]]:
    base, pattern = split_glob(location)
    root = Path(base or ".")
    if not root.is_dir():
        raise SourceError(f"{base} does not exist or is not a folder; check the path of "
                          f"{location}")
    matcher = glob_regex(pattern) if pattern is not None else None
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if (path.is_file() and not is_bookkeeping(relative)
                and (matcher is None or matcher.fullmatch(relative))):
            found.append(path)
    if not found:
        what = "matches no files" if pattern else "is a directory with no data files"
        raise SourceError(f"{location} {what}; pass a data file, or a folder or glob of csv, "
                          "tsv, parquet, json or jsonl files")
    return root, found


def _materialize(plan: LakePlan, staging: Path, raw: str) -> list[_File]:
    """Each file as a local path with its manifest entry: a store's objects are fetched into
    staging, several at a time (a store answers each request after a round trip), hashed on
    the way; local files are hashed and linked from staging."""
    folder = staging / f"{raw}_files"
    folder.mkdir(parents=True, exist_ok=True)
    if plan.store is None:
        return [_File(_linked(path, folder / f"{index:06d}-{path.name}"),
                      {"name": name, "size": path.stat().st_size,
                       "sha256": _atomic.sha256_file(path)}, str(path))
                for index, (name, path) in enumerate(zip(plan.names, plan.local, strict=True))]
    fs, where = plan.store
    paths = [folder / f"{index:06d}-{Path(item.relative).name}"
             for index, item in enumerate(plan.objects)]
    pool = ThreadPoolExecutor(_FETCHERS, thread_name_prefix="mlstrata-fetch")
    try:
        entries = list(pool.map(lambda job: fetch_object(fs, where, *job),
                                zip(plan.objects, paths, strict=True)))
    finally:
        pool.shutdown(cancel_futures=True)
    return [_File(path, {"name": item.relative, **entry}, f"s3://{where.bucket}/{item.key}")
            for item, path, entry in zip(plan.objects, paths, entries, strict=True)]


def _linked(path: Path, link: Path) -> Path:
    """``link`` pointing at ``path``: the readers see a name outside any ``key=value`` folder,
    so DuckDB adds no partition columns of its own (partitions are typed here, once)."""
    link.symlink_to(path.resolve())
    return link


def _partition_types(plan: LakePlan, overrides: Mapping[str, ColumnType]) -> dict[str, str]:
    """The partition keys every file shares, each with the type its values take (text when a
    ``--schema`` override will type it, so the override sees the folder's own text)."""
    keys = [key for key, _ in partitions(plan.names[0])]
    values: dict[str, list[str]] = {key: [] for key in keys}
    for name in plan.names:
        found = partitions(name)
        if [key for key, _ in found] != keys:
            raise SourceError(
                f"{_shown_file(plan, name)} sits under partitions "
                f"{'/'.join(k for k, _ in found) or '(none)'} but {plan.names[0]} under "
                f"{'/'.join(keys) or '(none)'}; every file of a lake needs the same partition "
                "folders (narrow the glob to one layout)")
        for key, value in found:
            values[key].append(value)
    return {key: "VARCHAR" if key in overrides else partition_type(values[key]) for key in keys}


def _shown_file(plan: LakePlan, name: str) -> str:
    return f"{plan.shown.rstrip('/')}/{name}" if plan.store else str(plan.local[
        plan.names.index(name)])


@dataclass(frozen=True)
class _Prepared:
    """A non-empty file of the lake; for a text file (CSV/TSV, JSON), its decoded copy and
    layout."""

    file: _File
    text: CsvFile | JsonFile | None = None

    @property
    def extract(self) -> Extract:
        """How the file's rows are located (by line or record)."""
        assert self.text is not None
        return self.text.extract


def _runs(fmt: str, files: Sequence[_File], staging: Path, delimiter: str | None,
          encoding: str | None) -> list[list[_Prepared]]:
    """The non-empty files in order, cut into runs that one read can take together: text files
    next to each other in the same partition folder with the same layout (for CSV/TSV: the same
    delimiter and header) — a lake of many small files is read in a few statements instead of
    several per file. A Parquet file is a run of its own."""
    runs: list[list[_Prepared]] = []
    last: tuple[Any, ...] | None = None
    for file in files:
        if file.entry["size"] == 0:
            continue
        prepared = _Prepared(file, _prepare(fmt, file, staging, delimiter, encoding))
        text = prepared.text
        layout = ((text.delimiter, text.names) if isinstance(text, CsvFile)
                  else (text.lines,) if text is not None else None)
        together = None if layout is None else (layout, partitions(file.entry["name"]))
        if together is not None and together == last:
            runs[-1].append(prepared)
        else:
            runs.append([prepared])
        last = together
    return runs


def _prepare(fmt: str, file: _File, staging: Path, delimiter: str | None,
             encoding: str | None) -> CsvFile | JsonFile | None:
    """A text file decoded and its layout found (errors name the file as the user knows it)."""
    try:
        if fmt in ("csv", "tsv"):
            return prepare_csv(file.path, staging, delimiter=delimiter, encoding=encoding,
                               tsv=fmt == "tsv")
        if fmt in ("json", "jsonl"):
            return prepare_json(file.path, staging, encoding=encoding)
    except SourceError as exc:
        raise SourceError(str(exc).replace(str(file.path), file.shown)) from exc
    return None


class _RunRefused(Exception):
    """DuckDB refused a run of files read together (one of them is malformed)."""


def _read_runs(con: duckdb.DuckDBPyConnection, raw: str, runs: Sequence[Sequence[_Prepared]],
               types: Mapping[str, str]) -> _Table:
    """The raw table of every run, in one transaction (one commit for all the files, not one —
    and a WAL sync — per file); nothing is left when a file is refused."""
    table = _Table(con, raw, list(types))
    con.begin()
    try:
        for number, run in enumerate(runs):
            source = f"{raw}_{number}"
            if len(run) > 1:
                _read_together(con, source, run)
                table.append(source, _Read(run[0].extract, set(), False), run, types)
            else:
                table.append(source, _read_file(run[0], con, source), run, types)
    except BaseException:
        con.rollback()
        raise
    con.commit()
    return table


def _read_together(con: duckdb.DuckDBPyConnection, source: str, run: Sequence[_Prepared]) -> None:
    """Read a run of text files into one table ``source``, each row's file in :data:`_ORIGIN`;
    :class:`_RunRefused` when DuckDB refuses one of them."""
    csvs = [p.text for p in run if isinstance(p.text, CsvFile)]
    jsons = [p.text for p in run if isinstance(p.text, JsonFile)]
    try:
        scan = (csv_scan(csvs, filename=_ORIGIN) if csvs
                else json_scan(con, jsons, filename=_ORIGIN))
        con.execute(f"CREATE TABLE {quote_identifier(source)} AS SELECT * FROM {scan}")
    except (duckdb.Error, SourceError) as exc:
        raise _RunRefused(str(exc)) from exc


@dataclass(frozen=True)
class _Read:
    """One file read into a table (or, for Parquet, a view over the file): how it locates rows
    and which of its columns it declares NOT NULL (Parquet ``required`` fields)."""

    extract: Extract
    required: set[str]
    view: bool


def _read_file(prepared: _Prepared, con: duckdb.DuckDBPyConnection, name: str) -> _Read:
    """Read one file as ``name`` with its format's reader (text is read into a table, to be
    typed with the rest; Parquet is viewed in place, so its rows are copied once)."""
    file = prepared.file
    try:
        if isinstance(prepared.text, CsvFile):
            return _Read(load_csv(prepared.text, con, name), set(), False)
        if isinstance(prepared.text, JsonFile):
            return _Read(load_json(prepared.text, con, name), set(), False)
    except SourceError as exc:
        raise SourceError(str(exc).replace(str(file.path), file.shown)) from exc
    return _parquet_view(file, con, name)


def _parquet_view(file: _File, con: duckdb.DuckDBPyConnection, name: str) -> _Read:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file.path)
        check_unique(schema.names, file.shown)
        con.execute(f"CREATE VIEW {quote_identifier(name)} AS SELECT * FROM "
                    f"{parquet_scan(file.path)}")
    except (pa.ArrowException, OSError, duckdb.Error) as exc:
        raise SourceError(_unreadable_parquet(file, exc)) from exc
    return _Read(Extract(file.shown, False, lambda row: f"row {row + 1}", file.path),
                 {f.name for f in schema if not f.nullable}, True)


def _unreadable_parquet(file: _File, exc: Exception) -> str:
    return (f"{file.shown} is not a readable Parquet file, it may be truncated or corrupt "
            f"({first_line(exc)}); copy or export it again")


class _Table:
    """The raw table being assembled: its column types, where each came from, and the rows'
    origins (so a row number becomes a file and line)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, raw: str, keys: Sequence[str]) -> None:
        self.con, self.raw, self.keys = con, raw, list(keys)
        self.types: dict[str, str] = {}
        self.first: dict[str, str] = {}
        self.required: dict[str, str] = {}
        self.absent: dict[str, str] = {}
        self.starts: list[int] = []
        self.origins: list[tuple[str, Extract]] = []
        self.created = False
        self.rows = 0

    def append(self, source: str, read: _Read, run: Sequence[_Prepared],
               types: Mapping[str, str]) -> None:
        """Append the rows of table ``source`` (dropped afterwards) to the raw one: one file's,
        or a run's read together (with each row's file in :data:`_ORIGIN`).

        A problem found in a run (a JSON key that clashes with a partition key — the keys of a
        run's files are united —, a value DuckDB refuses) raises :class:`_RunRefused`: its message
        would name the run's first file, not the one at fault, which reading each file alone
        names. (A run's columns are text, so no type is ever widened or refused for a run.)"""
        quoted, file = quote_identifier(source), run[0].file
        try:
            columns = self._describe(quoted)
            together = columns.pop(_ORIGIN, None) is not None
            try:
                self._insert(quoted, columns, read, run, types, together)
            except (SourceError, duckdb.Error) as exc:
                if together:
                    raise _RunRefused(str(exc)) from exc
                if isinstance(exc, SourceError) or not read.view:
                    raise
                raise SourceError(_unreadable_parquet(file, exc)) from exc  # read only here
        finally:
            self.con.execute(f"DROP {'VIEW' if read.view else 'TABLE'} IF EXISTS {quoted}")

    def _insert(self, source: str, columns: dict[str, str], read: _Read,
                run: Sequence[_Prepared], types: Mapping[str, str], together: bool) -> None:
        """Fit the table to ``columns`` and copy the rows of ``source`` into it."""
        file = run[0].file
        clash = sorted(set(columns) & set(self.keys))
        if clash:
            raise SourceError(f"{file.shown} has a column {clash[0]!r} and sits in a "
                              f"{clash[0]}=... partition folder; rename one of them")
        values = ", ".join(f"{partition_literal(value, types[key])} AS {quote_identifier(key)}"
                           for key, value in partitions(file.entry["name"]))
        everything = f"* EXCLUDE ({quote_identifier(_ORIGIN)})" if together else "*"
        select = f"SELECT {everything}{', ' + values if values else ''} FROM {source}"
        self._reconcile(columns, read.required, file)
        self._origins(source, read, run, together)
        into = (f"INSERT INTO {quote_identifier(self.raw)} BY NAME" if self.created
                else f"CREATE TABLE {quote_identifier(self.raw)} AS")
        added = self.con.execute(f"{into} {select}").fetchall()
        self.created = True
        self.rows += int(added[0][0])

    def _origins(self, source: str, read: _Read, run: Sequence[_Prepared],
                 together: bool) -> None:
        """Record where each file's rows start in the raw table (to name file and line)."""
        if not together:
            self.starts.append(self.rows)
            self.origins.append((run[0].file.shown, read.extract))
            return
        counts = dict(self.con.execute(f"SELECT {quote_identifier(_ORIGIN)}, count(*) FROM "
                                       f"{source} GROUP BY ALL").fetchall())
        start = self.rows
        for prepared in run:
            assert prepared.text is not None
            self.starts.append(start)
            self.origins.append((prepared.file.shown, prepared.extract))
            start += int(counts.get(str(prepared.text.utf8), 0))

    def _describe(self, source: str) -> dict[str, str]:
        return {str(name): str(kind) for name, kind, *_ in
                self.con.execute(f"DESCRIBE {source}").fetchall()}

    def _reconcile(self, columns: Mapping[str, str], required: set[str], file: _File) -> None:
        """Fit one file's columns to the table: add new ones, widen, or refuse."""
        for name in required:
            self.required.setdefault(name, file.shown)
        if not self.created:
            self.types.update(columns)
            self.first.update(dict.fromkeys(columns, file.shown))
            return
        for name in self.types.keys() - columns.keys():
            self.absent.setdefault(name, file.shown)
        for name, kind in columns.items():
            if name not in self.types:
                self.absent.setdefault(name, self.origins[0][0])
                self.con.execute(f"ALTER TABLE {quote_identifier(self.raw)} ADD COLUMN "
                                 f"{quote_identifier(name)} {kind}")
                self.types[name], self.first[name] = kind, file.shown
            elif kind != self.types[name]:
                self._widen(name, kind, file)

    def _widen(self, name: str, kind: str, file: _File) -> None:
        current = self.types[name]
        for family in (_INTEGERS, _FLOATS):
            if current in family and kind in family:
                wider = max(current, kind, key=family.index)
                if wider != current:
                    self.con.execute(f"ALTER TABLE {quote_identifier(self.raw)} ALTER COLUMN "
                                     f"{quote_identifier(name)} SET DATA TYPE {wider}")
                    self.types[name] = wider
                return
        partition = "/".join(f"{k}={v}" for k, v in partitions(file.entry["name"]))
        where = f"partition {partition} ({file.shown})" if partition else file.shown
        raise SourceError(
            f"{where}: column {name!r} is {kind} but {current} in {self.first[name]}; the "
            f"partitions cannot be combined without changing values — rewrite that partition "
            f"with {name!r} as {current}, or leave it out with a narrower glob")

    def check_required(self) -> None:
        """Refuse a NOT NULL column that some files lack (their rows would hold nulls)."""
        for name, declared in self.required.items():
            if name in self.absent:
                raise SourceError(
                    f"{self.absent[name]} lacks column {name!r}, which {declared} declares "
                    "NOT NULL (required); its rows would hold nulls there — add the column to "
                    "that partition or write it as nullable")

    def locate(self, row: int) -> str:
        """A row of the raw table as the place in its file (``line 12 of s3://...``)."""
        index = bisect.bisect_right(self.starts, row) - 1
        shown, extract = self.origins[index]
        return f"{extract.locate(row - self.starts[index])} of {shown}"

