"""The lean runtime: what a serving process needs to turn records into predictions.

Depends on numpy (and, for inference, onnxruntime) only — never on pandas, scikit-learn, MLflow
or DuckDB (import-linter enforces it). Training-time code reuses its input transforms so that
training and serving compute features the same way.
"""

from __future__ import annotations

__all__: list[str] = []
