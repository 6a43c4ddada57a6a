"""Read log lines back without DuckDB: one request's predictions and feedback, for ``trace``.

The statistics over whole logs read them with DuckDB (:mod:`mlstrata.monitor`); finding the
few lines of one request id needs no more than a byte search of each file (a file that does
not hold the id's JSON text is not parsed at all), or one indexed query in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .files import log_files
from .format import check_format
from .postgres import FEEDBACK_TABLE, PREDICTIONS_TABLE

__all__ = ["find_request", "logged_models", "read_lines"]


def read_lines(root: Path, *, model: str | None = None, feedback: bool = False,
               containing: bytes | None = None) -> Iterator[dict[str, Any]]:
    """The lines of a log directory (newest files first), only from files holding
    ``containing`` and only lines holding it, when given."""
    check_format(root)
    for path in log_files(root, model, feedback=feedback):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if containing is not None and containing not in data:
            continue
        for line in data.split(b"\n"):
            if not line or (containing is not None and containing not in line):
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the last line of a file still being written


def find_request(target: str | Path, request_id: str
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The prediction lines (by record) and the feedback lines of ``request_id``."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return _from_postgres(text, request_id)
    needle = b'"request_id":' + orjson.dumps(request_id)
    root = Path(target)
    if not root.is_dir():
        return [], []
    predictions = sorted(read_lines(root, containing=needle), key=lambda r: r["record"])
    feedback = list(read_lines(root, feedback=True, containing=needle))
    return predictions, sorted(feedback, key=lambda r: r["time"])


def _from_postgres(url: str, request_id: str
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import psycopg
    from psycopg.rows import dict_row

    try:
        with psycopg.connect(url, connect_timeout=10, row_factory=dict_row) as con:
            predictions = con.execute(f"SELECT * FROM {PREDICTIONS_TABLE} WHERE request_id = "
                                      "%s ORDER BY record", (request_id,)).fetchall()
            feedback = con.execute(f"SELECT * FROM {FEEDBACK_TABLE} WHERE request_id = %s "
                                   "ORDER BY time", (request_id,)).fetchall()
    except psycopg.errors.UndefinedTable:
        return [], []
    return [_plain(row, "prediction") for row in predictions], \
        [_plain(row, "feedback") for row in feedback]


def _plain(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """A database row as the file line it stands for."""
    stamp = row["time"]
    if isinstance(stamp, datetime):
        stamp = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {**row, "kind": kind, "time": stamp}


def logged_models(target: str | Path) -> list[str]:
    """The names of the models a log holds predictions of."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            with psycopg.connect(text, connect_timeout=10) as con:
                return [row[0] for row in con.execute(
                    f"SELECT DISTINCT model FROM {PREDICTIONS_TABLE} ORDER BY model")]
        except psycopg.errors.UndefinedTable:
            return []
    root = Path(target)
    if not root.is_dir():
        return []
    check_format(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("v*")))
