"""The Open Inference Protocol v2 over gRPC: ``inference.GRPCInferenceService``.

Serves the standard ``grpc_predict_v2.proto`` (ServerLive, ServerReady, ModelReady,
ServerMetadata, ModelMetadata, ModelInfer), so KServe's, MLServer's and Triton's clients
(``tritonclient.grpc``) call the model unchanged. Tensors go through the same codec as REST
(:mod:`mlstrata.serve.tensors`): typed ``contents`` or ``raw_input_contents`` in, and the answer in
the form the request used. Client mistakes get their own status code with a one-line message
naming the tensor or field — ``INVALID_ARGUMENT``, ``NOT_FOUND``, ``UNAUTHENTICATED``,
``RESOURCE_EXHAUSTED`` (a message over the size limit) — never ``INTERNAL``. Records that break
only ``warn`` rules are scored, and the response's ``parameters["warnings"]`` holds them as
JSON text (:func:`~mlstrata.serve.tensors.warning_parameters`).

When an API key is set, every call but the health checks (ServerLive, ServerReady, which load
balancers and Kubernetes probes call without credentials) needs the metadata
``authorization: Bearer KEY`` or ``x-api-key: KEY``.
"""

from __future__ import annotations

import hmac
import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.message import Message

from ..errors import MlstrataError
from ..predlog import PredictionLog
from ..runtime.inputs import InvalidInputError
from ..runtime.model import LoadedModel
from ._http import mlstrata_version
from ._proto import grpc_predict_v2_pb2 as pb
from .errors import RequestError
from .holder import ModelHolder
from .metrics import ServeMetrics
from .tensors import (
    InputTensor,
    OutputTensor,
    decode_raw,
    encode_raw,
    field_lists,
    model_metadata,
    output_tensors,
    warning_parameters,
)

__all__ = ["GrpcServer", "start_grpc_server"]

_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
_OPEN_METHODS = frozenset(f"/{_SERVICE}/{name}" for name in ("ServerLive", "ServerReady"))
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
             "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
             "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}
_STATUS = {401: grpc.StatusCode.UNAUTHENTICATED, 404: grpc.StatusCode.NOT_FOUND,
           413: grpc.StatusCode.RESOURCE_EXHAUSTED}

# New request ids (for the log): a random per-process prefix and a counter.
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)

_Behaviour = Callable[[Any, grpc.ServicerContext], Message]


class GrpcServer:
    """A started gRPC server; ``port`` is the port it listens on (the one chosen for port 0)."""

    def __init__(self, server: grpc.Server, executor: futures.ThreadPoolExecutor,
                 port: int) -> None:
        self._server = server
        self._executor = executor
        self.port = port

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let calls in flight finish for up to ``grace`` seconds, then close."""
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=True)


def start_grpc_server(
    holder: ModelHolder,
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    api_key: str | None = None,
    max_message_bytes: int = 4 * 1024 * 1024,
    workers: int = 4,
    metrics: ServeMetrics | None = None,
    prediction_log: PredictionLog | None = None,
) -> GrpcServer:
    """Serve ``holder``'s current model over OIP v2 gRPC on ``host:port`` (0: any free port).

    ``max_message_bytes`` bounds a request (larger ones get ``RESOURCE_EXHAUSTED``); ``workers``
    calls run at once; with ``metrics`` every call is counted there (as REST requests are,
    under the route ``/inference.GRPCInferenceService/<Call>`` and the status code's name).
    With a ``prediction_log`` every answered ModelInfer is logged (source ``oip-grpc``) under
    the request's ``id``, or a new id sent back in the trailing metadata ``x-request-id``.
    Raises :class:`~mlstrata.errors.MlstrataError` when the address cannot be
    bound (e.g. the port is taken).
    """
    if metrics is not None and prediction_log is not None:
        metrics.watch_log(prediction_log)
    executor = futures.ThreadPoolExecutor(max_workers=workers,
                                          thread_name_prefix="mlstrata-grpc")
    server = grpc.server(
        executor, handlers=[_handlers(_Service(holder, metrics, prediction_log), metrics)],
        interceptors=[_ApiKeyCheck(api_key)] if api_key else None,
        # so_reuseport off: a second server on a taken port fails instead of sharing it.
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.so_reuseport", 0)])
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        raise MlstrataError(f"cannot serve gRPC on {address}: the port is taken or the address "
                            "is not one of this machine's; choose another --grpc-port") from exc
    server.start()
    return GrpcServer(server, executor, bound)


class _Service:
    """The six OIP v2 calls; each reads ``holder.current`` once and uses it to the end."""

    def __init__(self, holder: ModelHolder, metrics: ServeMetrics | None = None,
                 log: PredictionLog | None = None) -> None:
        self._holder = holder
        self._metrics = metrics
        self._log = log

    def server_live(self, request: pb.ServerLiveRequest,
                    context: grpc.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    def server_ready(self, request: pb.ServerReadyRequest,
                     context: grpc.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    def model_ready(self, request: pb.ModelReadyRequest,
                    context: grpc.ServicerContext) -> pb.ModelReadyResponse:
        try:
            _require_served(self._holder.current, request.name, request.version)
        except RequestError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    def server_metadata(self, request: pb.ServerMetadataRequest,
                        context: grpc.ServicerContext) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="mlstrata", version=mlstrata_version())

    def model_metadata(self, request: pb.ModelMetadataRequest,
                       context: grpc.ServicerContext) -> pb.ModelMetadataResponse:
        model = self._holder.current
        _require_served(model, request.name, request.version)
        metadata = model_metadata(model)
        return pb.ModelMetadataResponse(
            name=metadata["name"], versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**spec)
                    for spec in metadata["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**spec)
                     for spec in metadata["outputs"]])

    def model_infer(self, request: pb.ModelInferRequest,
                    context: grpc.ServicerContext) -> pb.ModelInferResponse:
        began = time.perf_counter()
        model = self._holder.current
        _require_served(model, request.model_name, request.model_version)
        lists = field_lists(model.signature, _input_tensors(request))
        if self._log is None:
            predictions, columns = model.predict_columns(lists, text_source=True), None
        else:  # the log needs the typed columns too
            checked = model.check_columns(lists, text_source=True)
            predictions = model.score(checked.columns).with_warnings(checked.warnings)
            columns = checked.columns
        if self._metrics is not None:
            self._metrics.scored(model, predictions)
            self._metrics.answered(f"/{_SERVICE}/ModelInfer", len(predictions), predictions)
        outputs = output_tensors(model.signature, predictions,
                                 [output.name for output in request.outputs])
        response = _response(model, request.id, outputs, raw=bool(request.raw_input_contents))
        for name, text in warning_parameters(predictions).items():
            response.parameters[name].string_param = text
        if self._log is not None and columns is not None:
            request_id = request.id or f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"
            self._log.log_predictions(model, request_id=request_id, source="oip-grpc",
                                      columns=columns, predictions=predictions,
                                      latency_ms=(time.perf_counter() - began) * 1000)
            if not request.id:
                context.set_trailing_metadata((("x-request-id", request_id),))
        return response


def _handlers(service: _Service, metrics: ServeMetrics | None) -> grpc.GenericRpcHandler:
    """The service's method table, each call answering client mistakes with a status code."""
    methods: dict[str, tuple[_Behaviour, type[Message]]] = {
        "ServerLive": (service.server_live, pb.ServerLiveRequest),
        "ServerReady": (service.server_ready, pb.ServerReadyRequest),
        "ModelReady": (service.model_ready, pb.ModelReadyRequest),
        "ServerMetadata": (service.server_metadata, pb.ServerMetadataRequest),
        "ModelMetadata": (service.model_metadata, pb.ModelMetadataRequest),
        "ModelInfer": (service.model_infer, pb.ModelInferRequest),
    }
    return grpc.method_handlers_generic_handler(_SERVICE, {
        name: grpc.unary_unary_rpc_method_handler(
            _answering(behaviour, f"/{_SERVICE}/{name}", metrics),
            request_deserializer=request_type.FromString,
            response_serializer=_serialize)
        for name, (behaviour, request_type) in methods.items()})


def _answering(behaviour: _Behaviour, route: str, metrics: ServeMetrics | None) -> _Behaviour:
    def call(request: Any, context: grpc.ServicerContext) -> Message:
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN  # what gRPC answers for an unexpected exception
        try:
            answer = behaviour(request, context)
            code = grpc.StatusCode.OK
            return answer
        except RequestError as exc:
            code = _STATUS.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT)
            context.abort(code, str(exc))
        except InvalidInputError as exc:
            code = grpc.StatusCode.INVALID_ARGUMENT
            if metrics is not None:
                metrics.refused(exc.problems)
            context.abort(code, str(exc))
        finally:
            if metrics is not None:
                metrics.request(route, code.name, time.perf_counter() - started)

    return call


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _require_served(model: LoadedModel, name: str, version: str) -> None:
    if name != model.name:
        raise RequestError(404, f"model {name!r} is not served here; this server serves "
                           f"{model.name!r}")
    if version and version != str(model.version):
        raise RequestError(404, f"model {name!r} version {version!r} is not served here; this "
                           f"server serves version {model.version} (or send no version)")


def _input_tensors(request: pb.ModelInferRequest) -> list[InputTensor]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise RequestError(400, f"raw_input_contents has {len(raw)} entries for "
                           f"{len(request.inputs)} input tensors; send one per input, in order")
    tensors = []
    for index, tensor in enumerate(request.inputs):
        if raw and tensor.HasField("contents"):
            raise RequestError(400, f"input tensor {tensor.name!r}: send its data either in "
                               "contents or in raw_input_contents, not both")
        data = (decode_raw(tensor.datatype, raw[index], tensor.name) if raw
                else _typed_values(tensor))
        tensors.append(InputTensor(tensor.name, tensor.datatype, tuple(tensor.shape), data))
    return tensors


def _typed_values(tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    field = _CONTENTS.get(tensor.datatype)
    if field is None:
        raise RequestError(400, f"input tensor {tensor.name!r}: datatype {tensor.datatype!r} "
                           f"cannot be sent in contents; use one of {sorted(_CONTENTS)} (FP16 "
                           "only in raw_input_contents)")
    return list(getattr(tensor.contents, field))


def _response(model: LoadedModel, request_id: str, outputs: Sequence[OutputTensor], *,
              raw: bool) -> pb.ModelInferResponse:
    """The answer, in ``raw_output_contents`` when the request was raw (as Triton does)."""
    response = pb.ModelInferResponse(model_name=model.name, model_version=str(model.version),
                                     id=request_id)
    for tensor in outputs:
        output = response.outputs.add(name=tensor.name, datatype=tensor.datatype,
                                      shape=tensor.shape)
        if raw:
            response.raw_output_contents.append(encode_raw(tensor))
        elif tensor.datatype == "BYTES":
            output.contents.bytes_contents.extend(str(value).encode() for value in tensor.data)
        else:
            getattr(output.contents, _CONTENTS[tensor.datatype]).extend(tensor.data)
    return response


class _ApiKeyCheck(grpc.ServerInterceptor):
    """Lets a call through when its metadata carries the API key (compared in constant time)."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key.encode()
        self._refuse_missing = _refusal("this server needs an API key: send the metadata "
                                        "'authorization: Bearer KEY' or 'x-api-key: KEY'")
        self._refuse_wrong = _refusal("the API key sent is not this server's key")

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler_call_details.method in _OPEN_METHODS:
            return continuation(handler_call_details)
        sent = _sent_key(handler_call_details.invocation_metadata)
        if sent is None:
            return self._refuse_missing
        if not hmac.compare_digest(sent, self._key):
            return self._refuse_wrong
        return continuation(handler_call_details)


def _sent_key(metadata: Sequence[tuple[str, str | bytes]]) -> bytes | None:
    for key, value in metadata:
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if key == "x-api-key":
            return text.encode()
        if key == "authorization" and text[:7].lower() == "bearer ":
            return text[7:].strip().encode()
    return None


def _refusal(message: str) -> grpc.RpcMethodHandler[Any, Any]:
    def refuse(request: Any, context: grpc.ServicerContext) -> Message:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(refuse)
