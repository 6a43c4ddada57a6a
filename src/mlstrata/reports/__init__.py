"""One reporting layer: typed results rendered to the terminal (Rich), JSON and self-contained HTML.

Stages return data (a :class:`Report`); this package turns it into what people read. It is not
where numbers are computed, and it never reads the workspace.
"""

from __future__ import annotations

from .base import Report, save_report
from .html import Fragment, badge, figure_uri, html_page, image, paragraph, table

__all__ = [
    "Fragment",
    "Report",
    "badge",
    "figure_uri",
    "html_page",
    "image",
    "paragraph",
    "save_report",
    "table",
]
