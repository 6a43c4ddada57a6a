"""Reading the prediction log out of core: DuckDB over its JSON Lines, in windows.

The log (see :mod:`mlstrata.predlog.format`) is a directory of JSON Lines per model version and
UTC day, or — ``monitor.log: postgresql://...`` — two PostgreSQL tables. A check reads one
model version's lines between ``since`` and ``until``:

- from files: only the day directories that can hold such lines are listed, and DuckDB's
  ``read_json`` reads them with an explicit schema built from the reference (numbers as
  ``DOUBLE``, everything else as text, the positive class's probability as a column), streaming
  Arrow record batches: memory does not grow with the log. A line DuckDB cannot parse — the last
  line of a file a writer is appending right now — is skipped;
- from PostgreSQL: the matching rows are copied, as the same JSON lines, into a temporary
  directory through a server-side cursor (DuckDB's postgres extension needs a download, which
  this offline machine cannot do), and read from there.

Each row carries its window (:mod:`.windows`): ``floor(epoch / seconds)`` for time windows, or
its position in time order divided by the window's rows.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import DataError, MlstrataError
from ..predlog.format import check_format, feedback_dir, model_dir
from .reference import Reference
from .sketch import NumberSketch
from .windows import Window

__all__ = ["BATCH_ROWS", "LogLocation", "LogQuery", "duckdb_connection", "open_log"]

BATCH_ROWS = 65_536
_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LogQuery:
    """Which lines a check reads: a model version's, between two times, cut into windows."""

    model: str
    version: int
    since: datetime | None
    until: datetime | None
    window: Window

    def describe_span(self) -> str:
        """``between <since> and <until>`` in words."""
        start = _show(self.since) if self.since else "the start of the log"
        end = _show(self.until) if self.until else "now"
        return f"between {start} and {end}"


@dataclass(frozen=True)
class LogLocation:
    """Where the lines are on disk (``prediction_files``, ``feedback_files``) after any copy."""

    root: Path
    prediction_files: list[Path]
    feedback_files: list[Path]
    display: str


@contextlib.contextmanager
def open_log(location: str | Path, query: LogQuery) -> Iterator[LogLocation]:
    """The files of ``query``'s lines at ``location`` (a directory or a PostgreSQL URL); a
    PostgreSQL log is copied into a temporary directory, removed on exit."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        with tempfile.TemporaryDirectory(prefix="mlstrata-monitor-") as tmp:
            yield _export_postgres(text, query, Path(tmp))
        return
    root = Path(location)
    if not root.is_dir():
        raise DataError(f"no prediction log at {root}: nothing has been logged there yet (serve "
                        "the model, or set monitor.log in mlstrata.yaml to where the log is)")
    check_format(root)
    yield LogLocation(root, _day_files(model_dir(root, query.model, query.version), query),
                      sorted(feedback_dir(root, query.model).glob("*/*.jsonl")), str(root))


def duckdb_connection(memory_limit: str, temp_directory: Path | None = None) -> Any:
    """An in-memory DuckDB with a memory limit (spilling to ``temp_directory``) that streams
    results without keeping their order (less memory)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if temp_directory is not None:
        con.execute(f"SET temp_directory = {_literal(str(temp_directory))}")
    return con


def predictions_sql(files: Sequence[Path], reference: Reference, query: LogQuery, *,
                    probabilities: bool = False, inputs: bool = True) -> str:
    """A SELECT of the query's prediction lines: ``w`` (window), ``t`` (time), ``request_id``,
    ``record``, ``key``, ``source``, ``latency_ms``, ``warning_count``, ``warning_fields``,
    ``prediction``, ``score`` and (with ``inputs``) one column ``i<k>`` per input in reference
    order; with ``probabilities`` also ``p<k>`` per class."""
    classifier = reference.classes is not None
    schema = {
        "kind": "VARCHAR", "request_id": "VARCHAR", "record": "BIGINT", "time": "VARCHAR",
        "source": "VARCHAR", "key": "VARCHAR", "latency_ms": "DOUBLE",
        "prediction": "DOUBLE" if reference.task == "regression" else "VARCHAR",
        "warnings": "STRUCT(field VARCHAR, rule VARCHAR)[]",
    }
    if inputs:
        schema["inputs"] = _struct({n: _input_type(s) for n, s in reference.inputs.items()})
    if classifier:
        schema["probabilities"] = _struct({c: "DOUBLE" for c in reference.classes or []})
    source = (f"read_json({_file_list(files)}, format = 'newline_delimited', "
              f"columns = {_columns(schema)}, ignore_errors = true, hive_partitioning = false)")
    where = ["kind = 'prediction'", "t IS NOT NULL"]
    if query.since is not None:
        where.append(f"t >= {_timestamp(query.since)}")
    if query.until is not None:
        where.append(f"t < {_timestamp(query.until)}")
    fields = ([f"inputs.{_ident(name)} AS i{k}" for k, name in enumerate(reference.inputs)]
              if inputs else [])
    score = ("prediction" if reference.task == "regression" else
             f"probabilities.{_ident(reference.positive)}" if reference.positive else "NULL")
    extra = ([f"probabilities.{_ident(c)} AS p{k}" for k, c in enumerate(reference.classes or [])]
             if probabilities and classifier else [])
    columns = ", ".join([f"{_window_sql(query.window)} AS w", "t", "request_id", "record", "key",
                         "source", "latency_ms", "coalesce(len(warnings), 0) AS warning_count",
                         "list_transform(warnings, lambda x: x.field) AS warning_fields",
                         "prediction", f"CAST({score} AS DOUBLE) AS score", *fields, *extra])
    return (f"SELECT {columns} FROM (SELECT *, TRY_CAST(time AS TIMESTAMP) AS t FROM {source}) "
            f"WHERE {' AND '.join(where)}")


def feedback_sql(files: Sequence[Path], reference: Reference) -> str:
    """A SELECT of the model's feedback lines: ``request_id``, ``record``, ``key``, ``label``
    (text for a classifier, a number for a regressor) and ``ft`` (the feedback's time)."""
    label = "DOUBLE" if reference.task == "regression" else "VARCHAR"
    schema = {"kind": "VARCHAR", "model": "VARCHAR", "request_id": "VARCHAR",
              "record": "BIGINT", "key": "VARCHAR", "label": label, "time": "VARCHAR"}
    source = (f"read_json({_file_list(files)}, format = 'newline_delimited', "
              f"columns = {_columns(schema)}, ignore_errors = true, hive_partitioning = false)")
    return (f"SELECT request_id, record, key, label, TRY_CAST(time AS TIMESTAMP) AS ft "
            f"FROM {source} WHERE kind = 'feedback' AND model = {_literal(reference.model)} "
            "AND label IS NOT NULL")


def labelled_sql(predictions: str, feedback: str, columns: Sequence[str]) -> str:
    """Predictions joined to their newest feedback: on (request_id, record) — a feedback line
    without a record labels every record of its request — or, for feedback sent by business
    key, on the key. ``columns``: the prediction columns to keep (``label`` is added)."""
    kept = ", ".join([*columns, "label"])
    return f"""
        WITH p AS MATERIALIZED ({predictions}), f AS MATERIALIZED ({feedback}),
        joined AS (
            SELECT p.*, f.label, f.ft FROM p JOIN f ON f.request_id = p.request_id
              WHERE f.record IS NULL OR f.record = p.record
            UNION ALL
            SELECT p.*, f.label, f.ft FROM p JOIN f ON f.key = p.key
              WHERE f.request_id IS NULL)
        SELECT {kept} FROM joined
        QUALIFY row_number() OVER (PARTITION BY request_id, record ORDER BY ft DESC NULLS LAST)
                = 1"""


def _window_sql(window: Window) -> str:
    if window.rows is not None:
        return (f"CAST((row_number() OVER (ORDER BY t, request_id, record) - 1) // {window.rows}"
                " AS BIGINT)")
    return f"CAST(floor(epoch(t) / {window.seconds}) AS BIGINT)"


def _day_files(directory: Path, query: LogQuery) -> list[Path]:
    """The ``.jsonl`` files of the day directories that can hold lines of the query's span."""
    first = (query.since or _FAR_PAST).date()
    last = query.until.date() if query.until is not None else None
    files = []
    for day in sorted(p for p in directory.glob("*") if p.is_dir()):
        try:
            date = datetime.strptime(day.name, "%Y-%m-%d").date()
        except ValueError:
            continue
        if date >= first and (last is None or date <= last):
            files += sorted(day.glob("*.jsonl"))
    return files


def _export_postgres(url: str, query: LogQuery, directory: Path) -> LogLocation:
    """Copy the query's prediction lines and the model's feedback lines out of PostgreSQL."""
    import psycopg

    from ..predlog.postgres import FEEDBACK_TABLE, PREDICTIONS_TABLE

    time = "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    predictions = (
        f"SELECT json_build_object('kind', 'prediction', 'request_id', request_id, 'record', "
        f"record, 'time', {time}, 'source', source, 'key', key, 'inputs', inputs, "
        f"'prediction', prediction, 'probabilities', probabilities, 'latency_ms', latency_ms, "
        f"'warnings', warnings)::text FROM {PREDICTIONS_TABLE} WHERE model = %s AND version = %s "
        "AND time >= %s AND time < %s")
    feedback = (f"SELECT json_build_object('kind', 'feedback', 'model', model, 'request_id', "
                f"request_id, 'record', record, 'key', key, 'label', label, 'time', {time})::text "
                f"FROM {FEEDBACK_TABLE} WHERE model = %s")
    since = query.since or _FAR_PAST
    until = query.until or datetime.now(UTC) + timedelta(days=1)
    try:
        with psycopg.connect(url, connect_timeout=10) as con:
            if not _tables_exist(con, PREDICTIONS_TABLE):
                raise DataError(f"no prediction log in {_display(url)}: table "
                                f"{PREDICTIONS_TABLE} does not exist (nothing has been logged "
                                "there yet)")
            out = directory / "predictions.jsonl"
            _copy_lines(con, predictions, (query.model, query.version, since, until), out)
            feedback_out = directory / "feedback.jsonl"
            if _tables_exist(con, FEEDBACK_TABLE):
                _copy_lines(con, feedback, (query.model,), feedback_out)
    except psycopg.Error as exc:
        raise MlstrataError(f"cannot read the prediction log in {_display(url)} "
                            f"({str(exc).strip().splitlines()[0]}); check monitor.log in "
                            "mlstrata.yaml and that the server is running") from exc
    return LogLocation(directory, [out],
                       [feedback_out] if feedback_out.exists() else [], _display(url))


def _tables_exist(con: Any, table: str) -> bool:
    return bool(con.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0])


def _copy_lines(con: Any, sql: str, params: tuple[Any, ...], out: Path) -> None:
    """Write each row of ``sql`` (one JSON text) as a line of ``out``, streamed in chunks."""
    with out.open("w", encoding="utf-8") as handle, con.transaction(), \
            con.cursor(name="mlstrata_monitor") as cursor:
        cursor.itersize = 20_000
        cursor.execute(sql, params)
        for (line,) in cursor:
            handle.write(line)
            handle.write("\n")


def _display(url: str) -> str:
    """A connection URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _input_type(sketch: object) -> str:
    """Numbers are read as DOUBLE; categories, dates and anything else as text."""
    return "DOUBLE" if isinstance(sketch, NumberSketch) else "VARCHAR"


def _struct(fields: dict[str, str]) -> str:
    if not fields:
        return "STRUCT(_none VARCHAR)"
    return "STRUCT(" + ", ".join(f"{_ident(name)} {kind}" for name, kind in fields.items()) + ")"


def _columns(schema: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_literal(name)}: {_literal(kind)}"
                           for name, kind in schema.items()) + "}"


def _file_list(files: Sequence[Path]) -> str:
    return "[" + ", ".join(_literal(str(f)) for f in files) + "]"


def _ident(name: str | None) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _timestamp(moment: datetime) -> str:
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP {_literal(naive.isoformat(sep=' '))}"


def _show(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
