"""mlstrata: take a tabular ML project through the data, model and code strata.

The Python API mirrors the CLI (``mlstrata ingest`` ↔ :func:`mlstrata.ingest`); results are report
objects that render in Jupyter. This package is not a model-training library of its own: it
composes DuckDB, pyarrow and (later) scikit-learn, MLflow and onnxruntime.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
