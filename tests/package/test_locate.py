"""Model references → package directories (path, NAME@N, NAME@ALIAS following the registry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstrata.errors import RefNotFoundError
from mlstrata.package.locate import locate_package
from mlstrata.workspace import Workspace


def test_a_package_path_needs_no_workspace(credit_package: Path) -> None:
    assert locate_package(str(credit_package), None) == credit_package.resolve()


def test_name_version_and_alias_find_the_same_package(credit_package: Path) -> None:
    ws = Workspace.find(credit_package.parent.parent)
    assert locate_package("credit.model", ws) == credit_package
    assert locate_package("credit.model@1", ws) == credit_package
    from mlstrata.package.registry import promote

    promote(ws, "credit@1", alias="challenger")
    assert locate_package("credit@challenger", ws) == credit_package
    assert locate_package("credit@1", ws) == credit_package


def test_unknown_alias_and_unpackaged_model_are_named(credit_package: Path,
                                                      tmp_path: Path) -> None:
    ws = Workspace.find(credit_package.parent.parent)
    with pytest.raises(RefNotFoundError, match="no version or alias 'nightly'"):
        locate_package("credit@nightly", ws)
    with pytest.raises(RefNotFoundError, match="is not a package directory"):
        locate_package(str(tmp_path), None)
