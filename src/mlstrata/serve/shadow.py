"""A shadow challenger: ``serve NAME@champion --shadow NAME@challenger``.

The champion answers every request, exactly as without a shadow. The server's prediction log is
a :class:`ShadowLog`: after it queued the champion's lines for a request it hands the same
request — its JSON records when there are some, else the typed columns the champion scored — to
a :class:`ShadowScorer`. The scorer's own thread scores it with the challenger and logs those
predictions in the prediction log's usual format under the challenger's name and version, with
the same request id and the source ``shadow``. Nothing of this runs on the request path: handing
over is one ``put_nowait`` on a bounded queue (when it is full the request is not shadowed and
is counted), and a challenger that fails — a record its contract refuses, inputs it does not
have — is counted and logged once per kind of failure, never answered.

Because the two models' lines share request ids (and feedback, which goes to the model's name),
``mlstrata retrain NAME --shadow-report`` pairs them on live traffic: how often they agree, how
far apart their scores are, and with feedback each one's metric. The challenger follows its
alias like the champion does: the scorer reloads it every ``reload_interval`` seconds, between
two requests, on its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..predlog import PredictionLog, Sink
from .holder import ModelHolder

__all__ = ["SHADOW_SOURCE", "ShadowLog", "ShadowScorer"]

SHADOW_SOURCE = "shadow"
_log = logging.getLogger("mlstrata.serve")


@dataclass(frozen=True, slots=True)
class _Request:
    request_id: str
    columns: Mapping[str, np.ndarray[Any, Any]]
    records: Sequence[Any] | None


class ShadowScorer:
    """Scores requests with the challenger on a thread of its own (see the module docstring).

    ``scored`` requests were scored and logged, ``skipped`` found the queue full, ``failed``
    raised in the challenger.
    """

    def __init__(self, holder: ModelHolder, *, capacity: int = 10_000,
                 reload_interval: float = 0.0) -> None:
        self.holder = holder
        self.capacity = capacity
        self.reload_interval = reload_interval
        self.scored = 0
        self.skipped = 0
        self.failed = 0
        self._counting = threading.Lock()
        self._queue: queue.Queue[_Request | None] = queue.Queue(capacity)
        self._log: ShadowLog | None = None
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="mlstrata-shadow", daemon=True)

    def start(self, log: ShadowLog) -> None:
        """Start scoring, logging into ``log``."""
        self._log = log
        self._thread.start()

    def submit(self, request_id: str, columns: Mapping[str, np.ndarray[Any, Any]],
               records: Sequence[Any] | None) -> None:
        """Queue one answered request for the challenger; never waits."""
        try:
            self._queue.put_nowait(_Request(request_id, columns, records))
        except queue.Full:
            with self._counting:  # request threads submit concurrently
                self.skipped += 1

    def close(self, timeout: float = 30.0) -> bool:
        """Score what is queued, then stop; False when it had stopped already."""
        if not self._thread.is_alive():
            return False
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        return True

    def _run(self) -> None:
        refreshed = time.monotonic()
        while True:
            wait = self.reload_interval or None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = _Request("", {}, None)
            if item is None:
                return
            if self.reload_interval and time.monotonic() - refreshed >= self.reload_interval:
                self._refresh()
                refreshed = time.monotonic()
            if item.request_id:
                self._score(item)

    def _refresh(self) -> None:
        try:
            if self.holder.refresh():
                model = self.holder.current
                _log.info("shadow now scores %s version %s", model.name, model.version)
        except Exception as exc:  # noqa: BLE001 — a bad challenger package never stops serving
            self._once(f"could not load the new shadow package: {type(exc).__name__}: {exc}")

    def _score(self, item: _Request) -> None:
        model = self.holder.current
        started = time.perf_counter()
        columns: Mapping[str, np.ndarray[Any, Any]]
        try:
            if item.records is not None:
                checked = model.check_records(item.records)
                columns = checked.columns
                predictions = model.score(columns).with_warnings(checked.warnings)
            else:
                columns = item.columns
                predictions = model.score(dict(columns))
        except Exception as exc:  # noqa: BLE001 — the shadow's failures are counted, not served
            self.failed += 1
            self._once(f"the shadow {model.name} version {model.version} failed on a request: "
                       f"{type(exc).__name__}: {exc}")
            return
        if self._log is None:  # not started: nowhere to log
            return
        logged = self._log.log_shadow(model, request_id=item.request_id, columns=columns,
                                      predictions=predictions,
                                      latency_ms=(time.perf_counter() - started) * 1000)
        if logged:  # else the log's queue was full: its own dropped count says so
            self.scored += 1

    def _once(self, message: str) -> None:
        kind = message.split(":")[0]
        if kind not in self._seen:
            self._seen.add(kind)
            _log.warning("%s (logged once; counted in the shadow's failures)", message)


class ShadowLog(PredictionLog):
    """A server's prediction log that also hands every logged request to a shadow scorer."""

    def __init__(self, sink: Sink, scorer: ShadowScorer, **options: Any) -> None:
        super().__init__(sink, **options)
        self.shadow = scorer
        scorer.start(self)

    def log_predictions(self, model: Any, *, request_id: str, source: str,
                        columns: Mapping[str, np.ndarray[Any, Any]], predictions: Any,
                        latency_ms: float, keys: Sequence[Any] | None = None,
                        records: Sequence[Any] | None = None, first_record: int = 0,
                        positions: Sequence[int] | None = None, when: float | None = None,
                        block: bool = False, remember: bool = True) -> bool:
        """Queue the champion's lines (see :meth:`PredictionLog.log_predictions`), then the
        request for the shadow."""
        accepted = super().log_predictions(
            model, request_id=request_id, source=source, columns=columns,
            predictions=predictions, latency_ms=latency_ms, keys=keys, records=records,
            first_record=first_record, positions=positions, when=when, block=block,
            remember=remember)
        self.shadow.submit(request_id, columns, records)
        return accepted

    def log_shadow(self, model: Any, *, request_id: str,
                   columns: Mapping[str, np.ndarray[Any, Any]], predictions: Any,
                   latency_ms: float) -> bool:
        """Queue the challenger's lines for a request (source ``shadow``)."""
        return super().log_predictions(model, request_id=request_id, source=SHADOW_SOURCE,
                                       columns=columns, predictions=predictions,
                                       latency_ms=latency_ms, remember=False)

    def close(self, timeout: float = 30.0) -> None:
        """Let the shadow score what is queued, then write and close the log."""
        shadow = self.shadow
        if shadow.close(timeout):
            _log.info("shadow %s: %d requests scored, %d skipped (queue full), %d failed",
                      shadow.holder.current.name, shadow.scored, shadow.skipped, shadow.failed)
        super().close(timeout)
