"""The training data's ``join`` steps, replayed on raw records at serving time.

A model trained on a version enriched by a ``join`` recipe step (``mlstrata ingest --join``,
``mlstrata clean``) needs the joined columns; a client sends the raw record. The package carries
each joined version as ``joins/NN.json`` (key columns, joined columns and their rows, hashed by
the manifest like every packaged file), and :class:`JoinTable` looks the record's key up to fill
the joined fields the record lacks — a dictionary lookup, standard library only, so the lean
runtime and the model wheel apply it without pandas or DuckDB. A record whose key has no row gets
the joined fields missing (``how: left``), or is refused naming the key (``how: inner``: the model
never saw such a row). Fields the record does send are kept as sent.

>>> table = JoinTable("regions@1", ("zip",), ("text",), "left", ("region",),
...                   {("08001",): ("north",)})
>>> table.enrich_records([{"zip": "08001"}, {"zip": "99999"}, {"zip": "08001", "region": "x"}])
[{'zip': '08001', 'region': 'north'}, {'zip': '99999', 'region': None}, {'zip': '08001', \
'region': 'x'}]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inputs import FieldProblem, InvalidInputError

__all__ = ["JOINS_DIR", "JoinTable", "enrich_lists", "enrich_records", "load_joins"]

JOINS_DIR = "joins"


@dataclass(frozen=True)
class JoinTable:
    """One joined version: its key columns (and their logical types), how it was joined, the
    columns it adds and key → values."""

    dataset: str
    on: tuple[str, ...]
    key_types: tuple[str, ...]
    how: str
    columns: tuple[str, ...]
    rows: Mapping[tuple[Any, ...], tuple[Any, ...]]

    @classmethod
    def from_file(cls, path: Path) -> JoinTable:
        """Read a ``joins/NN.json`` written by the package builder."""
        data = json.loads(path.read_text(encoding="utf-8"))
        on, types = tuple(data["on"]), tuple(data["key_types"])
        width = len(on)
        rows = {_key(row[:width], types): tuple(row[width:]) for row in data["rows"]}
        return cls(data["dataset"], on, types, data["how"], tuple(data["columns"]), rows)

    def enrich_records(self, records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """``records`` with the joined fields each one lacks filled in from its key's row."""
        if not any(_lacks(record, self.columns) for record in records):
            return list(records)
        out: list[Mapping[str, Any]] = []
        problems: list[FieldProblem] = []
        for number, record in enumerate(records):
            if not _lacks(record, self.columns):
                out.append(record)
                continue
            found = self._lookup(number, [record.get(k) for k in self.on], problems)
            out.append({**record, **{c: v for c, v in zip(self.columns, found, strict=True)
                                     if c not in record}})
        if problems:
            raise InvalidInputError(problems)
        return out

    def enrich_lists(self, lists: Mapping[str, Sequence[Any]]) -> Mapping[str, Sequence[Any]]:
        """One sequence per field, with the joined fields it lacks filled in by key."""
        lacking = [c for c in self.columns if c not in lists]
        if not lacking or any(k not in lists for k in self.on):
            return lists
        found, problems = self.matches(zip(*(lists[k] for k in self.on), strict=True))
        if problems:
            raise InvalidInputError(problems)
        position = {c: n for n, c in enumerate(self.columns)}
        return {**lists, **{c: [row[position[c]] for row in found] for c in lacking}}

    def matches(self, keys: Iterable[Sequence[Any]]
                ) -> tuple[list[tuple[Any, ...]], list[FieldProblem]]:
        """The joined values for each key in order (missing where a key has no row), and — for
        an inner join — a problem for each record (counted from 0) whose key has no row."""
        problems: list[FieldProblem] = []
        found = [self._lookup(number, list(key), problems) for number, key in enumerate(keys)]
        return found, problems

    def _lookup(self, number: int, key: list[Any], problems: list[FieldProblem]
                ) -> tuple[Any, ...]:
        row = self.rows.get(_key(key, self.key_types))
        if row is not None:
            return row
        if self.how == "inner":
            shown = key[0] if len(key) == 1 else tuple(key)
            problems.append(FieldProblem(
                number, ", ".join(self.on), f"{shown!r} has no row in {self.dataset}, which the "
                "model's training rows were inner-joined with; send a known key", "join"))
        return (None,) * len(self.columns)


def load_joins(directory: Path) -> tuple[JoinTable, ...]:
    """The packaged join tables of a (verified) package, in recipe order; none for most."""
    folder = directory / JOINS_DIR
    if not folder.is_dir():
        return ()
    return tuple(JoinTable.from_file(path) for path in sorted(folder.glob("*.json")))


def enrich_records(tables: Sequence[JoinTable], records: Sequence[Mapping[str, Any]]
                   ) -> Sequence[Mapping[str, Any]]:
    """``records`` through every join table in order."""
    for table in tables:
        records = table.enrich_records(records)
    return records


def enrich_lists(tables: Sequence[JoinTable], lists: Mapping[str, Sequence[Any]]
                 ) -> Mapping[str, Sequence[Any]]:
    """Field lists through every join table in order."""
    for table in tables:
        lists = table.enrich_lists(lists)
    return lists


def _lacks(record: Mapping[str, Any], columns: Sequence[str]) -> bool:
    return any(column not in record for column in columns)


def _key(values: Sequence[Any], types: Sequence[str]) -> tuple[Any, ...]:
    """A key comparable across JSON, CSV cells and the stored rows: integers as int, the rest as
    text (None when missing, which matches nothing)."""
    return tuple(_key_part(v, t) for v, t in zip(values, types, strict=True))


def _key_part(value: Any, logical: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if logical == "integer" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        return int(number) if number.is_integer() else number
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
