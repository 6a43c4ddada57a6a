"""The exception hierarchy of mlstrata.

Every message says *what* went wrong, *where* (file, line, column, field, key) and *how to fix it*,
in one line, because the CLI prints it as one red line and exits non-zero::

    MlstrataError
    ├── ConfigError          mlstrata.yaml or another YAML file is invalid
    ├── WorkspaceError       no workspace, unknown ref, disk full, store corrupted
    │   ├── RefNotFoundError     a NAME, NAME@N or id prefix matches nothing
    │   ├── AccessDeniedError    a sealed or restricted artifact was read for the wrong purpose
    │   └── InsufficientSpaceError
    ├── SourceError          a data source cannot be read (missing, empty, ragged, undecodable...)
    ├── ContractError        a data contract does not parse or names unknown columns
    ├── RecipeError          a cleaning recipe is invalid or cannot be applied
    └── DataError            the data cannot serve the request (unknown target, too few rows...)

Anything that is not an ``MlstrataError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ConfigError",
    "ContractError",
    "DataError",
    "InsufficientSpaceError",
    "MlstrataError",
    "RecipeError",
    "RefNotFoundError",
    "SourceError",
    "WorkspaceError",
]


class MlstrataError(Exception):
    """Base class of every error caused by the user's input or environment, not by a bug."""

    exit_code: int = 2


class ConfigError(MlstrataError):
    """A configuration file is invalid: the message names the key, the value and what is allowed."""


class WorkspaceError(MlstrataError):
    """The workspace is missing, inconsistent or cannot take a write."""


class RefNotFoundError(WorkspaceError):
    """A reference (``NAME``, ``NAME@N`` or an id prefix) matches no artifact."""


class AccessDeniedError(WorkspaceError):
    """An artifact was read for a purpose its access level forbids (e.g. the sealed test set)."""


class InsufficientSpaceError(WorkspaceError):
    """The disk lacks the space a write needs; nothing was written."""


class SourceError(MlstrataError):
    """A data source cannot be read; the message names the file, line and column where it can."""


class ContractError(MlstrataError):
    """A data contract does not parse or does not fit the data it is applied to."""


class RecipeError(MlstrataError):
    """A cleaning recipe is invalid, or cannot be applied to the data it is given."""


class DataError(MlstrataError):
    """The data cannot serve what was asked (a target that does not exist, too few rows...)."""
