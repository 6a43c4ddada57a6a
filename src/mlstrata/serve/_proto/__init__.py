"""Generated Open Inference Protocol v2 gRPC messages (``grpc_predict_v2.proto``).

Only the generated modules live here; README.md says how to regenerate them. The service itself
is :mod:`mlstrata.serve.grpc_server`.
"""

from __future__ import annotations

__all__: list[str] = []
