"""Errors a client causes, with the HTTP status (and gRPC code) that reports them."""

from __future__ import annotations

from ..errors import MlstrataError

__all__ = ["RequestError"]


class RequestError(MlstrataError):
    """A request the server refuses: ``status`` is the HTTP 4xx code; the message names the part.

    >>> error = RequestError(404, "model 'x' is not served here")
    >>> error.status, str(error)
    (404, "model 'x' is not served here")
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
