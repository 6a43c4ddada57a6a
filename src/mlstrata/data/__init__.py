"""The data stratum: ingest, PII, profile, validate, clean, split and synthetic data.

Each module owns one stage; stages read and write dataset versions through the workspace store and
compute out of core with DuckDB. Model training and serving are not here.
"""

from __future__ import annotations

__all__: list[str] = []
