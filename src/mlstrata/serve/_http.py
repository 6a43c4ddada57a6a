"""The small request/response records and JSON helpers every REST handler shares."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..runtime.inputs import Columns, RecordWarnings
from ..runtime.model import LoadedModel, Predictions
from .errors import RequestError
from .holder import ModelHolder

__all__ = ["Handler", "Request", "Response", "Scoring", "json_response", "media_type",
           "mlstrata_version", "parse_json", "require_json", "served_model"]

JSON = b"application/json"


@dataclass(slots=True)
class Request:
    """What a handler needs of one HTTP request (``params`` holds the path's variable parts)."""

    method: str
    path: str
    headers: dict[bytes, bytes]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: bytes) -> bytes | None:
        """The value of the (lower-case) header ``name``, if sent."""
        return self.headers.get(name)


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Scoring:
    """A checked request waiting for predictions: the app scores ``columns`` with ``model``
    (batched with other requests, see :mod:`mlstrata.serve.batching`), attaches the records'
    contract ``warnings`` and ``answer`` turns the predictions into the response."""

    model: LoadedModel
    columns: Columns
    answer: Callable[[Predictions], Response]
    warnings: RecordWarnings | None = None
    request_id: bytes | None = None
    """The id the prediction log files the request under (None: the app makes one)."""
    records: Sequence[Any] | None = None
    """The request's JSON records, where the log finds each record's business key."""

    @property
    def rows(self) -> int:
        """How many records the request holds."""
        return len(next(iter(self.columns.values()))) if self.columns else 0


Handler = Callable[[ModelHolder, Request], Response | Scoring]


def json_response(value: Any, status: int = 200,
                  headers: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    """A JSON response of ``value`` (numpy values allowed).

    >>> json_response({"ready": True}).body
    b'{"ready":true}'
    """
    return Response(status, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), JSON,
                    headers)


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; a 400 naming the position when it is not JSON.

    >>> parse_json(b'[1, 2')
    Traceback (most recent call last):
    mlstrata.serve.errors.RequestError: malformed JSON: unexpected end of data: line 1 column 6 ...
    """
    if not body:
        raise RequestError(400, "the request body is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from exc


@functools.cache
def mlstrata_version() -> str:
    """The installed mlstrata version, read once: the full distribution's, else the lean
    ``mlstrata-serving`` one's (a container), else the import package's (a serverless bundle
    may carry no metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("mlstrata", "mlstrata-serving"):
        with contextlib.suppress(PackageNotFoundError):
            return version(distribution)
    root: str = sys.modules[__name__.partition(".")[0]].__version__  # imported before us
    return root


def media_type(request: Request, default: bytes = JSON) -> bytes:
    """The request's content type without parameters, lower-case."""
    return (request.header(b"content-type") or default).split(b";")[0].strip().lower()


def require_json(request: Request) -> None:
    """415 unless the request's content type (when sent) is JSON."""
    kind = media_type(request)
    if kind != JSON and not kind.endswith(b"+json"):
        raise RequestError(415, f"content type {kind.decode(errors='replace')!r} is not "
                           "supported here; send application/json")


def served_model(holder: ModelHolder, request: Request) -> LoadedModel:
    """The current model if the path names it (and its version, when given); else 404."""
    model = holder.current
    name, version = request.params.get("name"), request.params.get("version")
    if name != model.name:
        raise RequestError(404, f"model {name!r} is not served here; this server serves "
                           f"{model.name!r}")
    if version is not None and version != str(model.version):
        raise RequestError(404, f"model {name!r} has no version {version!r} here; this server "
                           f"serves version {model.version}")
    return model
