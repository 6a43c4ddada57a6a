"""The ``mlstrata`` command line: Typer commands that parse, call the library and render.

No logic lives here beyond wiring; every command has a Python API twin in :mod:`mlstrata.api`.
"""

from __future__ import annotations

__all__: list[str] = []
