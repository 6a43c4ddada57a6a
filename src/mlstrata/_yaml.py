"""Read YAML files into pydantic models with one-line errors that name the file, key and fix.

Shared by the project config, data contracts and cleaning recipes, so every YAML mistake reads
the same way: ``contract.yaml: key 'columns.age.min': Input should be a valid number, got 'x'``
(with ``with_line=True``: ``contract.yaml: line 7: key 'columns.age.min': ...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import MlstrataError

__all__ = ["dump_yaml", "line_of", "load_yaml_model", "parse_model", "read_yaml",
           "validation_message"]

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


def load_yaml_model(path: Path, model: type[M], error: type[MlstrataError], *,
                    with_line: bool = False) -> M:
    """Parse ``path`` and validate it as ``model``; an empty file validates as ``{}``.

    ``with_line`` adds the line of the offending key to the message (see :func:`line_of`).
    """
    data = read_yaml(path, error)
    data = data if data is not None else {}
    if not with_line:
        return parse_model(data, model, error, source=str(path))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        line = line_of(path, exc.errors()[0]["loc"])
        where = f"{path}: line {line}" if line else str(path)
        raise error(f"{where}: {validation_message(exc)}") from exc


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


def line_of(path: Path, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node along ``loc`` (a pydantic error location).

    Follows mapping keys and sequence indexes as far as the file has them, so an error on a
    key the file lacks points at its parent; None when the file does not parse.
    """
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
