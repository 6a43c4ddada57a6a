"""One monitoring check: a model package's reference against its prediction log.

:func:`run_monitor` reads the reference from the package, streams the log's lines of that
model version (DuckDB, :mod:`.logreader`) into per-window counts (:mod:`.accumulate`), judges
every column of every window (:mod:`.drift`, with one Bonferroni correction over the whole
check) and, when feedback exists, the live performance (:mod:`.decay`). The result is a
:class:`~.report.MonitorReport`; nothing is written here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MonitorConfig
from ..errors import DataError
from ..runtime.manifest import load_manifest
from .accumulate import WindowData, accumulate
from .decay import WindowDecay, window_decay
from .drift import ColumnDrift, compare
from .logreader import (
    BATCH_ROWS,
    LogLocation,
    LogQuery,
    duckdb_connection,
    feedback_sql,
    labelled_sql,
    open_log,
    predictions_sql,
)
from .reference import Reference, load_reference
from .report import MonitorReport, WindowResult
from .windows import Window

__all__ = ["MonitorRequest", "run_monitor"]


@dataclass(frozen=True)
class MonitorRequest:
    """What to check: the package, where its log is, the windows and the time span."""

    package: Path
    log: str | Path
    window: Window
    since: datetime | None = None
    until: datetime | None = None
    memory_limit: str = "1GB"


def run_monitor(request: MonitorRequest, config: MonitorConfig | None = None) -> MonitorReport:
    """Check the package's model version against its log (see the module docstring).

    A span with no predictions is a :class:`~mlstrata.errors.DataError` naming it; a package
    without ``reference.json`` one naming the command that repackages it.
    """
    config = config or MonitorConfig()
    manifest = load_manifest(request.package)
    reference = load_reference(request.package)
    query = LogQuery(*manifest.log_identity, request.since, request.until, request.window)
    with open_log(request.log, query) as location, \
            tempfile.TemporaryDirectory(prefix="mlstrata-duckdb-") as spill:
        con = duckdb_connection(request.memory_limit, Path(spill))
        try:
            windows = _read_windows(con, location, reference, query)
            labelled = _labelled(con, location, reference, query)
        finally:
            con.close()
    if not windows:
        raise DataError(f"no predictions {query.describe_span()} for "
                        f"{query.model}@{query.version} in {location.display}; widen --since/"
                        "--until, or check that the server logs there (monitor.log)")
    alpha = config.p_value / max(_tests(windows, reference, config), 1)
    results = [_result(w, reference, query.window, config, alpha, labelled) for w in windows]
    return MonitorReport(
        query.model, query.version, str(request.package), location.display,
        query.window.describe(), _iso(request.since), _iso(request.until),
        config.model_dump(exclude={"log"}), alpha, reference.training_rows,
        labelled is not None, results)


def _read_windows(con: Any, location: LogLocation, reference: Reference,
                  query: LogQuery) -> list[WindowData]:
    if not location.prediction_files:
        return []
    sql = predictions_sql(location.prediction_files, reference, query)
    reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
    return accumulate(reader, reference)


def _labelled(con: Any, location: LogLocation, reference: Reference,
              query: LogQuery) -> dict[int, Any] | None:
    """Each window's labelled predictions (a DataFrame), or None without feedback."""
    if not location.feedback_files or not location.prediction_files \
            or reference.validation is None:
        return None
    classes = [f"p{k}" for k in range(len(reference.classes or []))]
    sql = labelled_sql(predictions_sql(location.prediction_files, reference, query,
                                       probabilities=True, inputs=False),
                       feedback_sql(location.feedback_files, reference),
                       ["w", "prediction", *classes])
    frame = con.sql(sql).df()
    return {int(w): part for w, part in frame.groupby("w")}


def _tests(windows: list[WindowData], reference: Reference, config: MonitorConfig) -> int:
    """The number of tests of the check: two per column (distribution, missing rate) in every
    window with enough rows."""
    columns = len(reference.inputs) + (reference.predictions.labels is not None) + \
        (reference.predictions.score is not None)
    return 2 * columns * sum(1 for w in windows if w.rows >= config.min_rows)


def _result(data: WindowData, reference: Reference, window: Window, config: MonitorConfig,
            alpha: float, labelled: dict[int, Any] | None) -> WindowResult:
    evaluated = data.rows >= config.min_rows
    level = alpha if evaluated else None
    columns = [compare(name, sketch, data.inputs[name], config, level)
               for name, sketch in reference.inputs.items()]
    predictions: list[ColumnDrift] = []
    ref = reference.predictions
    if ref.labels is not None and data.labels is not None:
        predictions.append(compare("predicted label", ref.labels, data.labels, config, level))
    if ref.score is not None and data.score is not None:
        predictions.append(compare(ref.score_name or "score", ref.score, data.score, config,
                                   level))
    decay: WindowDecay | None = None
    if labelled is not None:
        import pandas as pd

        rows = labelled.get(data.index, pd.DataFrame(columns=["label", "prediction"]))
        decay = window_decay(reference, data.rows, rows, config.min_labels)
    start, end = _span(data, window)
    return WindowResult(data.index, start, end, data.rows, data.requests, data.sources,
                        data.latency_ms, data.warned_rows / data.rows if data.rows else 0.0,
                        data.warnings, evaluated, columns, predictions, decay)


def _span(data: WindowData, window: Window) -> tuple[str, str]:
    """The window's start and end: its time bucket, or the first and last prediction in it."""
    if window.seconds is not None:
        start = datetime.fromtimestamp(data.index * window.seconds, UTC)
        end = datetime.fromtimestamp((data.index + 1) * window.seconds, UTC)
        return _iso(start) or "", _iso(end) or ""
    return _iso64(data.first), _iso64(data.last)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso64(moment: np.datetime64) -> str:
    return str(np.datetime_as_string(moment, unit="s")) + "Z"
