"""``POST /v1/feedback``: ground-truth labels for predictions this server logged.

The body is one object or a list of them: ``{"request_id": ..., "record": 0, "label": ...}``
(``record`` optional: without it the label is for every record of the request) or
``{"key": ..., "label": ...}`` (the business key the prediction was logged with). Labels are
checked against the served model: one of its classes (as the model answers them, or spelled
as JSON object keys: ``"1"``, ``"true"``), or a number for a regressor.

Answers ``{"accepted": n, "unmatched": m}``: accepted items are written to the prediction log
as feedback lines; an item naming no logged prediction is counted as unmatched and not written.
A single object naming an unknown request id (or key) is a 404; a malformed body or label is a
400 naming the item, and nothing is written. A server without a prediction log answers 404.

A request id is known when this process logged it recently, or when the log holds it (another
worker's, or an older one): the handler runs in a worker thread, since the latter reads the log.
"""

from __future__ import annotations

from ..predlog import FeedbackError, PredictionLog, match_feedback, parse_feedback
from ._http import Handler, Request, Response, json_response, parse_json, require_json
from .errors import RequestError
from .holder import ModelHolder

__all__ = ["feedback_handler"]


def feedback_handler(log: PredictionLog | None) -> Handler:
    """The ``POST /v1/feedback`` handler writing to ``log`` (refusing when there is none)."""

    def feedback(holder: ModelHolder, request: Request) -> Response:
        if log is None:
            raise RequestError(404, "this server keeps no prediction log (it was started with "
                               "--no-log or outside a workspace), so it has no predictions to "
                               "attach feedback to")
        require_json(request)
        payload = parse_json(request.body)
        model = holder.current
        try:
            items = parse_feedback(payload, model.name, model.signature.classes,
                                   model.signature.task)
        except FeedbackError as exc:
            raise RequestError(400, str(exc)) from exc
        matched, unmatched = match_feedback(log, model.name, items)
        if isinstance(payload, dict) and unmatched:
            item = unmatched[0]
            named = (f"request id {item.request_id!r}" + (f" record {item.record}"
                                                           if item.record is not None else "")
                     if item.request_id is not None else f"key {item.key!r}")
            raise RequestError(404, f"no logged prediction of {model.name} has {named}; send "
                               "the X-Request-Id (or key) of an answered prediction")
        log.log_feedback(matched)
        return json_response({"accepted": len(matched), "unmatched": len(unmatched)})

    return feedback
