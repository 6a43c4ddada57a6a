"""Building blocks of self-contained HTML reports: one page template, tables, badges, images.

Plots are matplotlib figures embedded as base64 PNG data URIs, so a report is one file that works
offline. Fragments are escaped when built, so the template can insert them verbatim.

>>> "&lt;x&gt;" in table([{"a": 1, "b": "<x>"}])
True
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

__all__ = ["Fragment", "badge", "figure_uri", "html_page", "image", "paragraph", "table"]

Fragment = Markup

_ENV = Environment(
    loader=PackageLoader("mlstrata.reports", "templates"), autoescape=select_autoescape(["html"])
)


def html_page(
    title: str,
    sections: Sequence[tuple[str, Iterable[Fragment]]],
    subtitle: str = "",
    facts: Mapping[str, Any] | None = None,
) -> str:
    """Render one report page: a title, a facts table and titled sections of fragments."""
    return _ENV.get_template("page.html").render(
        title=title,
        subtitle=subtitle,
        facts=facts or {},
        sections=[(heading, list(parts)) for heading, parts in sections],
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Fragment:
    """An HTML table of ``rows``; ``columns`` picks and orders the keys (default: row 1's)."""
    if not rows:
        return Markup("<p class='muted'>(none)</p>")
    keys = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(k))}</td>" for k in keys) + "</tr>" for row in rows
    )
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def badge(passed: bool, text: str | None = None) -> Fragment:
    """A green PASS or red FAIL label."""
    label = text or ("PASS" if passed else "FAIL")
    return Markup(f"<span class='badge {'pass' if passed else 'fail'}'>{html.escape(label)}</span>")


def image(uri: str, alt: str) -> Fragment:
    """An ``<img>`` for a data URI made by :func:`figure_uri`."""
    return Markup(f"<img src='{uri}' alt='{html.escape(alt)}'>")


def paragraph(text: str) -> Fragment:
    """An escaped paragraph of text."""
    return Markup(f"<p>{html.escape(text)}</p>")


def figure_uri(figure: Any) -> str:
    """Encode a matplotlib figure as a PNG data URI and close it (frees its memory)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, Markup):
        return str(value)
    if isinstance(value, float):
        return html.escape(f"{value:.6g}")
    return html.escape("" if value is None else str(value))
