"""YAML helpers shared by config, contracts and recipes: errors name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from mlstrata._yaml import line_of, load_yaml_model
from mlstrata.errors import ConfigError


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = 0


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    items: list[_Inner] = []


TEXT = "name: x\nitems:\n  - size: 1\n  - size: big\n"


@pytest.mark.parametrize(
    ("loc", "line"),
    [(("name",), 1), (("items", 1, "size"), 4), (("items", 0), 3), (("items", 7), 2),
     (("nope",), None)],
)
def test_line_of_follows_keys_and_indexes_as_far_as_the_file_has_them(
        tmp_path: Path, loc: tuple[str | int, ...], line: int | None) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(TEXT)
    assert line_of(path, loc) == line


def test_line_of_an_unparsable_or_missing_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("a: [1\n")
    assert line_of(path, ("a",)) is None
    assert line_of(tmp_path / "missing.yaml", ("a",)) is None


def test_load_yaml_model_names_the_line_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(TEXT)
    with pytest.raises(ConfigError) as plain:
        load_yaml_model(path, _Outer, ConfigError)
    assert str(plain.value).startswith(f"{path}: key 'items.1.size'")
    with pytest.raises(ConfigError) as located:
        load_yaml_model(path, _Outer, ConfigError, with_line=True)
    assert str(located.value).startswith(f"{path}: line 4: key 'items.1.size'")
    path.write_text("")
    assert load_yaml_model(path, _Outer, ConfigError, with_line=True) == _Outer()
