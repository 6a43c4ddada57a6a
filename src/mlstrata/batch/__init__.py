"""Batch prediction: score a whole file or table with a model package, streaming.

:mod:`.reading` streams an input (CSV, Parquet, JSON Lines, SQLite, DuckDB, PostgreSQL) as Arrow
record batches; :mod:`.scoring` checks each batch against the model's signature and scores the
valid rows with the lean runtime; :mod:`.writing` writes the scored rows atomically (Parquet,
CSV or a database table); :mod:`.predict` ties them together for ``mlstrata predict``;
:mod:`.spark` runs the same scoring on Apache Spark. This package is not the model's runtime
(that is :mod:`mlstrata.runtime`, which it calls) and never imports pandas or scikit-learn.
"""

from __future__ import annotations

__all__: list[str] = []
