"""Infer an editable data contract from a dataset, in a few DuckDB aggregate passes.

What is inferred, and why it is loosened where it is:

- **types** are the dataset's logical types; **nullable** is true when any value is missing.
- **ranges** of continuous numbers are the observed min/max widened by 10% of their span on each
  side (never across zero, so a non-negative column stays non-negative; integers rounded outward),
  because a new batch legitimately reaches a little past what one sample saw. Dates and timestamps
  get only a widened minimum: new batches are newer, so an upper bound would reject every future
  batch.
- **discrete integers** (at most 20 distinct values: a 0/1 target, a 1-5 rating, a term in months)
  get the observed min/max, unwidened: widening would invent values (a ``default`` of 2). When
  their values form a regular grid with a step above 1 (``term_months`` 12, 24, 36, 48, 60, each
  seen 5 times on average) they get those values as strict ``allowed`` instead, because a value
  off a designed grid (18 months) is a data error. Counts with gaps (0, 1, 2, 5 late payments) keep
  min/max only: an unseen count in between is plausible.
- **allowed categories** for text columns with at most 50 distinct values, each seen 5 times on
  average (``distinct * 5 <= non-null rows``).
- **severity**: what a finite sample saw is not a law, so the observed ranges (``min``/``max``)
  and the text category sets are written as ``warn`` — a new applicant with 14 credit lines
  where training saw at most 13 is scored, with a warning, not refused. Every model mlstrata
  trains has an "other" level for a category it never saw (one-hot ignores it, the ordinal and
  target encoders map it to an unknown level), so an unseen category can be scored too. Types,
  nullability, patterns, uniqueness and the integer grids (a designed set of values) stay
  ``error``. Any rule can be changed in the YAML.
- **patterns** for codes: when one character shape (digits -> ``[0-9]``, capitals -> ``[A-Z]``,
  small letters -> ``[a-z]``, other characters literal) covers at least 95% of a text column of
  at most 32 characters, e.g. ``^[0-9]{5}$`` for a postal code. The shape is the most common one
  in a sample of 20 000 rows; its coverage is then counted over all rows. The few values off the
  shape are what ``mlstrata validate`` then reports.
- **unique** for id-like columns: no nulls, no duplicates, and a name like ``id``/``*_id``/``key``
  or an integer column counting 1, 2, 3... without gaps.
- **rows**: at least one row; no upper bound (batches of any size are welcome).
- **PII columns hashed or masked at ingest** (the catalog's ``pii`` entries) get only their type
  and nullability, with a ``description`` saying why: new raw batches and live requests carry the
  raw values, which the stored hashes' or masks' patterns, categories, uniqueness and ranges say
  nothing about (see :func:`relax_pii_columns`).

>>> import duckdb
>>> con = duckdb.connect()
>>> rel = con.sql("SELECT range AS id, lpad((range * 7)::VARCHAR, 5, '0') AS zip FROM range(40)")
>>> contract = infer_contract(con, rel, name="toy")
>>> contract.columns["zip"].pattern, contract.columns["id"].unique
('^[0-9]{5}$', True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from .._atomic import write_text
from ..contract import ColumnSpec, Contract, RowBounds, quote_sql_identifier, sql_literal
from ..errors import ContractError
from ..workspace import Workspace
from .datasets import open_dataset, workspace_connection
from .types import ColumnInfo, columns_of

__all__ = ["infer_contract", "infer_contract_for", "relax_pii_columns", "shape_pattern",
           "transformed_pii", "widened_range"]

WIDEN = 0.10
MAX_CATEGORIES = 50
MAX_DISCRETE = 20
PATTERN_COVERAGE = 0.95
MAX_PATTERN_LENGTH = 32
SHAPE_SAMPLE_ROWS = 20_000
_VIEW = "__mlstrata_infer"
_ID_NAME = re.compile(r"(^|[_\s-])(id|key|uuid|guid)$")
_SHAPE_CLASS = {"9": "[0-9]", "A": "[A-Z]", "a": "[a-z]"}
_REGEX_SPECIAL = set(r".^$*+?()[]{}|\/-")
_TRANSFORMED = {"hash": "hashed", "mask": "masked"}


@dataclass
class _Stats:
    """What the aggregate passes learn about one column."""

    info: ColumnInfo
    non_null: int = 0
    low: Any = None
    high: Any = None
    max_length: int | None = None
    approx_distinct: int = 0
    distinct: int | None = None
    categories: list[Any] | None = None
    levels: list[int] | None = None
    pattern: str | None = None


def infer_contract(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    name: str,
    source: str | None = None,
) -> Contract:
    """Infer a contract for ``relation`` (see the module docstring for each rule's heuristic).

    ``name`` is the dataset's name; ``source`` the ref it was inferred from (kept for lineage).
    """
    relation.create_view(_VIEW, replace=True)
    try:
        stats = [_Stats(info) for info in columns_of(relation)]
        rows = _first_pass(con, stats)
        _second_pass(con, stats, rows)
        _patterns(con, stats)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {_VIEW}")
    return Contract(
        dataset=name,
        source=source,
        rows=RowBounds(min=1),
        columns={s.info.name: _column_spec(s, rows) for s in stats},
    )


def _aggregate(con: duckdb.DuckDBPyConnection, parts: Sequence[str],
               source: str = _VIEW) -> list[Any]:
    if not parts:
        return []
    return list(con.execute(f"SELECT {', '.join(parts)} FROM {source}").fetchall()[0])


def _first_pass(con: duckdb.DuckDBPyConnection, stats: list[_Stats]) -> int:
    """Non-null counts, min/max, text lengths and approximate distinct counts."""
    parts, slots = ["count(*)"], []
    for s in stats:
        q = quote_sql_identifier(s.info.name)
        wanted = {"non_null": f"count({q})"}
        if s.info.type in ("integer", "float", "date", "timestamp"):
            wanted |= {"low": f"min({q})", "high": f"max({q})"}
        if s.info.type == "text":
            wanted["max_length"] = f"max(length({q}))"
        if s.info.type in ("text", "integer"):
            wanted["approx_distinct"] = f"approx_count_distinct({q})"
        for attribute, sql in wanted.items():
            parts.append(sql)
            slots.append((s, attribute))
    rows, *values = _aggregate(con, parts)
    for (s, attribute), value in zip(slots, values, strict=True):
        setattr(s, attribute, value)
    return int(rows)


def _second_pass(con: duckdb.DuckDBPyConnection, stats: list[_Stats], rows: int) -> None:
    """Exact categories of low-cardinality text and exact distinct counts of id candidates."""
    parts, slots = [], []
    for s in stats:
        q = quote_sql_identifier(s.info.name)
        if _may_be_categorical(s):
            parts.append(f"list(DISTINCT {q} ORDER BY {q}) FILTER (WHERE {q} IS NOT NULL)")
            slots.append((s, "categories"))
        elif _may_be_discrete(s):
            parts.append(f"list(DISTINCT {q} ORDER BY {q}) FILTER (WHERE {q} IS NOT NULL)")
            slots.append((s, "levels"))
        if rows >= 2 and s.non_null == rows and s.approx_distinct >= 0.9 * rows:
            parts.append(f"count(DISTINCT {q})")
            slots.append((s, "distinct"))
    for (s, attribute), value in zip(slots, _aggregate(con, parts), strict=True):
        setattr(s, attribute, value)
    for s in stats:
        if s.categories is not None and not _is_categorical(len(s.categories), s.non_null):
            s.categories = None
        if s.levels is not None and len(s.levels) > MAX_DISCRETE:
            s.levels = None


def _patterns(con: duckdb.DuckDBPyConnection, stats: list[_Stats]) -> None:
    """Nominate each short text column's dominant shape on a sample, then count it exactly.

    Shapes are costly to compute per value, so they come from a reservoir sample; the full data
    then only runs one ``regexp_full_match`` per value to measure the pattern's coverage.
    """
    candidates = [s for s in stats if s.info.type == "text" and s.non_null
                  and s.categories is None and (s.max_length or 0) <= MAX_PATTERN_LENGTH]
    if not candidates:
        return
    names = ", ".join(quote_sql_identifier(s.info.name) for s in candidates)
    sample = (f"(SELECT {names} FROM {_VIEW} USING SAMPLE reservoir({SHAPE_SAMPLE_ROWS} ROWS) "
              "REPEATABLE (0))")
    shapes = _aggregate(con, [f"mode({_shape_sql(quote_sql_identifier(s.info.name))})"
                              for s in candidates], source=sample)
    for s, shape in zip(candidates, shapes, strict=True):
        s.pattern = shape_pattern(shape) if shape else None
    found = [s for s in candidates if s.pattern]
    coverage = _aggregate(con, [f"count(*) FILTER (WHERE regexp_full_match("
                                f"{quote_sql_identifier(s.info.name)}, {sql_literal(s.pattern)}))"
                                for s in found])
    for s, covered in zip(found, coverage, strict=True):
        if covered < PATTERN_COVERAGE * s.non_null:
            s.pattern = None


def _shape_sql(column: str) -> str:
    """A value's character shape: digits become 9, capitals A, small letters a."""
    digits = f"regexp_replace({column}, '[0-9]', '9', 'g')"
    capitals = f"regexp_replace({digits}, '[A-Z]', 'A', 'g')"
    return f"regexp_replace({capitals}, '[a-z]', 'a', 'g')"


def _may_be_categorical(s: _Stats) -> bool:
    # approx_count_distinct errs by a few percent, so fetch slightly more than the limit.
    return s.info.type == "text" and 0 < s.approx_distinct <= MAX_CATEGORIES * 1.2


def _may_be_discrete(s: _Stats) -> bool:
    return s.info.type == "integer" and 0 < s.approx_distinct <= MAX_DISCRETE * 1.2


def _is_categorical(distinct: int, non_null: int) -> bool:
    return 0 < distinct <= MAX_CATEGORIES and distinct * 5 <= non_null


def _column_spec(s: _Stats, rows: int) -> ColumnSpec:
    settings: dict[str, Any] = {"type": s.info.type, "nullable": s.non_null < rows}
    if s.levels is not None:
        settings |= _discrete_range(s.levels, s.non_null)
    elif s.low is not None and s.high is not None:
        settings |= widened_range(s.info.type, s.low, s.high)
    if s.categories is not None:
        settings["allowed"] = s.categories
    elif s.pattern is not None:
        settings["pattern"] = s.pattern
    settings["unique"] = _looks_like_id(s, rows)
    settings["severity"] = {kind: "warn" for kind in ("min", "max") if kind in settings}
    if s.categories is not None:
        settings["severity"]["allowed"] = "warn"
    return ColumnSpec.model_validate(settings)


def _looks_like_id(s: _Stats, rows: int) -> bool:
    if s.distinct != rows or s.info.type not in ("integer", "text"):
        return False
    name = s.info.name
    if _ID_NAME.search(name.lower()) or name.endswith("Id"):
        return True
    return s.info.type == "integer" and s.high - s.low + 1 == rows


def _discrete_range(levels: list[int], non_null: int) -> dict[str, Any]:
    """Observed bounds of a discrete integer column, or its values when they form a grid."""
    steps = {b - a for a, b in zip(levels, levels[1:], strict=False)}
    grid = len(levels) >= 3 and len(steps) == 1 and steps.pop() > 1
    if grid and _is_categorical(len(levels), non_null):
        return {"allowed": levels}
    return {"min": levels[0], "max": levels[-1]}


def widened_range(kind: str, low: Any, high: Any) -> dict[str, Any]:
    """The ``min``/``max`` rules for values seen between ``low`` and ``high``: the range widened
    by ``WIDEN`` of its width on each side (never across zero), rounded outwards to 4 significant
    digits; dates get only a minimum (later dates are the future, not errors).

    >>> widened_range("float", 1.0, 11.0), widened_range("integer", 5, 9)
    ({'min': 0.0, 'max': 12.0}, {'min': 4, 'max': 10})
    """
    if kind in ("date", "timestamp"):
        margin = (high - low) * WIDEN
        return {"min": low - (timedelta(days=margin.days) if kind == "date" else margin)}
    low, high = float(low), float(high)
    margin = (high - low) * WIDEN
    new_low = max(low - margin, 0.0) if low >= 0 else low - margin
    new_high = min(high + margin, 0.0) if high <= 0 else high + margin
    if kind == "integer":
        return {"min": math.floor(new_low), "max": math.ceil(new_high)}
    step = 10.0 ** (math.floor(math.log10(max(high - low, abs(low), abs(high), 1e-12))) - 3)
    decimals = max(0, -int(math.floor(math.log10(step))))
    return {"min": round(math.floor(new_low / step) * step, decimals),
            "max": round(math.ceil(new_high / step) * step, decimals)}


def shape_pattern(shape: str) -> str:
    """Turn a character shape into an anchored regex both Python and DuckDB (RE2) accept.

    >>> shape_pattern("99999"), shape_pattern("AA-9999"), shape_pattern("a.a")
    ('^[0-9]{5}$', '^[A-Z]{2}\\\\-[0-9]{4}$', '^[a-z]\\\\.[a-z]$')
    """
    pieces = []
    for match in re.finditer(r"(.)\1*", shape, flags=re.DOTALL):
        char, count = match.group(1), len(match.group(0))
        if char in _SHAPE_CLASS:
            pieces.append(_SHAPE_CLASS[char] + (f"{{{count}}}" if count > 1 else ""))
        else:
            literal = "\\" + char if char in _REGEX_SPECIAL else char
            pieces.append(literal * count)
    return "^" + "".join(pieces) + "$"


def transformed_pii(pii: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{column: "hashed" | "masked"}`` for the catalog's PII findings whose values were
    transformed at ingest: what the dataset stores is not what live data carries.

    >>> transformed_pii([{"column": "mail", "action": "hash"}, {"column": "tel", "action": "keep"}])
    {'mail': 'hashed'}
    """
    return {str(entry["column"]): _TRANSFORMED[str(entry["action"])] for entry in pii
            if entry.get("action") in _TRANSFORMED and entry.get("column")}


def relax_pii_columns(contract: Contract, pii: Iterable[Mapping[str, Any]]) -> Contract:
    """Keep only type and nullability on the columns whose values were hashed or masked at ingest.

    ``pii`` is the catalog's list of findings, each with ``column`` and ``action``
    (keep/drop/hash/mask). The stored values of a hashed or masked column are not what new raw
    batches and live requests carry, so rules learned from them (a hex pattern, categories,
    uniqueness) would reject every raw value; the column's ``description`` says so.

    >>> contract = Contract.model_validate(
    ...     {"columns": {"mail": {"type": "text", "pattern": "^[0-9a-f]{64}$", "unique": True}}})
    >>> relaxed = relax_pii_columns(contract, [{"column": "mail", "action": "hash"}])
    >>> relaxed.columns["mail"].pattern, relaxed.columns["mail"].unique
    (None, False)
    """
    columns = dict(contract.columns)
    for name, done in transformed_pii(pii).items():
        if name not in columns:
            continue
        columns[name] = ColumnSpec(
            type=columns[name].type, nullable=columns[name].nullable,
            description=f"PII {done} at ingest: only type and nullability are checked, because "
                        "new batches and requests carry the raw values")
    return Contract.model_validate({**contract.model_dump(exclude={"columns"}),
                                    "columns": columns})


def infer_contract_for(
    ws: Workspace, ref: str, out: Path | None = None, force: bool = False
) -> tuple[Contract, Path]:
    """Infer a contract for dataset ``ref`` and write it as YAML (default ``contracts/NAME.yaml``).

    The file is written atomically; an existing file is kept unless ``force`` (it may hold edits).
    The inferred contract is also stored as a ``contract`` artifact whose lineage names the dataset.
    """
    dataset = open_dataset(ws, ref, purpose="contract")
    name = dataset.artifact.name
    path = out if out is not None else ws.root / "contracts" / f"{name}.yaml"
    if path.exists() and not force:
        raise ContractError(f"{path}: a contract already exists (it may hold your edits); pass "
                            "--force to overwrite it or --out to write elsewhere")
    con = workspace_connection(ws)
    try:
        contract = infer_contract(con, dataset.relation(con), name, source=dataset.artifact.ref)
        contract = relax_pii_columns(contract, dataset.meta.get("pii") or [])
    finally:
        con.close()
    text = contract.to_yaml()
    ws.put_bytes(text.encode("utf-8"), suffix=".yaml", kind="contract", name=f"{name}.contract",
                 inputs={"dataset": dataset.artifact.id},
                 description=f"contract inferred from {dataset.artifact.ref}")
    write_text(path, text)
    return contract, path
