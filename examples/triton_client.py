"""Call a running ``mlstrata serve`` with NVIDIA's Triton clients (Open Inference Protocol v2).

The model's metadata says which input tensors it takes (one per field: numbers as FP64/INT64,
text and dates as BYTES); this script reads records from a JSON file, sends them over REST
(``tritonclient.http``) or gRPC (``tritonclient.grpc``) and prints the labels and probabilities.

Usage: python examples/triton_client.py http|grpc HOST:PORT MODEL records.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

_NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}


def main(protocol: str, url: str, model: str, records_file: str) -> None:
    """Infer the records in ``records_file`` and print one line per record."""
    if protocol == "grpc":
        import tritonclient.grpc as client_module
    else:
        import tritonclient.http as client_module  # type: ignore[no-redef]
    client = client_module.InferenceServerClient(url)
    records: list[dict[str, Any]] = json.loads(open(records_file).read())
    metadata = client.get_model_metadata(model)
    inputs = metadata.inputs if protocol == "grpc" else metadata["inputs"]
    tensors = []
    for spec in inputs:
        name, datatype = (spec.name, spec.datatype) if protocol == "grpc" else (
            spec["name"], spec["datatype"])
        values = [record[name] for record in records]
        array = (np.array([("" if v is None else str(v)).encode() for v in values],
                          dtype=np.object_)
                 if datatype == "BYTES" else np.array(values, dtype=_NUMPY[datatype]))
        tensor = client_module.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    result = client.infer(model, tensors)
    labels, probabilities = result.as_numpy("label"), result.as_numpy("probabilities")
    for label, row in zip(labels.tolist(), probabilities.tolist(), strict=True):
        print(f"{protocol}: label {label}, probabilities {[round(p, 4) for p in row]}")
    client.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
