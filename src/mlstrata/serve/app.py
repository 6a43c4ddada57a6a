"""The REST server as one small ASGI application: routing, body limit, API key, JSON errors.

:func:`create_app` answers, over the model a :class:`~mlstrata.serve.holder.ModelHolder` holds:

- the Open Inference Protocol v2 (``/v2/...``, as KServe, Triton and MLServer speak it, with
  Triton's binary-data extension) — see :mod:`mlstrata.serve.oip_rest`;
- MLflow's scoring protocol (``POST /invocations``, ``GET /ping``, ``GET /health``) — see
  :mod:`mlstrata.serve.mlflow_protocol`;
- ``POST /v1/predict``: one JSON record or a list of them; the answer always holds a list of
  predictions (one per record, in order, even for a single record), the model's name and
  version and a request id (also in the ``X-Request-Id`` header; a client's own
  ``X-Request-Id`` is echoed when it is a plain token);
- ``POST /v1/feedback``: ground-truth labels for logged predictions, by request id or key —
  see :mod:`mlstrata.serve.feedback`; with a prediction log, every answered record of the
  scoring routes is logged under its request id (``X-Request-Id`` on every scoring answer);
- ``GET /v1/precomputed/{key}`` when a :class:`PrecomputedLookup` is given;
- ``GET /openapi.json`` (generated from the model's signature) and ``GET /docs`` (Swagger UI
  from local files) — see :mod:`mlstrata.serve.openapi`;
- ``GET /metrics`` (Prometheus text format, no API key needed, like the health checks) when a
  :class:`~mlstrata.serve.metrics.ServeMetrics` is given — see :mod:`mlstrata.serve.metrics`.

Scoring handlers check their request and return a :class:`~mlstrata.serve._http.Scoring`; the
app scores it through a :class:`~mlstrata.serve.batching.BatchScorer`, which merges requests
that arrive together into one onnxruntime call.

It is a raw ASGI callable rather than a framework app because per-request cost is the product:
no middleware stack, one small request record, orjson for JSON. Every client mistake answers
4xx with ``{"error": "..."}`` naming the problem (422 plus a ``problems`` list of ``{record,
field, rule, message}`` for values the signature refuses); anything else is a bug, logged with
its traceback, and answers 500. Values that break only ``warn`` rules are scored: each answer
carries their warnings (``/v1/predict``: a ``warnings`` list on each prediction that has some;
``/invocations``: a top-level ``warnings`` list; OIP: the response parameter ``warnings``), and
a server started with ``--strict`` refuses them like errors.

With an API key, every route except the health checks and the docs needs
``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (compared in constant time).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import hmac
import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from ..errors import MlstrataError
from ..predlog import PredictionLog
from ..runtime.inputs import InvalidInputError
from ..runtime.model import Predictions
from ._http import Handler, Request, Response, Scoring, json_response, parse_json, require_json
from .batching import DEFAULT_MAX_ROWS, BatchScorer
from .errors import RequestError
from .feedback import feedback_handler
from .holder import ModelHolder
from .metrics import CONTENT_TYPE, ServeMetrics
from .mlflow_protocol import invocations
from .oip_rest import infer, model_metadata, model_ready, parse_model_path, server_metadata
from .openapi import docs_asset, docs_page, openapi_json

__all__ = ["ASGIApp", "LifespanApp", "PrecomputedLookup", "authorize", "create_app", "lifespan",
           "read_body", "send_response"]

_log = logging.getLogger("mlstrata.serve")
# Bodies larger than this are scored in a worker thread so a big batch does not stall the loop.
_INLINE_BODY_BYTES = 64_000
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# New request ids: a random per-process prefix and a counter (unique, and cheaper than uuid4).
_ID_PREFIX = uuid.uuid4().hex[:16].encode()
_ID_COUNTER = itertools.count(1)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PrecomputedLookup(Protocol):
    """A store of precomputed predictions keyed by a string (see ``mlstrata precompute``)."""

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``, or None when there is none."""


@dataclass(frozen=True)
class _Route:
    """A path's handlers by method; ``open`` routes need no API key; ``mlflow`` errors also
    carry MLflow's ``error_code`` and ``message`` keys."""

    methods: dict[str, Handler]
    open: bool = False
    mlflow: bool = False
    threaded: bool = False


def create_app(
    holder: ModelHolder | None,
    *,
    api_key: str | None = None,
    max_body_bytes: int = 1_000_000,
    precomputed: PrecomputedLookup | None = None,
    max_batch_rows: int = DEFAULT_MAX_ROWS,
    metrics: ServeMetrics | None = None,
    prediction_log: PredictionLog | None = None,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> ASGIApp:
    """The ASGI application serving ``holder``'s model (see the module docstring).

    Requests that arrive while the model is busy are scored together, up to
    ``max_batch_rows`` rows per call (:mod:`mlstrata.serve.batching`). Without a model
    (``holder`` None) the app answers precomputed lookups and health checks only. With
    ``metrics`` every request is counted there and ``GET /metrics`` answers them. With a
    ``prediction_log`` every answered prediction is logged there (one line per record, after
    the answer is built and before it is sent) and ``POST /v1/feedback`` takes labels for
    them (:mod:`mlstrata.serve.feedback`). ``on_shutdown`` runs at the ASGI lifespan's
    shutdown (a worker process closes its log there: the queue is written before it exits).
    """
    return _App(holder, api_key, max_body_bytes, precomputed, max_batch_rows, metrics,
                prediction_log, tuple(on_shutdown))


class LifespanApp(abc.ABC):
    """An ASGI application that answers HTTP with :meth:`_http` and the lifespan protocol with
    :func:`lifespan`, running ``_on_shutdown`` at shutdown (the prediction and online servers)."""

    _on_shutdown: tuple[Callable[[], None], ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await lifespan(receive, send, self._on_shutdown)

    @abc.abstractmethod
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request."""


class _App(LifespanApp):
    def __init__(self, holder: ModelHolder | None, api_key: str | None, max_body_bytes: int,
                 precomputed: PrecomputedLookup | None, max_batch_rows: int,
                 metrics: ServeMetrics | None, prediction_log: PredictionLog | None,
                 on_shutdown: tuple[Callable[[], None], ...]) -> None:
        # Without a model only the routes that never touch one exist, so handlers may assume it.
        self._holder = cast(ModelHolder, holder)
        self._serves_model = holder is not None
        self._key = api_key.encode() if api_key else None
        self._max_body = max_body_bytes
        self._routes = _ROUTES if holder is not None else _LOOKUP_ROUTES
        self._precomputed = _Route({"GET": _precomputed_handler(precomputed)})
        self._metrics = metrics
        self._scorer = BatchScorer(max_batch_rows, metrics.scored if metrics else None)
        self._labels = {**_ROUTE_LABELS, id(self._precomputed): "/v1/precomputed/{key}"}
        if metrics is not None:
            route = _metrics_route(metrics, holder)
            self._routes = {**self._routes, "/metrics": route}
            self._labels[id(route)] = "/metrics"
            if holder is not None:
                metrics.serving(holder.current)
        self._log = prediction_log
        if metrics is not None and prediction_log is not None:
            metrics.watch_log(prediction_log)
        self._on_shutdown = on_shutdown
        if holder is not None:
            feedback = _Route({"POST": feedback_handler(prediction_log)}, threaded=True)
            self._routes = {**self._routes, "/v1/feedback": feedback}
            self._labels[id(feedback)] = "/v1/feedback"

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope["method"], scope["path"], dict(scope["headers"]))
        route = self._route(request)
        try:
            response = await self._respond(route, request, receive)
        except RequestError as exc:
            response = _error(exc.status, str(exc), route)
        except InvalidInputError as exc:
            response = _invalid(exc, route)
            if self._metrics is not None:
                self._metrics.refused(exc.problems)
        except MlstrataError as exc:
            response = _error(400, str(exc), route)
        except Exception:
            _log.exception("bug while answering %s %s", request.method, request.path)
            response = _error(500, "internal server error (a bug; the server log has the "
                              "traceback)", route)
        await send_response(send, response)
        if self._metrics is not None:
            self._metrics.request(self._labels.get(id(route), "other"), response.status,
                                  time.perf_counter() - started)

    async def _respond(self, route: _Route | None, request: Request, receive: Receive) -> Response:
        began = time.perf_counter()
        if route is None:
            raise RequestError(404, f"no route {request.path!r}; GET /docs lists the routes")
        handler = route.methods.get(request.method)
        if handler is None:
            allowed = sorted(route.methods)
            return json_response({"error": f"{request.method} is not allowed on {request.path}; "
                                           f"use {' or '.join(allowed)}"}, 405,
                                 ((b"allow", ", ".join(allowed).encode()),))
        if self._key is not None and not route.open:
            authorize(request, self._key)
        if request.method == "POST":
            request.body = await read_body(request, receive, self._max_body)
        if route.threaded or len(request.body) > _INLINE_BODY_BYTES:
            result = await asyncio.to_thread(handler, self._holder, request)
        else:
            result = handler(self._holder, request)
        if isinstance(result, Scoring):
            predictions = (await self._scorer.score(result.model, result.columns, result.rows)
                           ).with_warnings(result.warnings)
            if self._metrics is not None:
                self._metrics.answered(self._labels.get(id(route), "other"), result.rows,
                                       predictions)
            response = result.answer(predictions)
            if self._log is not None:
                response = _logged(self._log, route, request, result, predictions, began,
                                   response)
            return response
        return result


    def _route(self, request: Request) -> _Route | None:
        path = request.path
        route = self._routes.get(path)
        if route is not None:
            return route
        if path.startswith("/v2/models/") and self._serves_model:
            action = parse_model_path(path, request.params)
            return _MODEL_ROUTES.get(action) if action is not None else None
        if path.startswith("/v1/precomputed/") and len(path) > len("/v1/precomputed/"):
            request.params["key"] = path[len("/v1/precomputed/"):]
            return self._precomputed
        if path.startswith("/docs/") and self._serves_model:
            request.params["asset"] = path[len("/docs/"):]
            return _DOCS_ASSET
        return None


def _logged(log: PredictionLog, route: _Route, request: Request, scoring: Scoring,
            predictions: Predictions, began: float, response: Response) -> Response:
    """Queue the answered records for the prediction log; the answer carries the request id
    they are logged under (``X-Request-Id``)."""
    request_id = scoring.request_id or _request_id(request)
    log.log_predictions(
        scoring.model, request_id=request_id.decode(errors="replace"),
        source=_SOURCES.get(id(route), "rest"), columns=scoring.columns,
        predictions=predictions, latency_ms=(time.perf_counter() - began) * 1000,
        records=scoring.records)
    if any(name == b"x-request-id" for name, _ in response.headers):
        return response
    return dataclasses.replace(response,
                               headers=(*response.headers, (b"x-request-id", request_id)))


def authorize(request: Request, key: bytes) -> None:
    """401 unless the request carries ``key`` as a bearer token or an ``X-API-Key``."""
    sent = request.header(b"x-api-key")
    if sent is None:
        scheme, _, token = (request.header(b"authorization") or b"").partition(b" ")
        sent = token.strip() if scheme.lower() == b"bearer" else None
    if sent is None:
        raise RequestError(401, "this server needs an API key: send 'Authorization: Bearer "
                           "KEY' or 'X-API-Key: KEY'")
    if not hmac.compare_digest(sent, key):
        raise RequestError(401, "the API key is wrong")


async def read_body(request: Request, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing (413) one larger than ``limit`` by its header or its bytes."""
    declared = request.header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is {int(declared)} bytes; this server takes at most "
                           f"{limit} (--max-body-bytes)")
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks, size = [body], len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(400, "the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"the body is larger than {limit} bytes, the most this server "
                        "takes (--max-body-bytes)")


async def send_response(send: Send, response: Response) -> None:
    """Send ``response`` as one ASGI start + body (a 401 also asks for a bearer token)."""
    headers = [(b"content-type", response.content_type),
               (b"content-length", str(len(response.body)).encode()), *response.headers]
    if response.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def lifespan(receive: Receive, send: Send,
                    on_shutdown: tuple[Callable[[], None], ...] = ()) -> None:
    """Answer the ASGI lifespan protocol; at shutdown run ``on_shutdown`` (in a thread)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for callback in on_shutdown:
                await asyncio.to_thread(callback)
            await send({"type": "lifespan.shutdown.complete"})
            return


def _error(status: int, message: str, route: _Route | None) -> Response:
    return json_response(_error_body(status, message, route), status)


def _error_body(status: int, message: str, route: _Route | None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if route is not None and route.mlflow:
        body.update(error_code="BAD_REQUEST" if status < 500 else "INTERNAL_ERROR",
                    message=message)
    return body


def _invalid(exc: InvalidInputError, route: _Route | None) -> Response:
    body = _error_body(422, str(exc), route)
    body["problems"] = [p.to_dict() for p in exc.problems]
    return json_response(body, 422)


def _metrics_route(metrics: ServeMetrics, holder: ModelHolder | None) -> _Route:
    """``GET /metrics``: every process's metrics in the Prometheus text format."""
    def exposition(_: ModelHolder, request: Request) -> Response:
        if holder is not None:
            metrics.serving(holder.current)  # a reloaded model shows before its first request
        return Response(200, metrics.exposition(), CONTENT_TYPE)

    return _Route({"GET": exposition}, open=True)


def _live(holder: ModelHolder, request: Request) -> Response:
    return json_response({"live": True})


def _ready(holder: ModelHolder, request: Request) -> Response:
    return json_response({"ready": True})


def _ping(holder: ModelHolder, request: Request) -> Response:
    return Response(200, b"{}")


def _predict(holder: ModelHolder, request: Request) -> Scoring:
    """``POST /v1/predict``: one record (an object) or a list of records."""
    require_json(request)
    payload = parse_json(request.body)
    records = [payload] if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise RequestError(400, "send one record (a JSON object) or a list of records")
    if not records:
        raise RequestError(400, "the list of records is empty; send at least one record")
    model = holder.current
    request_id = _request_id(request)

    def answer(predictions: Predictions) -> Response:
        return json_response({"model": model.name, "version": model.version,
                              "request_id": request_id.decode(),
                              "predictions": predictions.to_records()},
                             headers=((b"x-request-id", request_id),))

    checked = model.check_records(records)
    return Scoring(model, checked.columns, answer, checked.warnings, request_id, records)


def _request_id(request: Request) -> bytes:
    """The client's ``X-Request-Id`` when it is a plain token, else a new unique id."""
    sent = request.header(b"x-request-id")
    if sent is not None and _REQUEST_ID.fullmatch(sent):
        return sent
    return b"%s-%x" % (_ID_PREFIX, next(_ID_COUNTER))


def _precomputed_handler(precomputed: PrecomputedLookup | None) -> Handler:
    def lookup(holder: ModelHolder, request: Request) -> Response:
        if precomputed is None:
            raise RequestError(404, "no precomputed store: this server was started without "
                               "one")
        key = request.params["key"]
        found = precomputed.lookup(key)
        if found is None:
            raise RequestError(404, f"no precomputed prediction for key {key!r}")
        return json_response(found)

    return lookup


_ROUTES = {
    "/v2/health/live": _Route({"GET": _live}, open=True),
    "/v2/health/ready": _Route({"GET": _ready}, open=True),
    "/v2": _Route({"GET": server_metadata}),
    "/ping": _Route({"GET": _ping}, open=True),
    "/health": _Route({"GET": _ping}, open=True),
    "/invocations": _Route({"POST": invocations}, mlflow=True),
    "/v1/predict": _Route({"POST": _predict}),
    "/openapi.json": _Route({"GET": openapi_json}, open=True),
    "/docs": _Route({"GET": docs_page}, open=True),
}
_LOOKUP_ROUTES = {path: _ROUTES[path]
                  for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health")}
_MODEL_ROUTES = {
    "metadata": _Route({"GET": model_metadata}),
    "ready": _Route({"GET": model_ready}),
    "infer": _Route({"POST": infer}),
}
_DOCS_ASSET = _Route({"GET": docs_asset}, open=True)
# The ``source`` of a logged prediction, by the route that answered it.
_SOURCES = {id(_ROUTES["/v1/predict"]): "rest", id(_ROUTES["/invocations"]): "invocations",
            id(_MODEL_ROUTES["infer"]): "oip-rest"}
# The route label of the metrics: the path, or its template where the path has variable parts.
_ROUTE_LABELS = {id(route): path for path, route in _ROUTES.items()}
_ROUTE_LABELS.update({id(route): "/v2/models/{name}" if action == "metadata"
                      else f"/v2/models/{{name}}/{action}"
                      for action, route in _MODEL_ROUTES.items()})
_ROUTE_LABELS[id(_DOCS_ASSET)] = "/docs/{asset}"
