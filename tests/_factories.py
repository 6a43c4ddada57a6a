"""Build small dataset versions straight into a workspace, for tests of stages after ingest."""

from __future__ import annotations

from typing import Any

from mlstrata.data.datasets import workspace_connection
from mlstrata.data.engine import quote_literal
from mlstrata.data.types import columns_of
from mlstrata.workspace import Artifact, Workspace


def make_dataset(
    ws: Workspace,
    select_sql: str,
    name: str = "toy",
    target: str | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Artifact:
    """Store the result of a DuckDB ``SELECT`` as a dataset version named ``name``.

    >>> # make_dataset(ws, "SELECT range AS x, range % 2 AS y FROM range(100)", target="y")
    """
    con = workspace_connection(ws)
    relation = con.sql(select_sql)
    columns = [c.to_dict() for c in columns_of(relation)]
    (rows,) = con.execute(f"SELECT count(*) FROM ({select_sql})").fetchall()[0]
    with ws.staging() as stage:
        path = stage / "data.parquet"
        con.execute(f"COPY ({select_sql}) TO {quote_literal(str(path))} (FORMAT parquet)")
        meta = {"columns": columns, "rows": rows, "target": target, **(extra_meta or {})}
        return ws.put_file(path, kind="dataset", name=name, meta=meta)
