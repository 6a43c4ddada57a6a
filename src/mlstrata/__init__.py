"""mlstrata: take a tabular ML project through the data, model and code strata.

The Python API mirrors the CLI (``mlstrata ingest`` ↔ :func:`mlstrata.ingest`); results are report
objects that render in Jupyter. This package is not a model-training library of its own: it
composes DuckDB, pyarrow and well-kept ML libraries, and keeps every artifact in a workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import MlstrataError

if TYPE_CHECKING:
    from .api import (
        clean,
        infer_contract,
        ingest,
        init,
        load_contract,
        open_workspace,
        profile,
        run,
        split,
        synth_credit,
        validate,
    )

__version__ = "0.1.0"

__all__ = [
    "MlstrataError",
    "__version__",
    "clean",
    "infer_contract",
    "ingest",
    "init",
    "load_contract",
    "open_workspace",
    "profile",
    "run",
    "split",
    "synth_credit",
    "validate",
]

_API = frozenset(__all__) - {"MlstrataError", "__version__"}


def __getattr__(name: str) -> Any:
    """Import the API (and DuckDB with it) on first use, so ``mlstrata.contract`` loads alone."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlstrata' has no attribute {name!r}")
