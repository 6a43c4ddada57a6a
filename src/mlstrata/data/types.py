"""mlstrata's logical column types and their mapping to and from DuckDB types.

Logical types (``text``, ``integer``, ``float``, ``boolean``, ``date``, ``timestamp``) are what the
catalog, the contract and the serving signature speak; DuckDB types are an engine detail.

>>> logical_type("BIGINT"), logical_type("DECIMAL(10,2)"), logical_type("VARCHAR")
('integer', 'float', 'text')
>>> duckdb_type("integer")
'BIGINT'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import ColumnType

__all__ = ["ColumnInfo", "columns_of", "duckdb_type", "logical_type"]

_INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT = {"FLOAT", "DOUBLE", "REAL"}
_TO_DUCKDB: dict[str, str] = {
    "text": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


@dataclass(frozen=True)
class ColumnInfo:
    """A column's name, logical type and engine type."""

    name: str
    type: ColumnType
    engine_type: str

    def to_dict(self) -> dict[str, str]:
        """The catalog form: ``{"name", "type", "engine_type"}``."""
        return {"name": self.name, "type": self.type, "engine_type": self.engine_type}


def logical_type(engine_type: str) -> ColumnType:
    """Map a DuckDB type name to a logical type (anything unknown is ``text``)."""
    base = engine_type.upper().split("(")[0].strip()
    if base in _INTEGER:
        return "integer"
    if base in _FLOAT or base == "DECIMAL":
        return "float"
    if base == "BOOLEAN":
        return "boolean"
    if base == "DATE":
        return "date"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return "text"


def duckdb_type(column_type: ColumnType) -> str:
    """The DuckDB type a logical type is stored as."""
    return _TO_DUCKDB[column_type]


def columns_of(relation: Any) -> list[ColumnInfo]:
    """The columns of a DuckDB relation with their logical types."""
    return [
        ColumnInfo(name, logical_type(str(dtype)), str(dtype))
        for name, dtype in zip(relation.columns, relation.types, strict=True)
    ]
