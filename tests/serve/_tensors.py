"""OIP v2 requests built the way a client from the standard proto builds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlstrata.runtime.signature import Signature
from mlstrata.serve._proto import grpc_predict_v2_pb2 as pb

DATATYPE = {"float": "FP64", "integer": "INT64", "text": "BYTES", "date": "BYTES"}
"""The OIP datatype a client sends for each logical type of an input."""


def typed_infer_request(signature: Signature, records: Sequence[Mapping[str, Any]],
                        model: str, request_id: str = "") -> pb.ModelInferRequest:
    """A gRPC ``ModelInferRequest`` with one ``contents`` tensor of shape [n, 1] per input."""
    request = pb.ModelInferRequest(model_name=model, id=request_id)
    for field in signature.inputs:
        datatype = DATATYPE[field.logical_type]
        tensor = request.inputs.add(name=field.name, datatype=datatype,
                                    shape=[len(records), 1])
        values = [record[field.name] for record in records]
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend(str(v).encode() for v in values)
        elif datatype == "INT64":
            tensor.contents.int64_contents.extend(values)
        else:
            tensor.contents.fp64_contents.extend(values)
    return request
