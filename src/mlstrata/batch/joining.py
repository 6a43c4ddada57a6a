"""The package's join tables applied to Arrow batches: raw rows scored from a package alone.

A model trained on a version enriched by a ``join`` recipe step needs the joined columns, and its
package carries each joined version as ``joins/NN.json`` (:mod:`mlstrata.runtime.joins`). Batch
scoring, precompute and the Spark engine fill the joined columns a batch lacks from those tables
with the lookup the lean runtime uses for REST, gRPC and the model wheel
(:meth:`~mlstrata.runtime.joins.JoinTable.matches`), so ``mlstrata predict`` scores raw records
without the workspace that trained the model and answers exactly as serving does. A batch repeats
its keys, so each distinct key is looked up once. A key without a row leaves the joined columns
missing (``how: left``) or is a problem that rejects the row (``how: inner``: the model never saw
such a row), named like the runtime names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

import pyarrow as pa

from ..runtime.inputs import FieldProblem
from ..runtime.joins import JoinTable

__all__ = ["join_batch", "joined_columns"]


def joined_columns(tables: Sequence[JoinTable], columns: Collection[str]) -> list[str]:
    """The columns ``tables`` add to an input with ``columns``: a table applies when its key
    columns are in the input (or added by an earlier table) and it brings a column the input
    lacks.

    >>> table = JoinTable("regions@1", ("zip",), ("text",), "left", ("region",), {})
    >>> joined_columns([table], ["zip", "amount"]), joined_columns([table], ["amount"])
    (['region'], [])
    """
    available, added = set(columns), []
    for table in tables:
        if all(key in available for key in table.on):
            new = [name for name in table.columns if name not in available]
            added += new
            available.update(new)
    return added


def join_batch(tables: Sequence[JoinTable], batch: pa.RecordBatch
               ) -> tuple[pa.RecordBatch, list[FieldProblem]]:
    """``batch`` with the joined columns it lacks appended, and the rows (counted from 0 in the
    batch) whose key an inner join finds no row for.

    >>> table = JoinTable("regions@1", ("zip",), ("text",), "inner", ("region",),
    ...                   {("08001",): ("north",)})
    >>> joined, problems = join_batch([table], pa.record_batch({"zip": ["08001", "9", "08001"]}))
    >>> joined.column("region").to_pylist(), [(p.row, p.field) for p in problems]
    (['north', None, 'north'], [(1, 'zip')])
    """
    problems: list[FieldProblem] = []
    for table in tables:
        names = batch.schema.names
        lacking = [name for name in table.columns if name not in names]
        if not lacking or any(key not in names for key in table.on):
            continue
        found, unmatched = _matches(table, batch)
        problems += unmatched
        for name in lacking:
            position = table.columns.index(name)
            batch = batch.append_column(name, pa.array([row[position] for row in found]))
    return batch, problems


def _matches(table: JoinTable, batch: pa.RecordBatch
             ) -> tuple[list[tuple[Any, ...]], list[FieldProblem]]:
    """Each row's joined values and the problems of rows without a match (each distinct key is
    looked up once)."""
    keys = list(zip(*(batch.column(key).to_pylist() for key in table.on), strict=True))
    distinct = list(dict.fromkeys(keys))
    found, problems = table.matches(distinct)
    values = dict(zip(distinct, found, strict=True))
    unmatched = {distinct[problem.row]: problem for problem in problems}
    rows = [values[key] for key in keys]
    if not unmatched:
        return rows, []
    return rows, [dataclasses.replace(unmatched[key], row=number)
                  for number, key in enumerate(keys) if key in unmatched]
