"""Which contract columns an online model leaves out of its features, and why.

Decided once, when the model is created, by the rules batch training applies, from the
evidence there is:

- the contract: a ``unique`` column is an identifier; a text column whose ``allowed`` values
  are more than ``model.features.max_onehot_levels`` has too many categories;
- the dataset it is created (or warm-started) from, when there is one (all its rows, counted in
  one query): a column the leakage
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
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import FeatureConfig
from ..contract import ColumnSpec, Contract

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnCounts", "left_out"]


class ColumnCounts(NamedTuple):
    """What the rules need of a column's values in a dataset: how many are present, how many
    distinct, and an integer column's ``(min, max)``."""

    present: int
    distinct: int
    span: tuple[float, float] | None = None


def left_out(contract: Contract, target: str, *, rows: pd.DataFrame | None = None,
             counts: Mapping[str, ColumnCounts] | None = None,
             pii: Iterable[Mapping[str, Any]] = (), source: str = "the dataset",
             config: FeatureConfig | None = None) -> list[dict[str, str]]:
    """The findings for the contract's columns (the target excepted), in contract order.

    ``counts`` are the columns' counts over a whole dataset (one query: see
    :class:`ColumnCounts`), or ``rows`` its rows; a column in neither is judged by the contract
    alone. ``pii`` is its catalog's PII findings, ``source`` its name for the details,
    ``config`` the project's ``model.features`` (``max_onehot_levels``)."""
    from ..data.contract_infer import transformed_pii

    features = config or FeatureConfig()
    transformed = transformed_pii(pii)
    findings = []
    for name, spec in contract.columns.items():
        if name == target:
            continue
        known = counts.get(name) if counts is not None else None
        if known is None and rows is not None and name in rows.columns:
            known = _counted(spec, rows[name])
        reason, detail = _finding(name, spec, known, transformed.get(name), source, features)
        if reason:
            findings.append({"column": name, "reason": reason, "detail": detail})
    return findings


def _finding(name: str, spec: ColumnSpec, counts: ColumnCounts | None, transformed: str | None,
             source: str, config: FeatureConfig) -> tuple[str, str]:
    """The most telling reason to leave one column out, with its detail, or ``("", "")``."""
    if spec.unique:
        return "unique", "the contract marks it unique (an identifier)"
    if transformed:
        return "pii", (f"PII {transformed} at ingest: {source} holds {transformed} values, "
                       "live events the raw ones")
    if counts is not None:
        return _from_counts(name, spec, counts, source, config)
    from ..model.features import too_many_levels

    if spec.type == "text" and spec.allowed and too_many_levels(len(spec.allowed), config):
        return "high_cardinality", _many(f"the contract allows {len(spec.allowed)} values",
                                         config)
    return "", ""


def _counted(spec: ColumnSpec, values: pd.Series) -> ColumnCounts:
    present = values.dropna()
    span = (float(present.min()), float(present.max())) \
        if spec.type == "integer" and len(present) else None
    return ColumnCounts(len(present), int(present.nunique()), span)


def _from_counts(name: str, spec: ColumnSpec, counts: ColumnCounts, source: str,
                 config: FeatureConfig) -> tuple[str, str]:
    """The identifier rule, then the one-hot limit, on the column's counts in the dataset."""
    from ..data.types import ColumnInfo, duckdb_type
    from ..model.features import too_many_levels
    from ..model.leakage import identifier_reason_of

    info = ColumnInfo(name, spec.type, duckdb_type(spec.type))
    why = identifier_reason_of(info, counts.present, counts.distinct, counts.span)
    if why:
        return "identifier", f"{why} in {source}"
    if spec.type == "text" and too_many_levels(counts.distinct, config):
        return "high_cardinality", _many(f"{counts.distinct:,} distinct values in {source}",
                                         config)
    return "", ""


def _many(count: str, config: FeatureConfig) -> str:
    return (f"{count}, more than model.features.max_onehot_levels ({config.max_onehot_levels}):"
            " one-hot encoding would add a weight for each")
