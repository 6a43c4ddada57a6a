"""Prometheus metrics of a serving process: what ``GET /metrics`` answers.

:class:`ServeMetrics` counts what the REST app and the gRPC service do, through
``prometheus-client``, and renders the Prometheus text format (0.0.4):

- ``mlstrata_requests_total{route, status}``: requests answered, by route template
  (``/v1/predict``, ``/v2/models/{name}/infer``, ``other`` for unknown paths; gRPC calls as
  ``/inference.GRPCInferenceService/ModelInfer``) and HTTP status (gRPC: the status code's
  name, ``OK``, ``INVALID_ARGUMENT``...);
- ``mlstrata_request_duration_seconds{route}``: a latency histogram;
- ``mlstrata_request_records{route}``: records per scored request, and
  ``mlstrata_batch_records``: records per onnxruntime call (requests merged by the batcher);
- ``mlstrata_refusals_total{field, rule}``: refused values (the ``problems`` of a 422 or an
  ``INVALID_ARGUMENT``), and ``mlstrata_warnings_total{field, rule}``: values scored with a
  contract warning;
- ``mlstrata_prediction_probability{model, version, class}``: a histogram of the positive class's
  probability (binary classifiers; every class's for more classes),
  ``mlstrata_prediction_value{model, version}``: a histogram of a regressor's values, and
  ``mlstrata_predicted_class_total{model, version, class}``: predictions per class (or cluster);
- ``mlstrata_model_info{model, version, package}``: 1 for the model being served;
- ``mlstrata_prediction_log_written_total`` and ``mlstrata_prediction_log_dropped_total``: the
  prediction log's records written and dropped (queue full), read from the log writer;
- ``mlstrata_shadow_scored_total``, ``mlstrata_shadow_skipped_total`` and
  ``mlstrata_shadow_failed_total``: with ``serve --shadow``, the requests the challenger scored
  off the request path, left out because its queue was full, and failed on (read from the
  log's shadow scorer, like the log's counts).

With several worker processes (``mlstrata serve --workers N``) every process writes its values to
memory-mapped files in the directory ``PROMETHEUS_MULTIPROC_DIR`` names (prometheus-client's
multiprocess mode; the server makes a fresh one per run, see :func:`multiprocess_directory`) and
whichever worker answers ``/metrics`` adds them all up. prometheus-client decides the mode when
it is first imported, so it is imported here only when a :class:`ServeMetrics` is made: the
server sets the variable first.

The hot path is a few dict lookups and additions to plain numbers per request, pushed into
prometheus-client's values before every scrape (and every second with several processes):
see :mod:`mlstrata.serve._tally`. A batch's predictions are counted with numpy (one
``searchsorted`` and ``bincount`` per onnxruntime call, not a Python loop per record).

>>> metrics = ServeMetrics()
>>> metrics.request("/v1/predict", 200, 0.003)
>>> b'mlstrata_requests_total{route="/v1/predict",status="200"} 1.0' in metrics.exposition()
True
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from ..runtime.inputs import FieldProblem
from ..runtime.model import LoadedModel, Predictions
from ..runtime.signature import class_key
from ._tally import CounterSeries, HistogramSeries, Tally

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "LogCounts", "ServeMetrics", "ShadowCounts",
           "multiprocess_directory",
           "problem_rule"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
RECORD_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
PROBABILITY_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))
VALUE_BUCKETS = (-1e6, -1e5, -1e4, -1e3, -100.0, -10.0, -1.0, -0.1, 0.0, 0.1, 1.0, 10.0, 100.0,
                 1e3, 1e4, 1e5, 1e6)
"""A regressor's values may have any scale: a symmetric ladder of decades."""

FLUSH_SECONDS = 1.0
"""With several processes, how often each pushes its counts to the shared files."""

# Substrings of the runtime's problem messages and the rule each names (until problems carry it).
_RULE_WORDS = (("missing; ", "missing"), ("required (null", "not_null"),
               ("below the minimum", "min"), ("above the maximum", "max"),
               ("is not an allowed value", "allowed"), ("does not match the pattern", "pattern"),
               ("the model answers", "finite"), ("expected ", "type"))


class ShadowCounts(Protocol):
    """What the metrics read of a shadow scorer (``serve --shadow``): its running totals."""

    scored: int
    skipped: int
    failed: int


_SHADOW_OUTCOMES = ("scored", "skipped", "failed")


class LogCounts(Protocol):
    """What the metrics read of the prediction-log writer: its running totals (and, on a
    server with a shadow challenger, its ``shadow`` scorer's: :class:`ShadowCounts`)."""

    @property
    def written(self) -> int:
        """Records written to the sink so far."""

    @property
    def dropped(self) -> int:
        """Records dropped so far because the queue was full."""


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A fresh directory for multiprocess metrics, named in ``PROMETHEUS_MULTIPROC_DIR`` while
    the block runs (worker processes inherit it), removed with its files afterwards.

    Fresh per server run because prometheus-client adds up every file it finds there: files
    left by an earlier run would carry its counts into this one.
    """
    directory = tempfile.mkdtemp(prefix="mlstrata-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def problem_rule(problem: FieldProblem) -> str:
    """The rule a problem breaks: its own ``rule`` when it carries one, else read from its
    message (``min``, ``max``, ``allowed``, ``pattern``, ``required``, ``missing``, ``type``,
    ``finite``; ``other``).

    >>> problem_rule(FieldProblem(0, "age", "12 is below the minimum 18"))
    'min'
    """
    rule = getattr(problem, "rule", None)
    if isinstance(rule, str) and rule:
        return rule
    for words, name in _RULE_WORDS:
        if words in problem.message:
            return name
    return "other"


class ServeMetrics:
    """The metrics of one serving process (see the module docstring); thread-safe."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        self.multiprocess = bool(getattr(values.ValueClass, "_multiprocess",
                                         MULTIPROC_ENV in os.environ))
        registry = self._registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("mlstrata_requests", "Requests answered, by route and status "
                                 "(HTTP status, or gRPC status code name).", ["route", "status"],
                                 registry=registry)
        self._latency = Histogram("mlstrata_request_duration_seconds", "Time to answer a "
                                  "request, from its first byte read to its answer sent.",
                                  ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self._request_records = Histogram("mlstrata_request_records", "Records per scored "
                                          "request.", ["route"], buckets=RECORD_BUCKETS,
                                          registry=registry)
        self._batch_records = Histogram("mlstrata_batch_records", "Records per onnxruntime call "
                                        "(requests arriving together are scored in one).",
                                        buckets=RECORD_BUCKETS, registry=registry)
        self._refusals = Counter("mlstrata_refusals", "Values refused (a 422 problem or a gRPC "
                                 "INVALID_ARGUMENT), by field and rule.", ["field", "rule"],
                                 registry=registry)
        self._warnings = Counter("mlstrata_warnings", "Values scored with a contract warning "
                                 "(a rule of severity warn), by field and rule.",
                                 ["field", "rule"], registry=registry)
        self._probability = Histogram("mlstrata_prediction_probability", "Predicted probability "
                                      "of the positive class (binary) or of each class.",
                                      ["model", "version", "class"], buckets=PROBABILITY_BUCKETS,
                                      registry=registry)
        self._value = Histogram("mlstrata_prediction_value", "A regressor's predicted values.",
                                ["model", "version"], buckets=VALUE_BUCKETS, registry=registry)
        self._classes = Counter("mlstrata_predicted_class", "Predictions per predicted class "
                                "(or cluster).", ["model", "version", "class"], registry=registry)
        self._info = Gauge("mlstrata_model_info", "1 for the model this server answers with.",
                           ["model", "version", "package"], multiprocess_mode="max",
                           registry=registry)
        self._log_written = Counter("mlstrata_prediction_log_written", "Prediction records "
                                    "written by the prediction log.", registry=registry)
        self._log_dropped = Counter("mlstrata_prediction_log_dropped", "Prediction records "
                                    "dropped because the log's queue was full (the requests "
                                    "were answered).", registry=registry)
        self._shadow = {outcome: Counter(f"mlstrata_shadow_{outcome}", text, registry=registry)
                        for outcome, text in zip(_SHADOW_OUTCOMES, (
                            "Requests the shadow challenger scored (and logged).",
                            "Requests not shadowed because the shadow's queue was full.",
                            "Requests the shadow challenger failed on."), strict=True)}
        self._shadow_seen = dict.fromkeys(_SHADOW_OUTCOMES, 0)
        self._lock = threading.Lock()
        self._tally = Tally()
        self._by_route: dict[tuple[str, int | str], tuple[CounterSeries, HistogramSeries]] = {}
        self._records_by_route: dict[str, HistogramSeries] = {}
        self._per_call = self._tally.histogram(self._batch_records, RECORD_BUCKETS)
        self._problems: dict[tuple[bool, str, str], Any] = {}
        # Views by model, weakly: a model swapped out by a reload is freed, its view with it.
        self._views: weakref.WeakKeyDictionary[Any, _ModelView] = weakref.WeakKeyDictionary()
        self._last: tuple[Any, _ModelView | None] = (None, None)
        self._served: _ModelView | None = None
        self._log: LogCounts | None = None
        self._log_seen = (0, 0)
        if self.multiprocess:  # another worker may answer the scrape: push counts regularly
            self._tally.flush_every(FLUSH_SECONDS, self._sync_log)

    # -- requests ---------------------------------------------------------------------------

    def request(self, route: str, status: int | str, seconds: float) -> None:
        """One request answered on ``route`` with ``status`` after ``seconds``."""
        children = self._by_route.get((route, status))
        if children is None:
            children = self._by_route[(route, status)] = (
                self._tally.counter(self._requests.labels(route, str(status))),
                self._tally.histogram(self._latency.labels(route), LATENCY_BUCKETS))
        children[0].inc()
        children[1].observe(seconds)

    def answered(self, route: str, rows: int, predictions: Predictions) -> None:
        """A scored request's record count and the contract warnings of its records."""
        child = self._records_by_route.get(route)
        if child is None:
            child = self._records_by_route[route] = self._tally.histogram(
                self._request_records.labels(route), RECORD_BUCKETS)
        child.observe(rows)
        warnings = getattr(predictions, "record_warnings", None)  # None: no record has any
        if warnings:
            self._count_problems(True, (w for found in warnings for w in found))

    def refused(self, problems: Iterable[FieldProblem]) -> None:
        """The refused values of a request (a 422's ``problems``)."""
        self._count_problems(False, problems)

    def _count_problems(self, warning: bool, problems: Iterable[Any]) -> None:
        counter = self._warnings if warning else self._refusals
        for problem in problems:
            field, rule = _field_and_rule(problem)
            child = self._problems.get((warning, field, rule))
            if child is None:
                child = self._problems[(warning, field, rule)] = counter.labels(field, rule)
            child.inc()

    # -- predictions ------------------------------------------------------------------------

    def scored(self, model: LoadedModel, predictions: Predictions) -> None:
        """One onnxruntime call's predictions: its size and their distribution."""
        self._view(model).observe(predictions, self._per_call)

    def serving(self, model: LoadedModel) -> None:
        """Say which model this process answers with (``mlstrata_model_info``)."""
        self._view(model)

    def _view(self, model: LoadedModel) -> _ModelView:
        """The model's view; the model it is becomes the one ``mlstrata_model_info`` shows."""
        last_model, last_view = self._last  # one read: another thread may replace the pair
        if last_model is model and last_view is not None:
            return last_view
        with self._lock:
            view = self._views.get(model)
            if view is None:
                view = self._views[model] = _ModelView(model, self._tally, self._probability,
                                                       self._value, self._classes)
            self._last = (model, view)
            if view is not self._served:
                if self._served is not None:
                    self._info.labels(*self._served.info).set(0)
                self._info.labels(*view.info).set(1)
                self._served = view
        return view

    # -- the prediction log -----------------------------------------------------------------

    def watch_log(self, log: LogCounts) -> None:
        """Report ``log``'s written and dropped records (read at each flush); the REST app and
        the gRPC service of one process may both pass the same log."""
        with self._lock:
            if log is self._log:
                return
            self._log, self._log_seen = log, (0, 0)
        self._sync_log()

    def _sync_log(self) -> None:
        log = self._log
        if log is None:
            return
        shadow: ShadowCounts | None = getattr(log, "shadow", None)
        if shadow is not None:
            self._sync_shadow(shadow)
        if (log.written, log.dropped) == self._log_seen:
            return
        with self._lock:
            written, dropped = log.written, log.dropped
            seen_written, seen_dropped = self._log_seen
            if written > seen_written:
                self._log_written.inc(written - seen_written)
            if dropped > seen_dropped:
                self._log_dropped.inc(dropped - seen_dropped)
            self._log_seen = (max(written, seen_written), max(dropped, seen_dropped))

    def _sync_shadow(self, shadow: ShadowCounts) -> None:
        """Add what the shadow scorer counted since the last flush."""
        with self._lock:
            for outcome, counter in self._shadow.items():
                now = getattr(shadow, outcome)
                if now > self._shadow_seen[outcome]:
                    counter.inc(now - self._shadow_seen[outcome])
                    self._shadow_seen[outcome] = now

    # -- exposition -------------------------------------------------------------------------

    def flush(self) -> None:
        """Push the counts so far into prometheus-client's values (see :mod:`._tally`)."""
        self._tally.flush()
        self._sync_log()

    def exposition(self) -> bytes:
        """The Prometheus text format of every process's metrics (this one's alone when the
        server runs a single process)."""
        from prometheus_client import CollectorRegistry, generate_latest

        self.flush()
        if not self.multiprocess:
            return generate_latest(self._registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # registers itself
        return generate_latest(registry)


class _ModelView:
    """The labelled children one model's predictions go to, made once per loaded model."""

    def __init__(self, model: LoadedModel, tally: Tally, probability: Any, value: Any,
                 classes: Any) -> None:
        name, version = model.name, str(model.version)
        self._tally = tally
        self.info = (name, version, _package_id(model))
        self._classes = classes
        self._labels = (name, version)
        self._class_children: dict[Any, CounterSeries] = {}
        self._value_metric: Any = value
        self._value: HistogramSeries | None = None  # made for a regressor's first predictions
        known = tuple(model.signature.classes or ())
        # A binary classifier's positive class is the last (as sorted); more classes: each one.
        shown = known[-1:] if len(known) == 2 else known
        self._probabilities = [
            (known.index(c), tally.histogram(probability.labels(name, version, class_key(c)),
                                             PROBABILITY_BUCKETS)) for c in shown]

    def observe(self, predictions: Predictions, per_call: HistogramSeries) -> None:
        """One onnxruntime call's predictions: how many, and their distribution."""
        if predictions.values is not None:
            per_call.observe(len(predictions.values))
            if self._value is None:
                self._value = self._tally.histogram(self._value_metric.labels(*self._labels),
                                                    VALUE_BUCKETS)
            self._value.observe_all(predictions.values)
            return
        if predictions.probabilities is not None:
            for column, observer in self._probabilities:
                observer.observe_all(predictions.probabilities[:, column])
        if predictions.labels is not None:
            labels = predictions.labels.tolist()
            per_call.observe(len(labels))
            if len(labels) == 1:
                self._class_child(labels[0]).inc(1)
                return
            for label, count in collections.Counter(labels).items():
                self._class_child(label).inc(count)

    def _class_child(self, label: Any) -> CounterSeries:
        child = self._class_children.get(label)
        if child is None:
            child = self._class_children[label] = self._tally.counter(
                self._classes.labels(*self._labels, class_key(label)))
        return child


def _package_id(model: LoadedModel) -> str:
    """The package's id: the sha256 of its manifest.json (as the prediction log records it)."""
    try:
        return hashlib.sha256((model.directory / "manifest.json").read_bytes()).hexdigest()
    except OSError:
        return "unknown"


def _field_and_rule(problem: Any) -> tuple[str, str]:
    """A refused value's or a warning's field and rule."""
    return str(problem.field), problem_rule(problem)

