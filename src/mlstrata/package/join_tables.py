"""Write the joined versions a model's training data was enriched with into its package.

The training version's lineage (:func:`~mlstrata.data.clean.fitted_recipes_since_ingest`) names
every fitted ``join`` step; each joined version — frozen by id when the step was fitted — is
written as ``joins/NN.json`` (key columns, the columns the step added, every row), which the
manifest then hashes with the other files. The lean runtime's :mod:`mlstrata.runtime.joins`
replays the joins on raw records from these files.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import _atomic
from ..data.clean import fitted_recipes_since_ingest
from ..data.datasets import workspace_connection
from ..data.engine import parquet_scan, quote_identifier
from ..data.recipe import Join
from ..data.types import logical_type
from ..runtime.joins import JOINS_DIR
from ..workspace import Artifact, Workspace

__all__ = ["write_join_tables"]


def write_join_tables(ws: Workspace, model: Artifact, directory: Path) -> list[str]:
    """Write ``joins/NN.json`` for each join step behind ``model``'s training data; their names."""
    dataset_id = model.meta.get("dataset")
    if not dataset_id:
        return []
    written = []
    steps = [(s.step, s.state.model_dump())
             for _, recipe in fitted_recipes_since_ingest(ws, ws.get(str(dataset_id)))[1]
             for s in recipe.steps if isinstance(s.step, Join)]
    for number, (step, state) in enumerate(steps, start=1):
        name = f"{JOINS_DIR}/{number:02d}.json"
        _atomic.write_text(directory / name, json.dumps(_table(ws, step, state),
                                                        default=_json_value))
        written.append(name)
    return written


def _table(ws: Workspace, step: Join, state: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of one joined version: what the runtime's JoinTable reads."""
    path = ws.path_for_read(ws.get(str(state["dataset"])))
    con = workspace_connection(ws)
    try:
        names = [*step.on, *state["columns"]]
        relation = con.sql(f"SELECT {', '.join(map(quote_identifier, names))} FROM "
                           f"{parquet_scan(path)} WHERE "
                           + " AND ".join(f"{quote_identifier(k)} IS NOT NULL" for k in step.on))
        types = dict(zip(relation.columns, (str(t) for t in relation.types), strict=True))
        rows = relation.fetchall()
    finally:
        con.close()
    return {"dataset": state["ref"], "id": state["dataset"], "on": step.on, "how": step.how,
            "key_types": [logical_type(types[k]) for k in step.on],
            "columns": list(state["columns"]), "rows": [list(row) for row in rows]}


def _json_value(value: Any) -> Any:
    """Values JSON has no type for: numbers as float, dates and times as ISO 8601 text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
