"""The serverless bridge translates each platform's request into the ASGI call the server would
get, and the answer back, without losing a header, a query value, a cookie or a byte.

An echo app shows what reached it; the bundles themselves run in tests/deploy/test_serverless.py.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mlstrata.errors import MlstrataError
from mlstrata.serve import functions
from mlstrata.serve.app import Message, Receive, Scope, Send
from mlstrata.serve.functions import AsgiInvoker, HttpCall

EVENTS = Path(__file__).parent.parent / "deploy" / "events"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers what it was asked, as JSON; ``/binary`` answers raw bytes and two cookies."""
    if scope["type"] != "http":
        return
    message: Message = await receive()
    if scope["path"] == "/binary":
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/octet-stream"), (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"), (b"x-twice", b"1"), (b"x-twice", b"2")]})
        await send({"type": "http.response.body", "body": b"\x00\xff" + message["body"]})
        return
    body = json.dumps({"method": scope["method"], "path": scope["path"],
                       "query": scope["query_string"].decode(),
                       "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                       "body": message["body"].decode()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture()
def echoing(monkeypatch: pytest.MonkeyPatch) -> AsgiInvoker:
    invoker = AsgiInvoker(echo)
    monkeypatch.setattr(functions, "_INVOKER", invoker)
    return invoker


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def _seen(answer: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads(answer["body"])
    return seen


def test_rest_api_events_keep_repeated_headers_and_query_values(echoing: AsgiInvoker) -> None:
    event = _event("apigateway-aws-proxy.json")
    event["multiValueQueryStringParameters"] = {"foo": ["bar", "baz"], "x": ["1 2"]}
    event["multiValueHeaders"]["X-Many"] = ["one", "two"]
    answer = functions.aws_handler(event, None)
    seen = _seen(answer)
    assert (seen["method"], seen["path"]) == ("POST", "/path/to/resource")
    assert seen["query"] == "foo=bar&foo=baz&x=1+2"
    assert ["x-many", "one"] in seen["headers"] and ["x-many", "two"] in seen["headers"]
    assert seen["body"] == '{"test":"body"}'  # the fixture's base64 body, decoded
    assert ["content-length", "15"] in seen["headers"]
    assert set(answer) == {"statusCode", "multiValueHeaders", "body", "isBase64Encoded"}
    assert answer["multiValueHeaders"] == {"content-type": ["application/json"]}


def test_rest_api_events_without_multi_value_headers_answer_plain_headers(
        echoing: AsgiInvoker) -> None:
    event = _event("apigateway-aws-proxy.json")
    for key in ("multiValueHeaders", "multiValueQueryStringParameters"):
        del event[key]
    event.update(body="plain text", isBase64Encoded=False, path="/binary")
    answer = functions.aws_handler(event, None)
    assert answer["statusCode"] == 201 and answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == b"\x00\xffplain text"
    assert answer["headers"]["x-twice"] == "1, 2"


def test_http_api_events_join_cookies_and_drop_a_named_stage(echoing: AsgiInvoker) -> None:
    event = _event("apigateway-http-api-proxy.json")
    event["rawPath"] = "/live/v2/models/credit%20model/infer"
    event["requestContext"]["stage"] = "live"
    seen = _seen(functions.aws_handler(event, None))
    assert seen["path"] == "/v2/models/credit model/infer"
    assert seen["query"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert ["cookie", "cookie1; cookie2"] in seen["headers"]
    assert ["header2", "value1,value2"] in seen["headers"]


def test_http_api_answers_put_cookies_apart_and_join_repeated_headers(
        echoing: AsgiInvoker) -> None:
    event = _event("lambda-function-url.json")
    event["rawPath"] = "/binary"
    answer = functions.aws_handler(event, None)
    assert answer["cookies"] == ["a=1", "b=2"]
    assert answer["headers"] == {"content-type": "application/octet-stream", "x-twice": "1, 2"}
    assert base64.b64decode(answer["body"]) == b"\x00\xffHello from client!"


def test_an_event_that_is_not_http_is_refused(echoing: AsgiInvoker) -> None:
    with pytest.raises(MlstrataError, match="HTTP events only"):
        functions.aws_handler({"Records": []}, None)


def test_google_and_azure_requests_reach_the_app_whole(echoing: AsgiInvoker) -> None:
    import azure.functions as func
    from flask import Flask, Request
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path="/v1/predict", method="POST", query_string="a=1&a=2",
                             data=b'{"x": 1}', headers=[("Content-Type", "application/json"),
                                                        ("X-Request-Id", "r-1")]).get_environ()
    with Flask(__name__).app_context():
        answer = functions.gcp_handler(Request(environ))
    seen = json.loads(answer.get_data())
    assert (seen["path"], seen["query"], seen["body"]) == ("/v1/predict", "a=1&a=2", '{"x": 1}')
    assert ["x-request-id", "r-1"] in seen["headers"]
    assert answer.status_code == 200 and answer.mimetype == "application/json"

    request = func.HttpRequest("POST", "https://app.azurewebsites.net/v1/predict?a=1&a=2",
                               headers={"Content-Type": "application/json"}, body=b"[]")
    response = functions.azure_main(request)
    seen = json.loads(response.get_body())
    assert (seen["path"], seen["query"], seen["body"]) == ("/v1/predict", "a=1&a=2", "[]")
    assert response.mimetype == "application/json" and response.status_code == 200


def test_a_forked_process_starts_its_own_loop() -> None:
    invoker = AsgiInvoker(echo)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover — runs in the child
        answer = invoker(HttpCall("GET", "/in-child"))
        os.write(write, answer.body)
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    assert status == 0
    assert json.loads(os.read(read, 65536))["path"] == "/in-child"
    os.close(read)


def test_the_environment_configures_the_app_like_the_server(
        credit_package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSTRATA_MODEL", str(credit_package))
    monkeypatch.setenv("MLSTRATA_API_KEY", "s3cret")
    monkeypatch.setenv("MLSTRATA_MAX_BODY", "10")
    invoker = AsgiInvoker(functions.app_from_environment())
    assert invoker(HttpCall("GET", "/v2/health/ready")).status == 200  # open, like the server
    refused = invoker(HttpCall("GET", "/v2"))
    assert refused.status == 401 and b"needs an API key" in refused.body
    key = ((b"authorization", b"Bearer s3cret"),)
    assert invoker(HttpCall("GET", "/v2", headers=key)).status == 200
    too_big = invoker(HttpCall("POST", "/v1/predict", headers=key, body=b"[" + b" " * 20 + b"]"))
    assert too_big.status == 413 and b"at most 10" in too_big.body
    monkeypatch.setenv("MLSTRATA_MAX_BODY", "lots")
    with pytest.raises(MlstrataError, match="MLSTRATA_MAX_BODY='lots' is not a positive"):
        functions.app_from_environment()
