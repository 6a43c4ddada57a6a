"""Serverless front ends: AWS Lambda, Google Cloud Functions and Azure Functions answer exactly
like ``mlstrata serve``.

Each platform hands a function one HTTP request in its own shape. Nothing here re-implements a
route: the request becomes one ASGI HTTP call on the app ``mlstrata serve`` runs
(:func:`~mlstrata.serve.app.create_app`) and its answer goes back in the platform's shape, so
the routes, the predictions and every error body (4xx with ``{"error": ...}``, 422 with
``problems``) are the server's own.

- :func:`aws_handler` takes API Gateway REST API (payload 1.0: ``httpMethod``, ``path``,
  ``multiValueHeaders``, ``multiValueQueryStringParameters``), HTTP API and Lambda Function URL
  events (payload 2.0: ``rawPath``, ``rawQueryString``, ``cookies``; a named stage's prefix is
  removed from the path), bodies in text or base64, and answers in the same payload version;
- :func:`gcp_handler` takes the Flask request functions-framework gives a Google Cloud Function;
- :func:`azure_main` takes an ``azure.functions.HttpRequest``, returns an ``HttpResponse``.

The app is built once per process — the cold start — from environment variables: the package
in ``MLSTRATA_MODEL`` (bundles point it at the package they carry), ``MLSTRATA_API_KEY`` (then
requests need ``Authorization: Bearer KEY``, health checks stay open), ``MLSTRATA_STRICT=1``
(warn rules refuse too), ``MLSTRATA_MAX_BODY`` (bytes, default 1,000,000) and
``MLSTRATA_THREADS`` (onnxruntime threads, default 1). There is no ``/metrics`` (an instance
would count only what it answered; the platforms meter invocations) and no prediction log (a
frozen function cannot drain a queue).

The app runs on one event loop in a daemon thread; every call is handed to it, so hosts that
answer from many threads (functions-framework under gunicorn, the Azure worker's thread pool)
are safe, and requests that arrive together are scored together. Only the standard library and
the app are imported: no uvicorn, no gRPC.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import os
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MlstrataError
from .app import ASGIApp, Message, create_app
from .holder import ModelHolder

__all__ = ["AsgiInvoker", "HttpAnswer", "HttpCall", "app_from_environment", "aws_handler",
           "azure_main", "gcp_handler", "invoker"]

MODEL_ENV = "MLSTRATA_MODEL"
_TEXT_TYPES = (b"application/json", b"application/javascript", b"application/xml")
_HOP_BY_HOP = {b"content-length", b"connection", b"transfer-encoding"}


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request, whatever platform delivered it (header names lower-case)."""

    method: str
    path: str
    query: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class HttpAnswer:
    """The app's answer to an :class:`HttpCall`."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    @property
    def content_type(self) -> bytes:
        """The ``content-type`` header ("" when none)."""
        return next((value for name, value in self.headers if name == b"content-type"), b"")

    @property
    def is_text(self) -> bool:
        """Whether the body is text (JSON, HTML, CSS...) rather than bytes (Triton binary data).

        >>> HttpAnswer(200, ((b"content-type", b"application/json"),), b"{}").is_text
        True
        >>> HttpAnswer(200, ((b"content-type", b"application/octet-stream"),), b"").is_text
        False
        """
        kind = self.content_type.split(b";")[0].strip().lower()
        return kind.startswith(b"text/") or kind in _TEXT_TYPES or kind.endswith(b"+json")

    def text(self) -> str:
        """The body as text (UTF-8)."""
        return self.body.decode("utf-8")


class AsgiInvoker:
    """Calls an ASGI app synchronously: one event loop in a daemon thread, started (with the
    app's lifespan startup) when this is made, and one HTTP call per :meth:`__call__`.

    >>> async def hello(scope, receive, send):
    ...     if scope["type"] == "http":
    ...         await send({"type": "http.response.start", "status": 200, "headers": []})
    ...         await send({"type": "http.response.body", "body": scope["path"].encode()})
    >>> AsgiInvoker(hello)(HttpCall("GET", "/ping")).body
    b'/ping'
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._start()
        atexit.register(self.close)

    def _start(self) -> None:
        """A new loop in a new thread, and the lifespan startup on it. A forked process (a
        gunicorn worker of functions-framework) has no copy of the thread: it starts its own."""
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="mlstrata-function",
                         daemon=True).start()
        self._inbox: asyncio.Queue[Message] | None = None
        self._lifespan: asyncio.Future[None] | None = None
        self._run(self._startup())

    def close(self) -> None:
        """The lifespan shutdown (the app's shutdown steps run), then the loop stops."""
        if os.getpid() != self._pid:
            return
        if self._lifespan is not None and not self._lifespan.done():
            with contextlib.suppress(Exception):
                self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def __call__(self, call: HttpCall) -> HttpAnswer:
        """The app's answer to ``call`` (blocks until it is complete)."""
        if os.getpid() != self._pid:
            with _INVOKER_LOCK:
                if os.getpid() != self._pid:
                    self._start()
        answer: HttpAnswer = self._run(self._http(call))
        return answer

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _startup(self) -> None:
        """The ASGI lifespan startup; an app without lifespan support is started as it is."""
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._inbox = inbox
        started = self._loop.create_future()

        async def send(message: Message) -> None:
            if not started.done():
                started.set_result(message)

        async def lifespan() -> None:
            with contextlib.suppress(Exception):  # ASGI: an app may refuse the lifespan scope
                await self._app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                inbox.get, send)
            if not started.done():  # it returned or raised without starting: run it as it is
                started.set_result({"type": "lifespan.startup.complete"})

        await inbox.put({"type": "lifespan.startup"})
        self._lifespan = asyncio.ensure_future(lifespan())  # kept alive for the process
        message = await started
        if message["type"] == "lifespan.startup.failed":
            raise MlstrataError(f"the app failed to start: {message.get('message', '')}")

    async def _shutdown(self) -> None:
        assert self._inbox is not None and self._lifespan is not None
        await self._inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(self._lifespan, 5)

    async def _http(self, call: HttpCall) -> HttpAnswer:
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": call.method.upper(), "scheme": "https",
            "path": call.path, "raw_path": urllib.parse.quote(call.path).encode(),
            "query_string": call.query, "root_path": "", "client": None, "server": None,
            "headers": [*((name, value) for name, value in call.headers
                          if name not in _HOP_BY_HOP),
                        (b"content-length", str(len(call.body)).encode())],
        }
        delivered = False
        status, headers, chunks = 500, [], []

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": call.body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return HttpAnswer(status, tuple((bytes(name).lower(), bytes(value))
                                        for name, value in headers
                                        if bytes(name).lower() not in _HOP_BY_HOP),
                          b"".join(chunks))


def app_from_environment(default_model: Path | None = None) -> ASGIApp:
    """The REST app over the package ``MLSTRATA_MODEL`` names (else ``default_model``)."""
    model = os.environ.get(MODEL_ENV) or (str(default_model) if default_model else None)
    if not model:
        raise MlstrataError(f"{MODEL_ENV} is not set; set it to the package directory to serve")
    directory = Path(model).resolve()
    holder = ModelHolder(lambda: directory, threads=_number("MLSTRATA_THREADS", 1),
                         strict=os.environ.get("MLSTRATA_STRICT") == "1")
    return create_app(holder, api_key=os.environ.get("MLSTRATA_API_KEY") or None,
                      max_body_bytes=_number("MLSTRATA_MAX_BODY", 1_000_000))


def _number(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise MlstrataError(f"{variable}={text!r} is not a positive whole number; set it to "
                            f"one (default {default}) or unset it")
    return int(text)


_INVOKER: AsgiInvoker | None = None
_INVOKER_LOCK = threading.Lock()


def invoker(default_model: Path | None = None) -> AsgiInvoker:
    """This process's invoker of the app (built on the first call: the cold start)."""
    global _INVOKER
    with _INVOKER_LOCK:
        if _INVOKER is None:
            _INVOKER = AsgiInvoker(app_from_environment(default_model))
        return _INVOKER


# ---- AWS Lambda: API Gateway REST (1.0), HTTP API and Function URLs (2.0) ----

def aws_handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Answer an API Gateway or Function URL event like ``mlstrata serve`` would."""
    if event.get("version") == "2.0":
        return _aws_answer_v2(invoker()(_aws_call_v2(event)))
    if "httpMethod" in event:
        return _aws_answer_v1(invoker()(_aws_call_v1(event)), "multiValueHeaders" in event)
    raise MlstrataError("this function answers HTTP events only (API Gateway REST or HTTP "
                        "API, or a Lambda Function URL); the event has neither 'httpMethod' "
                        "nor version 2.0")


def _aws_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _encoded(pairs: list[tuple[str, str]]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((_latin1(name.lower()), _latin1(value)) for name, value in pairs)


def _latin1(text: str) -> bytes:
    """A header as HTTP carries it (ISO-8859-1); text beyond it as UTF-8 bytes, not a crash."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _aws_call_v1(event: Mapping[str, Any]) -> HttpCall:
    multi = event.get("multiValueHeaders") or {}
    headers = ([(name, value) for name, values in multi.items() for value in values or ()]
               if multi else list((event.get("headers") or {}).items()))
    query_lists = event.get("multiValueQueryStringParameters") or {
        name: [value] for name, value in (event.get("queryStringParameters") or {}).items()}
    query = urllib.parse.urlencode([(name, value) for name, values in query_lists.items()
                                    for value in values or ()])
    return HttpCall(event["httpMethod"], event.get("path") or "/", query.encode(),
                    _encoded(headers), _aws_body(event))


def _aws_call_v2(event: Mapping[str, Any]) -> HttpCall:
    context = event.get("requestContext") or {}
    path = event.get("rawPath") or "/"
    stage = context.get("stage")
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        path = path[len(stage) + 1:] or "/"
    headers = list((event.get("headers") or {}).items())
    if event.get("cookies"):
        headers.append(("cookie", "; ".join(event["cookies"])))
    return HttpCall(context.get("http", {}).get("method", "GET"), urllib.parse.unquote(path),
                    (event.get("rawQueryString") or "").encode(), _encoded(headers),
                    _aws_body(event))


def _aws_body_fields(answer: HttpAnswer) -> dict[str, Any]:
    if answer.is_text:
        return {"body": answer.text(), "isBase64Encoded": False}
    return {"body": base64.b64encode(answer.body).decode(), "isBase64Encoded": True}


def _aws_answer_v1(answer: HttpAnswer, multi: bool) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for name, value in answer.headers:
        grouped.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    headers: dict[str, Any] = ({"multiValueHeaders": grouped} if multi else
                               {"headers": {name: ", ".join(values)
                                            for name, values in grouped.items()}})
    return {"statusCode": answer.status, **headers, **_aws_body_fields(answer)}


def _aws_answer_v2(answer: HttpAnswer) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies = []
    for name, value in answer.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        if key == "set-cookie":
            cookies.append(text)
        else:
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
    result: dict[str, Any] = {"statusCode": answer.status, "headers": headers,
                              **_aws_body_fields(answer)}
    if cookies:
        result["cookies"] = cookies
    return result


# ---- Google Cloud Functions (functions-framework: a Flask request) ----

def gcp_handler(request: Any) -> Any:
    """Answer the Flask request of an HTTP Cloud Function; returns a ``flask.Response``."""
    import flask

    call = HttpCall(request.method, request.path, request.query_string,
                    _encoded(list(request.headers.items())), request.get_data())
    answer = invoker()(call)
    return flask.Response(answer.body, status=answer.status,
                          headers=[(name.decode("latin-1"), value.decode("latin-1"))
                                   for name, value in answer.headers])


# ---- Azure Functions (Python programming model v2) ----

def azure_main(req: Any) -> Any:
    """Answer an ``azure.functions.HttpRequest``; returns an ``azure.functions.HttpResponse``.

    The function app's ``host.json`` sets ``routePrefix`` to "" so paths are the server's.
    """
    import azure.functions as func

    url = urllib.parse.urlsplit(req.url)
    call = HttpCall(req.method, urllib.parse.unquote(url.path) or "/", url.query.encode(),
                    _encoded(list(req.headers.items())), req.get_body() or b"")
    answer = invoker()(call)
    kind, _, parameters = answer.content_type.decode("latin-1").partition(";")
    charset = parameters.partition("charset=")[2].strip() or None
    return func.HttpResponse(
        answer.body, status_code=answer.status, mimetype=kind.strip() or None, charset=charset,
        headers={name.decode("latin-1"): value.decode("latin-1")
                 for name, value in answer.headers if name != b"content-type"})
