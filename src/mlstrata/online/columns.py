"""Which contract columns an online model leaves out of its features, and why.

Decided once, when the model is created, by the rules batch training applies, from the
evidence there is:

- the contract: a ``unique`` column is an identifier; a text column whose ``allowed`` values
  are more than ``model.features.max_onehot_levels`` has too many categories;
- the dataset it is created (or warm-started) from, when there is one: a column the leakage
  guard's identifier rule flags (a distinct value per row that is text, has an id-like name or
  counts rows: ``model.leakage.identifier_reason``), a text column with more distinct values
  than ``max_onehot_levels`` (``model.features.too_many_levels``: training target-encodes it,
  River's one-hot encoder would add a weight per value — thousands for a postal code), and a
  column whose values were hashed or masked at ingest (the dataset holds digests or masks, live
  events the raw values: what was learnt from one says nothing about the other).

Each finding is ``{column, reason, detail}`` with reason ``unique``, ``identifier``, ``pii`` or
``high_cardinality``; :func:`~mlstrata.online.spec.build_spec` leaves the columns out unless
``online.keep`` names them, and the spec records the findings (``mlstrata online show``).

>>> from mlstrata.contract import Contract
>>> contract = Contract.model_validate({"columns": {
...     "id": {"type": "text", "unique": True}, "city": {"type": "text"},
...     "y": {"type": "boolean"}}})
>>> [f["column"] + ": " + f["reason"] for f in left_out(contract, "y")]
['id: unique']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..config import FeatureConfig
from ..contract import ColumnSpec, Contract

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SAMPLE_ROWS", "left_out"]

SAMPLE_ROWS = 100_000
"""At most this many rows of the dataset are looked at (a seeded sample beyond)."""


def left_out(contract: Contract, target: str, *, rows: pd.DataFrame | None = None,
             pii: Iterable[Mapping[str, Any]] = (), source: str = "the dataset",
             config: FeatureConfig | None = None) -> list[dict[str, str]]:
    """The findings for the contract's columns (the target excepted), in contract order.

    ``rows`` are the dataset's rows (any columns missing from it are judged by the contract
    alone), ``pii`` its catalog's PII findings, ``source`` its name for the details, ``config``
    the project's ``model.features`` (``max_onehot_levels``)."""
    from ..data.contract_infer import transformed_pii

    features = config or FeatureConfig()
    transformed = transformed_pii(pii)
    findings = []
    for name, spec in contract.columns.items():
        if name == target:
            continue
        reason, detail = _finding(name, spec, rows, transformed.get(name), source, features)
        if reason:
            findings.append({"column": name, "reason": reason, "detail": detail})
    return findings


def _finding(name: str, spec: ColumnSpec, rows: pd.DataFrame | None, transformed: str | None,
             source: str, config: FeatureConfig) -> tuple[str, str]:
    """The most telling reason to leave one column out, with its detail, or ``("", "")``."""
    if spec.unique:
        return "unique", "the contract marks it unique (an identifier)"
    if transformed:
        return "pii", (f"PII {transformed} at ingest: {source} holds {transformed} values, "
                       "live events the raw ones")
    if rows is not None and name in rows.columns:
        return _from_rows(name, spec, rows[name], source, config)
    from ..model.features import too_many_levels

    if spec.type == "text" and spec.allowed and too_many_levels(len(spec.allowed), config):
        return "high_cardinality", _many(f"the contract allows {len(spec.allowed)} values",
                                         config)
    return "", ""


def _from_rows(name: str, spec: ColumnSpec, values: pd.Series, source: str,
               config: FeatureConfig) -> tuple[str, str]:
    """The identifier rule, then the one-hot limit, on the column's values in the dataset."""
    from ..data.types import ColumnInfo, duckdb_type
    from ..model.features import too_many_levels
    from ..model.leakage import identifier_reason

    why = identifier_reason(values, ColumnInfo(name, spec.type, duckdb_type(spec.type)))
    if why:
        return "identifier", f"{why} in {source}"
    levels = int(values.nunique())
    if spec.type == "text" and too_many_levels(levels, config):
        return "high_cardinality", _many(f"{levels:,} distinct values in {source}", config)
    return "", ""


def _many(count: str, config: FeatureConfig) -> str:
    return (f"{count}, more than model.features.max_onehot_levels ({config.max_onehot_levels}):"
            " one-hot encoding would add a weight for each")
