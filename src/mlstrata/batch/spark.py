"""Batch prediction on Apache Spark: the same scoring, one model per partition.

:func:`predict_spark` reads a Parquet input with PySpark and runs :func:`.scoring.score_batches`
— the very function the local engine runs — over each partition's Arrow batches with
``mapInArrow``. The model package is shipped to the executors with ``SparkContext.addFile`` and
loaded there once per partition (onnxruntime limited to one thread: Spark already runs one task
per core). With a prediction log, each partition opens its own log at the same place (a
directory every node sees, or the PostgreSQL URL) and logs its scored rows under the request id
``<run id>-p<partition>``; a partition Spark re-runs after a lost executor is logged again
(at least once). Scored rows are written as Parquet into a temporary folder beside the
destination and renamed onto it when the job succeeds; rejected rows are collected to the
rejects CSV. On a cluster (``master`` such as ``spark://host:7077``) the input and output paths
must be visible to every node (a shared file system).

PySpark is imported only here, only when the Spark engine is asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import DataError, SourceError
from ..predlog import PredictionLog, open_log
from ..runtime.model import LoadedModel, load
from ..workspace import Workspace
from .predlogging import logged_batches
from .scoring import REJECT_REASON, WARNINGS, OnInvalid, output_schema, score_batches
from .writing import Destination, TableWriter

if TYPE_CHECKING:
    from .predict import PredictReport

__all__ = ["DEFAULT_MASTER", "predict_spark", "spark_session"]

DEFAULT_MASTER = "local[*]"
_INPUT_ROW = "_mlstrata_input_row"
_SHOWN_REJECTS = 3


def spark_session(master: str | None = None, batch_rows: int = 100_000) -> Any:
    """A Spark session for scoring: no web UI, few shuffle partitions, bound to 127.0.0.1 in
    local mode, Arrow batches of ``batch_rows`` rows, workers on this Python."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    master = master or DEFAULT_MASTER
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName("mlstrata-predict")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows)))
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1")
    return builder.getOrCreate()


def predict_spark(model: str | Path | LoadedModel, source: str, destination: Destination, *,
                  keys: Sequence[str] = (), on_invalid: OnInvalid = "reject",
                  rejects: Destination, batch_rows: int = 100_000, master: str | None = None,
                  workspace: Workspace | None = None,
                  progress: Callable[[int], None] | None = None,
                  strict: bool = False, log: PredictionLog | None = None) -> PredictReport:
    """Score the Parquet ``source`` on Spark into the Parquet ``destination`` (a folder of
    parts); see the module docstring. Invalid rows are rejected on the executors; with
    ``on_invalid="fail"`` the run then fails naming the first of them and writes nothing."""
    from .predict import PredictReport, load_model

    _require_parquet(source, destination)
    loaded = load_model(model, workspace, threads=1, strict=strict)
    started, run_id = time.perf_counter(), uuid.uuid4().hex
    with _quiet_pyspark(), _session(master, batch_rows) as spark:
        frame = spark.read.parquet(str(Path(source).resolve()))
        _require_columns(frame.columns, [*keys, *loaded.signature.input_names])
        spark.sparkContext.addFile(str(loaded.directory), recursive=True)
        logging = (log.sink.target, log.salt) if log is not None else None
        out = _scored_frame(frame, loaded, keys, run_id, logging).persist()
        try:
            rows_in = out.count()
            rejected = out.filter(out[REJECT_REASON].isNotNull())
            if on_invalid == "fail":
                _fail_on(rejected, keys)
            with _swapped_in(Path(destination.location)) as tmp:
                scored = out.filter(out[REJECT_REASON].isNull()).drop(REJECT_REASON, _INPUT_ROW)
                scored.write.parquet(str(tmp))
                rows_rejected = _write_rejects(rejected, frame.columns, rejects)
                rows_warned = scored.filter(scored[WARNINGS] != "").count()
        finally:
            out.unpersist()
    if progress is not None:
        progress(rows_in)
    return PredictReport(
        model=loaded.name, model_version=loaded.version, run_id=run_id, input=source,
        output=str(destination), rows_in=rows_in, rows_scored=rows_in - rows_rejected,
        rows_rejected=rows_rejected, seconds=time.perf_counter() - started, engine="spark",
        rejects=rejects.location if rows_rejected else None, rows_warned=rows_warned)


def _scored_frame(frame: Any, model: LoadedModel, keys: Sequence[str], run_id: str,
                  logging: tuple[str, str | None] | None) -> Any:
    """``frame`` scored by ``mapInArrow``: the scored columns, then for a rejected row its input
    as JSON text and the reason (both null for a scored row). ``logging``: the prediction log's
    place and salt, when each partition logs what it scored."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    input_schema = to_arrow_schema(frame.schema)
    key_fields = [input_schema.field(name) for name in keys]
    schema = output_schema(model, key_fields)
    combined = schema.append(pa.field(_INPUT_ROW, pa.string())).append(
        pa.field(REJECT_REASON, pa.string()))
    package, strict = model.directory.name, model.strict
    names = list(keys)

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import SparkFiles, TaskContext

        loaded = load(SparkFiles.get(package), threads=1, strict=strict)
        scored = score_batches(loaded, batches, keys=names, run_id=run_id)
        task = TaskContext.get()
        partition = task.partitionId() if task is not None else 0
        with (open_log(logging[0], salt=logging[1]) if logging is not None
              else contextlib.nullcontext()) as log:
            for result in logged_batches(scored, log, loaded, run_id=f"{run_id}-p{partition}",
                                         source="batch", key=names[0] if names else None):
                yield from _combined(result.scored, result.rejects, combined)

    return frame.mapInArrow(score_partition, from_arrow_schema(combined))


def _combined(scored: pa.Table, rejects: pa.Table, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Scored and rejected rows in one schema (the rejected rows' scores are null)."""
    if scored.num_rows:
        extra = [pa.nulls(scored.num_rows, pa.string())] * 2
        yield pa.Table.from_arrays([*scored.columns, *extra], schema=schema).combine_chunks(
            ).to_batches()[0]
    if rejects.num_rows:
        import json

        rows = rejects.drop_columns([REJECT_REASON]).to_pylist()
        arrays = [rejects.column(f.name) if f.name in rejects.column_names
                  else pa.nulls(rejects.num_rows, f.type) for f in schema]
        arrays[-2] = pa.array([json.dumps(r, default=str) for r in rows], pa.string())
        yield pa.Table.from_arrays(arrays, schema=schema).combine_chunks().to_batches()[0]


def _fail_on(rejected: Any, keys: Sequence[str]) -> None:
    """Raise naming the first invalid rows (by their keys, else their values) and the count."""
    first = rejected.limit(_SHOWN_REJECTS).collect()
    if not first:
        return
    total = rejected.count()
    shown = "; ".join(f"{_which(row, keys)}: {row[REJECT_REASON]}" for row in first)
    more = f" (and {total - len(first)} more)" if total > len(first) else ""
    raise DataError(f"{total} input rows are invalid: {shown}{more}; fix them or pass "
                    "--on-invalid reject")


def _which(row: Any, keys: Sequence[str]) -> str:
    if keys:
        return "row " + ", ".join(f"{key}={row[key]!r}" for key in keys)
    return f"row {row[_INPUT_ROW][:100]}"


def _write_rejects(rejected: Any, columns: Sequence[str], rejects: Destination) -> int:
    """Collect the rejected rows to the rejects CSV (atomically); their count."""
    import json

    count = 0
    with contextlib.ExitStack() as stack:
        writer = TableWriter(rejects, stack)
        for row in rejected.select(_INPUT_ROW, REJECT_REASON).toLocalIterator():
            values = json.loads(row[_INPUT_ROW])
            writer.write(pa.Table.from_pylist(
                [{**{c: _text(values.get(c)) for c in columns},
                  REJECT_REASON: row[REJECT_REASON]}],
                schema=pa.schema([*(pa.field(c, pa.string()) for c in columns),
                                  pa.field(REJECT_REASON, pa.string())])))
            count += 1
    return count


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@contextlib.contextmanager
def _swapped_in(target: Path) -> Iterator[Path]:
    """A temporary folder path beside ``target``, renamed onto it when the block succeeds (a
    previous output is replaced, and removed only then); removed when the block fails."""
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    try:
        yield tmp
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def _session(master: str | None, batch_rows: int) -> Iterator[Any]:
    """:func:`spark_session`, stopped at the end unless it was already running (a notebook's)."""
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    spark = spark_session(master, batch_rows)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        if existing is None:
            spark.stop()


@contextlib.contextmanager
def _quiet_pyspark() -> Iterator[None]:
    """Silence PySpark's warning that it does not fully support pandas 3 (scoring exchanges
    Arrow batches, no pandas)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        yield


def _require_parquet(source: str, destination: Destination) -> None:
    path = Path(source)
    if not path.exists():
        raise SourceError(f"{source} does not exist; check the path (relative paths start at "
                          f"{Path.cwd()})")
    if not (path.is_dir() or path.suffix.lower() in (".parquet", ".pq")):
        raise SourceError(f"{source}: the Spark engine reads Parquet; convert the input or use "
                          "--engine local")
    if destination.kind != "parquet":
        raise SourceError(f"{destination}: the Spark engine writes Parquet; name the output "
                          "PATH.parquet or use --engine local")


def _require_columns(columns: Sequence[str], needed: Sequence[str]) -> None:
    missing = [name for name in dict.fromkeys(needed) if name not in columns]
    if missing:
        raise DataError(f"the input has no column {', '.join(repr(m) for m in missing)} that the "
                        f"model needs; its columns are: {', '.join(columns)}")
