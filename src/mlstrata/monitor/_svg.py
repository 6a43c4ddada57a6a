"""Inline SVG charts for the monitoring report: a time series per metric, and reference-vs-
current histograms of a drifted column.

Written as SVG text (like the profile's plots): nothing is rasterised, a report of fifty columns
stays a few hundred kilobytes and works offline; every point and bar has a ``<title>`` with its
exact value, and all text is escaped.

>>> svg = series_svg("rows", ["w1", "w2"], [10.0, None], threshold=5.0)
>>> svg.startswith("<svg") and "w1: 10" in svg
True
>>> "current" in paired_bars_svg("age", ["≤ 1", "> 1"], [0.5, 0.5], [0.2, 0.8])
True
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from markupsafe import Markup

__all__ = ["paired_bars_svg", "series_svg"]

_WIDTH, _HEIGHT = 360, 140
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 8, 18, 22
_LINE, _ALERT, _REFERENCE, _CURRENT = "#4c72b0", "#c44e52", "#9aa5b1", "#dd8452"
_FONT = "font-family='sans-serif' font-size='10'"


def series_svg(title: str, labels: Sequence[str], values: Sequence[float | None], *,
               threshold: float | None = None, flagged: Sequence[bool] = ()) -> Markup:
    """A line over the windows (gaps where a value is None), a dashed threshold line, flagged
    windows as red dots."""
    known = [v for v in values if v is not None]
    top = max([*known, threshold or 0.0, 1e-12])
    bottom = min([*known, 0.0])
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - (value - bottom) / ((top - bottom) or 1.0))

    parts = [_head(title), _axis(y(top), f"{top:.3g}"), _axis(y(bottom), f"{bottom:.3g}")]
    if threshold is not None:
        parts.append(f"<line x1='{_LEFT}' x2='{_LEFT + plot_w}' y1='{y(threshold):.1f}' "
                     f"y2='{y(threshold):.1f}' stroke='{_ALERT}' stroke-dasharray='4 3'>"
                     f"<title>threshold {threshold:g}</title></line>")
    path, pen = [], "M"
    for i, value in enumerate(values):
        if value is None:
            pen = "M"
            continue
        path.append(f"{pen}{_LEFT + i * step:.1f},{y(value):.1f}")
        pen = "L"
    if path:
        parts.append(f"<path d='{' '.join(path)}' fill='none' stroke='{_LINE}' "
                     "stroke-width='1.5'/>")
    for i, value in enumerate(values):
        if value is None:
            continue
        alert = i < len(flagged) and flagged[i]
        parts.append(f"<circle cx='{_LEFT + i * step:.1f}' cy='{y(value):.1f}' "
                     f"r='{3 if alert else 2}' fill='{_ALERT if alert else _LINE}'><title>"
                     f"{_esc(labels[i])}: {value:.4g}</title></circle>")
    if labels:
        parts.append(_text(_LEFT, _HEIGHT - 6, labels[0], "start"))
        if len(labels) > 1:
            parts.append(_text(_LEFT + plot_w, _HEIGHT - 6, labels[-1], "end"))
    return Markup("".join(parts) + "</svg>")


def paired_bars_svg(title: str, bins: Sequence[str], reference: Sequence[float],
                    current: Sequence[float]) -> Markup:
    """Reference (grey) and current (orange) shares side by side for each bin."""
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(len(bins), 1)
    peak = max([*reference, *current, 1e-12])
    parts = [_head(title), _axis(_TOP, f"{peak:.0%}"), _axis(_TOP + plot_h, "0%")]
    for i, name in enumerate(bins):
        for j, (share, color, which) in enumerate(((reference[i], _REFERENCE, "reference"),
                                                   (current[i], _CURRENT, "current"))):
            height = plot_h * share / peak
            x = _LEFT + i * step + j * step / 2
            parts.append(f"<rect x='{x:.1f}' y='{_TOP + plot_h - height:.1f}' "
                         f"width='{max(step / 2 - 1, 0.5):.1f}' height='{height:.1f}' "
                         f"fill='{color}'><title>{_esc(name)} ({which}): {share:.2%}</title>"
                         "</rect>")
    if bins:
        parts.append(_text(_LEFT, _HEIGHT - 6, bins[0], "start"))
        if len(bins) > 1:
            parts.append(_text(_LEFT + plot_w, _HEIGHT - 6, bins[-1], "end"))
    parts.append(_text(_WIDTH - _RIGHT, 12, "■ reference", "end", _REFERENCE))
    parts.append(_text(_WIDTH - _RIGHT - 70, 12, "■ current", "end", _CURRENT))
    return Markup("".join(parts) + "</svg>")


def _head(title: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' "
            f"viewBox='0 0 {_WIDTH} {_HEIGHT}' role='img' aria-label='{_esc(title)}'>"
            f"<text x='{_LEFT}' y='12' {_FONT} fill='#333' font-weight='bold'>"
            f"{_esc(_short(title))}</text>")


def _axis(y: float, label: str) -> str:
    return (f"<line x1='{_LEFT}' x2='{_WIDTH - _RIGHT}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='#ddd'/>{_text(_LEFT - 4, y + 3, label, 'end')}")


def _text(x: float, y: float, text: str, anchor: str, color: str = "#333") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' {_FONT} fill='{color}'>"
            f"{_esc(_short(text))}</text>")


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)
