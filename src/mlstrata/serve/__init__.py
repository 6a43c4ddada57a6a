"""Model-as-service: the REST (Open Inference Protocol v2, MLflow scoring, ``/v1/predict``) and
gRPC front ends over the lean runtime.

Imports the runtime, the HTTP and gRPC layers and nothing of training (no scikit-learn, pandas,
MLflow or DuckDB: import-linter enforces it), so a serving image stays small.
"""

from __future__ import annotations

__all__: list[str] = []
