"""Small plots for the profile's HTML page, written directly as inline SVG and HTML.

Histograms and bar charts are SVG strings; correlation matrices are HTML tables with one
background colour per cell. Nothing is rasterised and no plotting library is imported, so a page
with dozens of columns renders in milliseconds, stays small and works offline. Every bar and cell
carries a ``<title>`` (shown on hover) with its exact count or value; all text is escaped.

>>> from ._profile_stats import Histogram
>>> svg = bars_svg("x", Histogram((3, 1), edges=(0.0, 0.5, 1.0)))
>>> svg.startswith("<svg") and "0.5 – 1: 1 row" in svg
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from ._profile_correlations import Matrix
from ._profile_stats import ColumnProfile, Histogram
from .target import TargetInfo

__all__ = ["bars_svg", "class_balance_svg", "column_plot", "heatmap_table"]

_COLOR = "#4c72b0"
_WIDTH, _HEIGHT = 320, 130
_LEFT, _BOTTOM, _TOP = 44, 30, 16
_TITLES = {"pearson": "Pearson", "spearman": "Spearman", "cramers_v": "Cramér's V"}
_FONT = "font-family='sans-serif' fill='#333'"
_VERTICAL = "writing-mode:vertical-rl;transform:rotate(180deg)"  # column names read bottom-up
# Ends and middle of the colour scales: blue-white-red for signed correlations, white-blue for
# measures between 0 and 1.
_NEGATIVE, _ZERO, _POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)


def column_plot(column: ColumnProfile) -> Markup | None:
    """A histogram (numbers, dates) or a bar chart of top values (text, booleans), or ``None``."""
    if column.histogram is not None and column.histogram.counts:
        return bars_svg(column.name, column.histogram)
    if column.top_values:
        labels = [_short(v.value) for v in column.top_values]
        return _horizontal_bars_svg(column.name, labels, [v.count for v in column.top_values])
    return None


def class_balance_svg(target: TargetInfo) -> Markup | None:
    """A bar chart of the target's classes with their shares (``None`` without classes)."""
    if not target.classes:
        return None
    labels = tuple(_short(c.value) for c in target.classes)
    histogram = Histogram(tuple(c.count for c in target.classes), labels=labels)
    shares = [f"{c.share:.1%}" for c in target.classes]
    return bars_svg(f"class balance of {target.column}", histogram, shares)


def bars_svg(title: str, histogram: Histogram, notes: Sequence[str] = ()) -> Markup:
    """Vertical bars of a histogram: numeric bins (min and max edge under the axis) or labelled
    periods/classes (a few labels under the axis). ``notes`` are printed above the bars."""
    counts = histogram.counts
    top = _TOP + (10 if notes else 0)  # room for the notes above the tallest bar
    plot_w, plot_h = _WIDTH - _LEFT - 8, _HEIGHT - _BOTTOM - top
    step = plot_w / len(counts)
    peak = max(counts) or 1
    names = _bar_names(histogram)
    parts = [_head(title, _WIDTH, _HEIGHT), _y_axis(peak, top, plot_h)]
    for i, count in enumerate(counts):
        height = plot_h * count / peak
        x, y = _LEFT + i * step, top + plot_h - height
        parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(step - 1, 0.5):.1f}' "
                     f"height='{height:.1f}' fill='{_COLOR}'><title>{_esc(names[i])}: "
                     f"{_rows(count)}</title></rect>")
        if i < len(notes):
            parts.append(_text(x + step / 2, y - 2, notes[i], "middle"))
    baseline = top + plot_h
    parts.append(f"<line x1='{_LEFT}' y1='{baseline}' x2='{_LEFT + plot_w}' y2='{baseline}' "
                 "stroke='#999'/>")
    if histogram.edges:
        parts.append(_text(_LEFT, baseline + 11, _number(histogram.edges[0]), "start"))
        parts.append(_text(_LEFT + plot_w, baseline + 11, _number(histogram.edges[-1]), "end"))
    else:
        every = max(1, -(-len(counts) // 6))
        for i in range(0, len(counts), every):
            parts.append(_text(_LEFT + (i + 0.5) * step, baseline + 11, histogram.labels[i],
                               "middle"))
    return Markup("".join(parts) + "</svg>")


def heatmap_table(matrix: Matrix) -> Markup | None:
    """A correlation matrix as a table with a coloured cell per pair (``None`` under 2 columns)."""
    if len(matrix.columns) < 2:
        return None
    signed = matrix.method != "cramers_v"
    names = [_short(name) for name in matrix.columns]
    head = "".join(f"<th title='{_esc(full)}' style='{_VERTICAL}'>{_esc(short)}</th>"
                   for full, short in zip(matrix.columns, names, strict=True))
    rows = []
    for a, short, values in zip(matrix.columns, names, matrix.values, strict=True):
        cells = "".join(_cell(a, b, value, signed)
                        for b, value in zip(matrix.columns, values, strict=True))
        rows.append(f"<tr><th title='{_esc(a)}'>{_esc(short)}</th>{cells}</tr>")
    scale = "−1 (blue) to +1 (red)" if signed else "0 (white) to 1 (blue)"
    caption = f"{_TITLES.get(matrix.method, matrix.method)}, {scale}; blank: undefined"
    return Markup(f"<table class='heatmap' style='font-size:.72rem'><caption>{_esc(caption)}"
                  f"</caption><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}"
                  "</tbody></table>")


def _cell(a: str, b: str, value: float | None, signed: bool) -> str:
    tip = f"{a} × {b}: {'undefined' if value is None else f'{value:.4f}'}"
    if value is None:
        return f"<td title='{_esc(tip)}'></td>"
    red, green, blue = _colour(value, signed)
    ink = "#fff" if 0.299 * red + 0.587 * green + 0.114 * blue < 140 else "#000"
    return (f"<td title='{_esc(tip)}' style='background:rgb({red},{green},{blue});color:{ink};"
            f"text-align:right'>{value:.2f}</td>")


def _colour(value: float, signed: bool) -> tuple[int, int, int]:
    """Linear blend from white towards blue (negative) or red (positive); 0..1 uses blue only."""
    if not signed:
        end, weight = _NEGATIVE, max(0.0, min(value, 1.0))
    else:
        end, weight = (_POSITIVE if value >= 0 else _NEGATIVE), min(abs(value), 1.0)
    return (round(_ZERO[0] + (end[0] - _ZERO[0]) * weight),
            round(_ZERO[1] + (end[1] - _ZERO[1]) * weight),
            round(_ZERO[2] + (end[2] - _ZERO[2]) * weight))


def _horizontal_bars_svg(title: str, labels: Sequence[str], counts: Sequence[int]) -> Markup:
    """One horizontal bar per top value, its label on the left and its count on the right."""
    left, row, right = 110, 14, 50
    height = _TOP + row * len(counts) + 4
    peak = max(counts) or 1
    parts = [_head(title, _WIDTH, height)]
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        y = _TOP + i * row
        width = (_WIDTH - left - right) * count / peak
        parts.append(_text(left - 4, y + 10, label, "end"))
        parts.append(f"<rect x='{left}' y='{y + 1}' width='{width:.1f}' height='{row - 3}' "
                     f"fill='{_COLOR}'><title>{_esc(label)}: {_rows(count)}</title></rect>")
        parts.append(_text(left + width + 3, y + 10, f"{count:,}", "start"))
    return Markup("".join(parts) + "</svg>")


def _head(title: str, width: int, height: int) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' role='img' aria-label='{_esc(title)}'>"
            f"<title>{_esc(title)}</title>"
            + _text(width / 2, 11, title, "middle", size=10))


def _y_axis(peak: int, top: int, plot_h: float) -> str:
    baseline = top + plot_h
    return (f"<line x1='{_LEFT - 1}' y1='{top}' x2='{_LEFT - 1}' y2='{baseline}' stroke='#999'/>"
            + _text(_LEFT - 4, top + 8, f"{peak:,}", "end")
            + _text(_LEFT - 4, baseline, "0", "end"))


def _bar_names(histogram: Histogram) -> list[str]:
    if histogram.edges:
        edges = histogram.edges
        return [f"{_number(edges[i])} – {_number(edges[i + 1])}"
                for i in range(len(histogram.counts))]
    return list(histogram.labels)


def _text(x: float, y: float, text: str, anchor: str, size: int = 9) -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' font-size='{size}' {_FONT}>"
            f"{_esc(text)}</text>")


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _number(value: float) -> str:
    return f"{value:.4g}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _short(value: Any, limit: int = 18) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
