"""The project configuration, ``mlstrata.yaml``, as pydantic models.

Every key is validated on load; an error names the key, the bad value and what is allowed.

>>> ProjectConfig().data.sealed_test_fraction
0.2
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._yaml import dump_yaml, load_yaml_model
from .errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "AccessLevel",
    "ColumnType",
    "DataConfig",
    "PiiAction",
    "ProjectConfig",
    "load_config",
    "write_default_config",
]

CONFIG_FILE = "mlstrata.yaml"

AccessLevel = Literal["public", "internal", "restricted"]
PiiAction = Literal["keep", "drop", "hash", "mask"]
ColumnType = Literal["text", "integer", "float", "boolean", "date", "timestamp"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Settings of the data stratum."""

    sealed_test_fraction: float = Field(0.2, ge=0.0, le=0.9)
    seed: int = 0
    default_access: AccessLevel = "internal"
    memory_limit: str = Field("1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    threads: int | None = Field(None, ge=1)
    pii: dict[str, PiiAction] = Field(default_factory=dict)
    pii_default: PiiAction = "mask"
    schema_overrides: dict[str, ColumnType] = Field(default_factory=dict, alias="schema")
    checks: list[str] = Field(default_factory=list)


class ProjectConfig(_Strict):
    """The whole of ``mlstrata.yaml``."""

    project: str = "mlstrata-project"
    owner: str = Field(default_factory=getpass.getuser)
    data: DataConfig = Field(default_factory=DataConfig)


def load_config(path: Path) -> ProjectConfig:
    """Load and validate ``mlstrata.yaml``; a missing file means all defaults."""
    if not path.exists():
        return ProjectConfig()
    return load_yaml_model(path, ProjectConfig, ConfigError)


def write_default_config(path: Path, project: str) -> None:
    """Write a commented starter ``mlstrata.yaml`` (only when none exists)."""
    from ._atomic import write_text

    body = dump_yaml(
        {
            "project": project,
            "owner": getpass.getuser(),
            "data": {
                "sealed_test_fraction": 0.2,
                "seed": 0,
                "default_access": "internal",
                "memory_limit": "1GB",
                "pii": {},
                "pii_default": "mask",
                "schema": {},
                "checks": [],
            },
        }
    )
    header = (
        "# mlstrata project configuration. Keys are validated on every command.\n"
        "# data.pii maps a column to keep | drop | hash | mask; columns found to hold PII and\n"
        "# not listed get data.pii_default. data.schema forces a column's type (text, integer,\n"
        "# float, boolean, date, timestamp). data.checks lists 'module:function' checks.\n"
    )
    write_text(path, header + body)
