"""Read YAML files into pydantic models with one-line errors that name the file, key and fix.

Shared by the project config, data contracts and cleaning recipes, so every YAML mistake reads
the same way: ``contract.yaml: key 'columns.age.min': Input should be a valid number, got 'x'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import MlstrataError

__all__ = ["dump_yaml", "load_yaml_model", "read_yaml", "validation_message"]

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, error: type[MlstrataError]) -> Any:
    """Parse a YAML file, raising ``error`` with the file, line and column of a syntax error."""
    if not path.is_file():
        raise error(f"{path}: file not found; check the path or create it first")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: YAML syntax error at {where}: {problem}; fix the YAML there") from exc


def load_yaml_model(path: Path, model: type[M], error: type[MlstrataError]) -> M:
    """Parse ``path`` and validate it as ``model``; an empty file validates as ``{}``."""
    data = read_yaml(path, error)
    return parse_model(data if data is not None else {}, model, error, source=str(path))


def parse_model(data: Any, model: type[M], error: type[MlstrataError], source: str) -> M:
    """Validate ``data`` as ``model``, turning the first pydantic error into one actionable line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{source}: {validation_message(exc)}") from exc


def validation_message(exc: ValidationError) -> str:
    """Render the first error of a pydantic ``ValidationError`` as 'key ...: problem, got value'."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        return f"key '{key}' is not allowed; remove it or check its spelling"
    if first["type"] == "missing":
        return f"key '{key}' is required; add it"
    return f"key '{key}': {message}, got {first.get('input')!r}"


def dump_yaml(data: Any) -> str:
    """Serialize ``data`` as block-style YAML with keys in insertion order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
