"""The :class:`Report` base class every stage result derives from, and saving reports to disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from .._atomic import write_text

__all__ = ["Report", "save_report"]


class Report:
    """A stage result that can be shown in a terminal, serialized to JSON and rendered to HTML.

    Subclasses implement :meth:`to_dict`, :meth:`render_terminal` and :meth:`to_html`; Jupyter
    shows the HTML form inline through ``_repr_html_``.
    """

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of every number in the report."""
        raise NotImplementedError

    def render_terminal(self, console: Console) -> None:
        """Print a human summary to ``console``."""
        raise NotImplementedError

    def to_html(self) -> str:
        """A complete, self-contained HTML page (plots embedded, no network needed)."""
        raise NotImplementedError

    def to_json(self) -> str:
        """The report as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, default=str, allow_nan=False)

    def _repr_html_(self) -> str:
        return self.to_html()


def save_report(report: Report, directory: Path, stem: str) -> dict[str, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` atomically into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / f"{stem}.json", "html": directory / f"{stem}.html"}
    write_text(paths["json"], report.to_json())
    write_text(paths["html"], report.to_html())
    return paths
