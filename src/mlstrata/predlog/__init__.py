"""The prediction log: every prediction a serving pattern answers, written where it can be read.

What it is: a lean writer (standard library, numpy and orjson; psycopg only for the PostgreSQL
sink, imported when used) shared by the REST and gRPC servers and by batch scoring. A request
queues its typed inputs and predictions in memory (:class:`PredictionLog`); one background
thread turns them into one JSON line per record — inputs after the contract's PII policy
(:mod:`.pii`), outputs, latency, warnings, the package id — and writes them to time-partitioned
JSON Lines files (:class:`~.files.FileSink`, format in :mod:`.format`) or to PostgreSQL
(:class:`~.postgres.PostgresSink`). Feedback labels (:mod:`.feedback`) go through the same
writer. :mod:`.reading` reads the files back without DuckDB (``mlstrata trace``).

What it is not: the statistics over the log — drift, decay, reports — live in
:mod:`mlstrata.monitor`, which reads this format with DuckDB. This package must never import
pandas, pyarrow or DuckDB: it runs inside serving processes.
"""

from __future__ import annotations

from .feedback import (
    NUMBER_TEXT,
    FeedbackError,
    match_feedback,
    normalize_label,
    parse_feedback,
)
from .format import FORMAT_FILE, FORMAT_VERSION, LogFormatError, check_format
from .pii import FieldPolicy, read_salt
from .records import FeedbackItem, ModelInfo
from .writer import PredictionLog, Sink, open_log

__all__ = [
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "NUMBER_TEXT",
    "FeedbackError",
    "FeedbackItem",
    "FieldPolicy",
    "LogFormatError",
    "ModelInfo",
    "PredictionLog",
    "Sink",
    "check_format",
    "match_feedback",
    "normalize_label",
    "open_log",
    "parse_feedback",
    "read_salt",
]
