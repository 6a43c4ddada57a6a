"""``mlstrata serve --online NAME``: an online model served live, learning while it answers.

A raw ASGI app like :mod:`mlstrata.serve.app` (its request records, body limit, JSON error
bodies, API key check, metrics and uvicorn settings are reused; River stays out of
``mlstrata.serve``). Routes:

- ``POST /v1/predict``: one record or a list; answers ``{"model", "version", "request_id",
  "predictions": [{"label", "probabilities"} | {"value"}]}`` (the id also as ``X-Request-Id``;
  a client's own plain ``X-Request-Id`` is used when it is new). The records are remembered
  (the last ``--recent`` requests) so that a label can follow by request id.
- ``POST /v1/learn``: one item or a list — ``{"request_id", "record"?, "label"}`` for an
  earlier prediction, or ``{"record": {...}, "label"}``, or the features with ``label`` (or the
  target column) beside them. Answers ``{"accepted", "last_event", "request_id"}`` once every
  event is in the event log on disk and learnt: the next prediction uses them. A refused
  event is a 422 naming field and rule (nothing of the request is learnt), an unknown request
  id 404, a record labelled already 409.
- ``/v2/...``: the Open Inference Protocol's server and model metadata, ready and ``infer``
  (JSON tensors, one per input field; outputs ``label`` and ``probabilities``, or ``value``).
- ``GET /metrics`` (Prometheus), ``GET /v2/health/live`` and ``/v2/health/ready`` (503 once the
  model stopped learning after an error: restart it, it recovers from its log).

Learns from all connections go through one :class:`~.learnqueue.LearnQueue` (one ``fsync`` per
burst, events applied one at a time in arrival order); predictions take the model's lock, so
they never see a half-applied burst. Every prediction and learn goes to the workspace's
prediction log (:mod:`.logged`). On SIGTERM uvicorn lets requests in flight finish, then the
queue is drained, the model closed (its last checkpoint) and the log written.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import MlstrataError
from ..predlog import FeedbackItem, PredictionLog
from ..serve._http import (
    Request,
    Response,
    json_response,
    mlstrata_version,
    parse_json,
    require_json,
)
from ..serve.app import (
    ASGIApp,
    LifespanApp,
    Receive,
    Scope,
    Send,
    authorize,
    read_body,
    send_response,
)
from ..serve.errors import RequestError
from ..serve.metrics import CONTENT_TYPE, ServeMetrics
from ..workspace import Workspace
from .durability import CheckpointPolicy
from .events import Event, EventRefusedError
from .guard import GuardedModel, open_guarded
from .learner import OnlineModel, OnlineModelFailedError, Prediction
from .learnqueue import (
    AlreadyLabelledError,
    Burst,
    LearnQueue,
    Progress,
    RecentPredictions,
    UnknownRequestError,
)
from .logged import LoggedModel, as_predictions, logged_model, plain
from .recovery import open_online
from .spec import OnlineSpec

__all__ = ["OnlineServeConfig", "OnlineService", "ServedModel", "create_online_app", "serve_online"]

_log = logging.getLogger("mlstrata.serve")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ID_PREFIX = uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class OnlineServeConfig:
    """What ``mlstrata serve --online NAME`` was asked for."""

    name: str
    workspace: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    max_body_bytes: int = 1_000_000
    log_requests: bool = False
    log: str | None = None
    log_store: str | None = None
    recent: int = 100_000


ServedModel = OnlineModel | GuardedModel


def _open_model(ws: Workspace, name: str, policy: CheckpointPolicy) -> ServedModel:
    """The served model, recovered from its checkpoint and event log; guarded when
    ``online.guard.enabled`` in mlstrata.yaml (:mod:`.guard`)."""
    model: ServedModel
    if ws.config.online.guard.enabled:
        model, recovery = open_guarded(ws, name, policy=policy)
    else:
        model, recovery = open_online(ws, name, policy=policy)
    for note in recovery.notes:
        _log.warning("online model %s: %s", name, note)
    _log.info("online model %s: %s, %d logged events replayed, at event %d", name,
              recovery.checkpoint.ref if recovery.checkpoint else "no checkpoint",
              recovery.replayed, model.seq)
    return model


class OnlineService:
    """The served model, its learn queue, its memory of recent predictions and its counts."""

    def __init__(self, model: ServedModel, logged: LoggedModel,
                 prediction_log: PredictionLog | None = None, recent: int = 100_000) -> None:
        self.model = model
        self.spec: OnlineSpec = model.spec
        self.logged = logged
        self.log = prediction_log
        self.recent = RecentPredictions(recent)
        self.progress = Progress(self.spec.task)
        self.queue = LearnQueue(model, self._learnt)
        self._ids = itertools.count(1)
        self._closed = False

    def new_id(self) -> str:
        """A new request id, unique within the process."""
        return f"{_ID_PREFIX}-{next(self._ids):x}"

    def close(self) -> None:
        """Learn what is queued, checkpoint and release the model, write the log (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.queue.close()
        self.model.close()
        if self.log is not None:
            self.log.close()

    def _learnt(self, burst: Burst) -> None:
        """Count a learnt burst; log its labels (and, for events sent with their features,
        the prediction made just before learning them)."""
        self.progress.learnt(burst.observed)
        if self.log is None:
            return
        at = 0
        now = time.time()
        for ticket in burst.tickets:
            observed = burst.observed[at:at + len(ticket.events)]
            at += len(ticket.events)
            request_id, indexes, sent = ticket.tag
            if sent is not None:  # features + label: log the progressive prediction too
                self.log.log_predictions(
                    self.logged, request_id=request_id, source="learn", columns={},
                    predictions=as_predictions(self.spec, [p for _, p in observed]),
                    latency_ms=0.0, records=sent, when=now)
            self.log.log_feedback([
                FeedbackItem(self.spec.name, plain(label), request_id, index, time=now)
                for (label, _), index in zip(observed, indexes, strict=True)])


def create_online_app(service: OnlineService, *, api_key: str | None = None,
                      max_body_bytes: int = 1_000_000, metrics: ServeMetrics | None = None,
                      on_shutdown: Sequence[Callable[[], None]] = ()) -> ASGIApp:
    """The ASGI app serving ``service`` (see the module docstring)."""
    return _App(service, api_key, max_body_bytes, metrics or ServeMetrics(), tuple(on_shutdown))


Handler = Callable[["_App", Request], Any]


class _App(LifespanApp):
    def __init__(self, service: OnlineService, api_key: str | None, max_body: int,
                 metrics: ServeMetrics, on_shutdown: tuple[Callable[[], None], ...]) -> None:
        self.service = service
        self._key = api_key.encode() if api_key else None
        self._max_body = max_body
        self.metrics = metrics
        self._on_shutdown = on_shutdown
        if service.log is not None:
            metrics.watch_log(service.log)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope["method"], scope["path"], dict(scope["headers"]))
        label, route = _route(request.path, request.params)
        try:
            response = await self._respond(request, receive, label, route)
        except RequestError as exc:
            response = _error(exc.status, str(exc))
        except EventRefusedError as exc:
            if request.path == "/v1/learn":
                self.service.progress.refused += 1
            response = _refused(exc, getattr(exc, "record_index", None))
        except (OnlineModelFailedError, OSError) as exc:
            response = _error(503, f"the online model stopped learning ({exc}); restart the "
                                   "service: it recovers from its checkpoint and event log")
        except MlstrataError as exc:
            response = _error(400, str(exc))
        except Exception:
            _log.exception("bug while answering %s %s", request.method, request.path)
            response = _error(500, "internal server error (a bug; the server log has the "
                                   "traceback)")
        await send_response(send, response)
        self.metrics.request(label, response.status, time.perf_counter() - started)

    async def _respond(self, request: Request, receive: Receive, label: str,
                       route: dict[str, Handler] | None) -> Response:
        path = request.path
        if route is None:
            raise RequestError(404, f"no route {path!r}; this online service answers "
                                    "/v1/predict, /v1/learn, /v2/..., /metrics")
        handler = route.get(request.method)
        if handler is None:
            allowed = " or ".join(sorted(route))
            raise RequestError(405, f"{request.method} is not allowed on {path}; use {allowed}")
        if self._key is not None and label not in _OPEN:
            authorize(request, self._key)
        if request.method == "POST":
            request.body = await read_body(request, receive, self._max_body)
        result = handler(self, request)
        if asyncio.iscoroutine(result):
            result = await result
        response: Response = result
        return response


def _route(path: str, params: dict[str, str]) -> tuple[str, dict[str, Handler] | None]:
    route = _ROUTES.get(path)
    if route is not None:
        return path, route
    if path.startswith("/v2/models/"):
        parts = path[len("/v2/models/"):].split("/")
        params["name"] = parts[0]
        if len(parts) >= 3 and parts[1] == "versions":
            params["version"] = parts[2]
            parts = [parts[0], *parts[3:]]
        action = parts[1] if len(parts) == 2 else "metadata" if len(parts) == 1 else None
        if action in _MODEL_ROUTES:
            template = "/v2/models/{name}" + ("" if action == "metadata" else f"/{action}")
            return template, _MODEL_ROUTES[action]
    return "other", None


# -- predict ---------------------------------------------------------------------------------

def _predict(app: _App, request: Request) -> Response:
    """``POST /v1/predict``: one record (an object) or a list of records."""
    began = time.perf_counter()
    require_json(request)
    records = _records(parse_json(request.body))
    service = app.service
    request_id = _request_id(request, service)
    answers = _answer(service, records)
    service.recent.remember(request_id, records, answers)
    _log_predictions(service, request_id, "rest", records, answers, began)
    return json_response({"model": service.spec.name, "version": service.logged.version,
                          "request_id": request_id,
                          "predictions": [a.to_dict() for a in answers]},
                         headers=((b"x-request-id", request_id.encode()),))


def _records(payload: Any) -> list[dict[str, Any]]:
    records = [payload] if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(400, "send one record (a JSON object) or a list of records")
    if not records:
        raise RequestError(400, "the list of records is empty; send at least one record")
    return records


def _answer(service: OnlineService, records: list[dict[str, Any]]) -> list[Prediction]:
    """Each record's prediction (a refused record refuses the request, naming it)."""
    answers = []
    for index, record in enumerate(records):
        try:
            answers.append(service.model.predict(record))
        except EventRefusedError as exc:
            exc.record_index = index  # type: ignore[attr-defined]
            raise
    service.progress.predictions += len(records)
    return answers


def _request_id(request: Request, service: OnlineService) -> str:
    """The client's plain ``X-Request-Id`` when it names no remembered prediction, else new."""
    sent = request.header(b"x-request-id")
    if sent is not None:
        text = sent.decode(errors="replace")
        if _REQUEST_ID.fullmatch(text):
            if text in service.recent:
                raise RequestError(409, f"request id {text!r} was used by an earlier "
                                        "prediction; send a new X-Request-Id (or none)")
            return text
    return service.new_id()


def _log_predictions(service: OnlineService, request_id: str, source: str,
                     records: Sequence[Mapping[str, Any]], answers: list[Prediction],
                     began: float) -> None:
    if service.log is not None:
        service.log.log_predictions(service.logged, request_id=request_id, source=source,
                                    columns={}, predictions=as_predictions(service.spec, answers),
                                    latency_ms=(time.perf_counter() - began) * 1000,
                                    records=records)


# -- learn -----------------------------------------------------------------------------------

async def _learn(app: _App, request: Request) -> Response:
    """``POST /v1/learn``: labels by request id, or features with their label."""
    require_json(request)
    payload = parse_json(request.body)
    items = [payload] if isinstance(payload, dict) else payload
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise RequestError(400, "send one learn item (a JSON object) or a non-empty list: "
                                "{\"request_id\", \"label\"} or the features with \"label\"")
    service = app.service
    claimed: list[tuple[str, int | None]] = []
    try:
        events, tag = _events(service, items, claimed)
        if service.queue.failure is not None:
            raise OnlineModelFailedError(str(service.queue.failure))
        last = await service.queue.submit(events, tag)
    except BaseException:
        for request_id, record in claimed:
            service.recent.release(request_id, record)
        raise
    return json_response({"accepted": len(events), "last_event": last, "request_id": tag[0]},
                         headers=((b"x-request-id", tag[0].encode()),))


def _events(service: OnlineService, items: list[dict[str, Any]],
            claimed: list[tuple[str, int | None]]) -> tuple[list[Event], tuple[Any, ...]]:
    """The checked events of a learn request and what to log them under: ``(request_id,
    record indexes, records sent)`` — one request id for labels of one earlier prediction
    request, else a new one with the records as sent."""
    target = service.spec.target
    events: list[Event] = []
    by_id: list[tuple[str, int]] = []
    sent: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if "request_id" in item:
            record = _labelled_prediction(service, item, claimed)
            by_id.append((str(item["request_id"]), int(item.get("record") or 0)))
        else:
            features = item.get("record", item)
            if not isinstance(features, dict):
                raise RequestError(400, f"item {index}: 'record' must be a JSON object of "
                                        "features")
            record = _with_label(service.spec, features, item)
            sent.append({k: v for k, v in record.items() if k != target})
        try:
            events.append(service.model.checker.learn_event(record))
        except EventRefusedError as exc:
            exc.record_index = index  # type: ignore[attr-defined]
            raise
    if by_id and sent:
        raise RequestError(400, "a learn request is either labels by request id or features "
                                "with labels; send them in two requests")
    ids = sorted({request_id for request_id, _ in by_id})
    if len(ids) > 1:
        raise RequestError(400, "labels of several prediction requests go in separate learn "
                                f"requests (this one names {ids})")
    if by_id:
        return events, (by_id[0][0], [record for _, record in by_id], None)
    return events, (service.new_id(), list(range(len(sent))), sent)


def _with_label(spec: OnlineSpec, features: dict[str, Any],
                item: dict[str, Any]) -> dict[str, Any]:
    """The features with the label as the target column: the target's own field, else
    ``label`` (unless the contract has a column of that name)."""
    columns = spec.contract.columns
    record = {k: v for k, v in features.items() if k != "label" or "label" in columns}
    if spec.target not in record:
        record[spec.target] = item.get(spec.target, item.get("label"))
    return record


def _labelled_prediction(service: OnlineService, item: dict[str, Any],
                         claimed: list[tuple[str, int | None]]) -> dict[str, Any]:
    request_id, record = item["request_id"], item.get("record")
    if not isinstance(request_id, str):
        raise RequestError(400, "'request_id' must be the text the prediction answered")
    if record is not None and (not isinstance(record, int) or isinstance(record, bool)):
        raise RequestError(400, "'record' must be the record's position (0 for the first)")
    if "label" not in item:
        raise RequestError(400, f"the learn item for request {request_id!r} has no 'label'")
    try:
        features, _ = service.recent.claim(request_id, record)
    except UnknownRequestError as exc:
        raise RequestError(404, str(exc)) from exc
    except AlreadyLabelledError as exc:
        raise RequestError(409, str(exc)) from exc
    claimed.append((request_id, record))
    return {**features, service.spec.target: item["label"]}


# -- Open Inference Protocol v2 --------------------------------------------------------------

def _served(app: _App, request: Request) -> OnlineService:
    service = app.service
    name, version = request.params.get("name"), request.params.get("version")
    if name != service.spec.name:
        raise RequestError(404, f"model {name!r} is not served here; this server serves "
                                f"{service.spec.name!r}")
    if version is not None and version != str(service.logged.version):
        raise RequestError(404, f"model {name!r} has no version {version!r} here; this server "
                                f"serves version {service.logged.version}")
    return service


def _server_metadata(app: _App, request: Request) -> Response:
    return json_response({"name": "mlstrata", "version": mlstrata_version(), "extensions": []})


def _model_metadata(app: _App, request: Request) -> Response:
    service = _served(app, request)
    spec = service.spec
    inputs = [{"name": name, "datatype": _DATATYPES.get(column.type, "BYTES"), "shape": [-1]}
              for name, column in spec.contract.columns.items() if name != spec.target]
    outputs = ([{"name": "value", "datatype": "FP64", "shape": [-1]}]
               if spec.task == "regression" else
               [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(spec.classes)]}])
    return json_response({"name": spec.name, "versions": [str(service.logged.version)],
                          "platform": f"river_{spec.model}", "inputs": inputs,
                          "outputs": outputs})


def _model_ready(app: _App, request: Request) -> Response:
    service = _served(app, request)
    ready = service.queue.failure is None
    return json_response({"name": service.spec.name, "ready": ready}, 200 if ready else 503)


def _infer(app: _App, request: Request) -> Response:
    """``POST /v2/models/{name}/infer``: JSON tensors, one per input field."""
    began = time.perf_counter()
    service = _served(app, request)
    payload = parse_json(request.body)
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) \
            or not payload["inputs"]:
        raise RequestError(400, "an infer request is a JSON object with 'inputs' (a non-empty "
                                "list of tensors {name, datatype, shape, data}); binary tensor "
                                "data is not supported by an online model")
    columns: dict[str, list[Any]] = {}
    for index, tensor in enumerate(payload["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str) \
                or not isinstance(tensor.get("data"), list):
            raise RequestError(400, f"inputs[{index}] must be an object with a 'name' and a "
                                    "'data' list")
        columns[tensor["name"]] = _flat(tensor["data"])
    sizes = {len(values) for values in columns.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise RequestError(400, f"the input tensors hold different or no numbers of elements "
                                f"({sorted(sizes)}); send one element per record in each")
    count = sizes.pop()
    records = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    answers = _answer(service, records)
    sent_id = payload.get("id")
    request_id = sent_id if isinstance(sent_id, str) and _REQUEST_ID.fullmatch(sent_id) \
        and sent_id not in service.recent else service.new_id()
    service.recent.remember(request_id, records, answers)
    _log_predictions(service, request_id, "oip-rest", records, answers, began)
    if service.spec.task == "regression":
        outputs = [{"name": "value", "datatype": "FP64", "shape": [count],
                    "data": [a.value for a in answers]}]
    else:
        classes = service.spec.classes
        outputs = [{"name": "label", "datatype": "BYTES", "shape": [count],
                    "data": [None if a.label is None else str(a.label) for a in answers]},
                   {"name": "probabilities", "datatype": "FP64", "shape": [count, len(classes)],
                    "data": [a.probabilities.get(c, 0.0) for a in answers for c in classes]}]
    body: dict[str, Any] = {"model_name": service.spec.name,
                            "model_version": str(service.logged.version), "id": request_id,
                            "outputs": outputs}
    return json_response(body, headers=((b"x-request-id", request_id.encode()),))


def _flat(data: list[Any]) -> list[Any]:
    return [v[0] if isinstance(v, list) and len(v) == 1 else v for v in data]


# -- health, metrics, errors -----------------------------------------------------------------

def _exposition(app: _App, request: Request) -> Response:
    """``GET /metrics``: the serving metrics and the online model's own."""
    return Response(200, app.metrics.exposition() + _online_metrics(app.service), CONTENT_TYPE)


def _live(app: _App, request: Request) -> Response:
    failure = app.service.queue.failure
    if failure is None:
        return json_response({"live": True})
    return json_response({"live": False, "error": f"{type(failure).__name__}: {failure}"}, 503)


def _ready(app: _App, request: Request) -> Response:
    ready = app.service.queue.failure is None
    return json_response({"ready": ready}, 200 if ready else 503)


def _online_metrics(service: OnlineService) -> bytes:
    """The online model's own metrics, in the Prometheus text format."""
    name = service.spec.name
    progress = service.progress
    lines = [
        "# HELP mlstrata_online_learns_total Learn events accepted (durable and learnt) or "
        "refused (422).",
        "# TYPE mlstrata_online_learns_total counter",
        f'mlstrata_online_learns_total{{model="{name}",outcome="accepted"}} {progress.accepted}',
        f'mlstrata_online_learns_total{{model="{name}",outcome="refused"}} {progress.refused}',
        "# HELP mlstrata_online_predictions_total Records predicted.",
        "# TYPE mlstrata_online_predictions_total counter",
        f'mlstrata_online_predictions_total{{model="{name}"}} {progress.predictions}',
        "# HELP mlstrata_online_events_per_second Events learnt per second over the last 10 s.",
        "# TYPE mlstrata_online_events_per_second gauge",
        f'mlstrata_online_events_per_second{{model="{name}"}} '
        f"{progress.events_per_second():.3f}",
        "# HELP mlstrata_online_last_event Sequence number of the last event learnt.",
        "# TYPE mlstrata_online_last_event gauge",
        f'mlstrata_online_last_event{{model="{name}"}} {service.model.seq}',
    ]
    if isinstance(service.model, GuardedModel):
        for key, value in service.model.counters().items():
            kind = "counter" if key in _GUARD_COUNTERS else "gauge"
            metric_name = f"mlstrata_online_guard_{key}" + ("_total" if kind == "counter"
                                                            else "")
            lines += [f"# TYPE {metric_name} {kind}",
                      f'{metric_name}{{model="{name}"}} {value}']
    metric = progress.metric()
    if metric is not None:
        lines += ["# HELP mlstrata_online_progressive_metric The progressive metric (each event "
                  "predicted just before it is learnt) since start-up.",
                  "# TYPE mlstrata_online_progressive_metric gauge",
                  f'mlstrata_online_progressive_metric{{model="{name}",'
                  f'metric="{progress.metric_name}"}} {metric:.6f}']
    return ("\n".join(lines) + "\n").encode()


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _refused(exc: EventRefusedError, record: int | None) -> Response:
    problems = [{"record": record or 0, **v.to_dict()} for v in exc.violations]
    where = f"record {record}: " if record else ""
    return Response(422, orjson.dumps({"error": where + str(exc), "problems": problems},
                                      default=str))


_GUARD_COUNTERS = {"rollbacks", "quarantined_events", "changes_detected"}
_DATATYPES = {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}
_OPEN = {"/v2/health/live", "/v2/health/ready", "/metrics"}
_ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/predict": {"POST": _predict},
    "/v1/learn": {"POST": _learn},
    "/v2": {"GET": _server_metadata},
    "/v2/health/live": {"GET": _live},
    "/v2/health/ready": {"GET": _ready},
    "/metrics": {"GET": _exposition},
}
_MODEL_ROUTES: dict[str, dict[str, Handler]] = {
    "metadata": {"GET": _model_metadata},
    "ready": {"GET": _model_ready},
    "infer": {"POST": _infer},
}


def serve_online(config: OnlineServeConfig, policy: CheckpointPolicy | None = None) -> None:
    """Serve the online model until SIGTERM/SIGINT (see the module docstring)."""
    import sys

    import uvicorn

    from ..serve.server import configure_logging

    configure_logging()
    # The applier thread must get the interpreter back quickly when its fsync returns: at the
    # default 5 ms switch interval every burst waited for the event loop (measured: 545 vs
    # 756 predict+learn pairs/s at 8 connections).
    sys.setswitchinterval(0.0002)
    ws = Workspace.find(config.workspace)
    model = _open_model(ws, config.name, policy or CheckpointPolicy(
        ws.config.online.checkpoint_events, ws.config.online.checkpoint_seconds))
    try:
        from .recovery import read_spec

        artifact, _ = read_spec(ws, config.name)
        log = _open_log(config)
    except BaseException:
        model.close()
        raise
    service = OnlineService(model, logged_model(model.spec, artifact), log, config.recent)
    app = create_online_app(service, api_key=config.api_key,
                            max_body_bytes=config.max_body_bytes, on_shutdown=(service.close,))
    options: dict[str, Any] = dict(
        host=config.host, port=config.port, loop="uvloop", http="httptools", lifespan="on",
        access_log=config.log_requests, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=30, log_level="info")
    _log.info("serving online model %s (event %d) on http://%s:%s", config.name, model.seq,
              config.host, config.port)
    try:  # uvicorn re-raises SIGTERM when it returns: the lifespan shutdown closes the model
        uvicorn.Server(uvicorn.Config(app, **options)).run()
    finally:
        service.close()


def _open_log(config: OnlineServeConfig) -> PredictionLog | None:
    if config.log is None:
        return None
    from ..predlog import open_log, read_salt
    from ..serve.server import LOG_HAND_OVER

    salt = read_salt(Path(config.log_store) if config.log_store else None)
    return open_log(config.log, salt=salt, hand_over=LOG_HAND_OVER)
