"""The PostgreSQL sink: one table of predictions and one of feedback shared by every replica.

Selected by ``monitor.log: postgresql://...`` in ``mlstrata.yaml``. The tables are created when
missing (``mlstrata_predictions``, ``mlstrata_feedback``; the columns are the fields of the
log lines, ``inputs``/``prediction``/``probabilities``/``warnings``/``label`` as ``jsonb``) with
indexes on the request id, the key and (model, version, time). The writer thread loads each
batch of lines with one ``COPY`` in one transaction. psycopg is imported here only, when this
sink is used: a server logging to files never loads it.

A lost connection fails that batch (the writer counts its lines as dropped and says so) and is
opened again for the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from ..errors import MlstrataError

__all__ = ["FEEDBACK_TABLE", "PREDICTIONS_TABLE", "PostgresSink"]

PREDICTIONS_TABLE = "mlstrata_predictions"
FEEDBACK_TABLE = "mlstrata_feedback"

_PREDICTION_COLUMNS = ("format", "request_id", "record", "time", "model", "version", "package",
                       "source", "key", "inputs", "prediction", "probabilities", "latency_ms",
                       "warnings")
_FEEDBACK_COLUMNS = ("format", "time", "model", "request_id", "record", "key", "label")
_JSON = frozenset({"inputs", "prediction", "probabilities", "warnings", "label"})
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {PREDICTIONS_TABLE} (
    format integer NOT NULL, request_id text NOT NULL, record integer NOT NULL,
    time timestamptz NOT NULL, model text NOT NULL, version integer NOT NULL,
    package text NOT NULL, source text NOT NULL, key text, inputs jsonb NOT NULL,
    prediction jsonb, probabilities jsonb, latency_ms double precision,
    warnings jsonb NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS {PREDICTIONS_TABLE}_request ON {PREDICTIONS_TABLE} (request_id);
CREATE INDEX IF NOT EXISTS {PREDICTIONS_TABLE}_key ON {PREDICTIONS_TABLE} (key);
CREATE INDEX IF NOT EXISTS {PREDICTIONS_TABLE}_time ON {PREDICTIONS_TABLE} (model, version, time);
CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (
    format integer NOT NULL, time timestamptz NOT NULL, model text NOT NULL, request_id text,
    record integer, key text, label jsonb);
CREATE INDEX IF NOT EXISTS {FEEDBACK_TABLE}_request ON {FEEDBACK_TABLE} (request_id);
CREATE INDEX IF NOT EXISTS {FEEDBACK_TABLE}_key ON {FEEDBACK_TABLE} (key);
"""


class PostgresSink:
    """Writes log lines into PostgreSQL at ``url`` (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = self.target = url
        self._lock = threading.Lock()
        self._con: Any = None
        with self._lock:
            self._connection()

    def write(self, rows: Sequence[dict[str, Any]],
              pause: Callable[[], None] | None = None) -> None:
        """Insert ``rows`` (prediction and feedback lines) in one transaction (``pause`` is
        not needed: the copy waits on the socket, which hands the interpreter lock over)."""
        predictions = [r for r in rows if r["kind"] == "prediction"]
        feedback = [r for r in rows if r["kind"] != "prediction"]
        with self._lock:
            con = self._connection()
            try:
                with con.transaction(), con.cursor() as cursor:
                    _copy(cursor, PREDICTIONS_TABLE, _PREDICTION_COLUMNS, predictions)
                    _copy(cursor, FEEDBACK_TABLE, _FEEDBACK_COLUMNS, feedback)
            except Exception:
                self._reset()
                raise

    def find(self, model: str, request_ids: Iterable[str],
             keys: Iterable[str]) -> tuple[dict[str, int], set[str]]:
        """Which of ``request_ids`` (with their record counts) and ``keys`` are logged for
        ``model``."""
        ids, wanted = list(request_ids), list(keys)
        with self._lock:
            con = self._connection()
            try:
                counts = dict(con.execute(
                    f"SELECT request_id, count(*) FROM {PREDICTIONS_TABLE} WHERE model = %s "
                    "AND request_id = ANY(%s) GROUP BY request_id", (model, ids)).fetchall()) \
                    if ids else {}
                found = {row[0] for row in con.execute(
                    f"SELECT DISTINCT key FROM {PREDICTIONS_TABLE} WHERE model = %s "
                    "AND key = ANY(%s)", (model, wanted)).fetchall()} if wanted else set()
                con.rollback()
            except Exception:
                self._reset()
                raise
        return {str(k): int(v) for k, v in counts.items()}, found

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._reset()

    def _connection(self) -> Any:
        if self._con is None:
            import psycopg

            try:
                con = psycopg.connect(self.url, connect_timeout=10)
            except psycopg.Error as exc:
                raise MlstrataError(f"cannot connect to the prediction log {_display(self.url)}"
                                    f" ({str(exc).strip().splitlines()[0]}); check monitor.log "
                                    "in mlstrata.yaml and that the server is running") from exc
            try:
                with con.transaction():
                    con.execute(_SCHEMA)
            except psycopg.errors.UniqueViolation:  # another replica created them just now
                pass
            self._con = con
        return self._con

    def _reset(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None


def _copy(cursor: Any, table: str, columns: tuple[str, ...],
          rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_json(row[c]) if c in _JSON else row[c] for c in columns])


def _json(value: Any) -> str | None:
    """A JSON column's text (SQL NULL for null)."""
    return None if value is None else orjson.dumps(value).decode()


def _display(url: str) -> str:
    """The URL without its password."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}@{host}" if at else url
