"""Small matplotlib figures for the profile's HTML page, returned as embeddable PNG data URIs.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend) and kept small, so a report with dozens of columns stays a few hundred kilobytes.
"""

from __future__ import annotations

from typing import Any

from ..reports import figure_uri
from ._profile_correlations import Matrix
from ._profile_stats import ColumnProfile
from .target import TargetInfo

__all__ = ["class_balance_uri", "column_plot_uri", "heatmap_uri"]

_SMALL = (3.4, 2.1)
_COLOR = "#4c72b0"
_TITLES = {"pearson": "Pearson", "spearman": "Spearman", "cramers_v": "Cramér's V"}


def column_plot_uri(column: ColumnProfile) -> str | None:
    """A histogram (numbers, dates) or a bar chart of top values (text, booleans), or ``None``."""
    histogram = column.histogram
    if histogram is not None and histogram.edges:
        figure, axes = _figure(_SMALL)
        edges = histogram.edges
        axes.stairs(histogram.counts, edges, fill=True, color=_COLOR)
        axes.set_xlim(edges[0], edges[-1])
    elif histogram is not None and histogram.labels:
        figure, axes = _figure(_SMALL)
        axes.bar(range(len(histogram.counts)), histogram.counts, color=_COLOR, width=1.0)
        _sparse_ticks(axes, histogram.labels)
    elif column.top_values:
        labels = [_short(v.value) for v in column.top_values][::-1]
        figure, axes = _figure((_SMALL[0], 0.5 + 0.22 * len(labels)))
        axes.barh(labels, [v.count for v in column.top_values][::-1], color=_COLOR)
    else:
        return None
    axes.set_title(column.name, fontsize=8)
    axes.locator_params(axis="x", nbins=4)
    return figure_uri(figure)


def heatmap_uri(matrix: Matrix) -> str | None:
    """A heatmap of a correlation matrix (``None`` with fewer than two columns)."""
    import numpy as np

    size = len(matrix.columns)
    if size < 2:
        return None
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix.values])
    side = min(2.0 + 0.35 * size, 9.0)
    figure, axes = _figure((side + 1.0, side))
    low = 0.0 if matrix.method == "cramers_v" else -1.0
    image = axes.imshow(values, vmin=low, vmax=1.0, cmap="viridis" if low == 0 else "RdBu_r")
    names = [_short(name) for name in matrix.columns]
    axes.set_xticks(range(size), names, rotation=90, fontsize=7)
    axes.set_yticks(range(size), names, fontsize=7)
    if size <= 12:
        for (i, j), value in np.ndenumerate(values):
            if not np.isnan(value):
                dark = value < 0.5 if low == 0 else abs(value) > 0.6
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                          color="white" if dark else "black")
    figure.colorbar(image, ax=axes, shrink=0.8)
    axes.set_title(_TITLES.get(matrix.method, matrix.method), fontsize=9)
    return figure_uri(figure)


def class_balance_uri(target: TargetInfo) -> str | None:
    """A bar chart of the target's classes (``None`` for regression or without classes)."""
    if not target.classes:
        return None
    labels = [_short(c.value) for c in target.classes]
    figure, axes = _figure((max(3.0, 0.5 * len(labels) + 1.5), 2.4))
    bars = axes.bar(labels, [c.count for c in target.classes], color=_COLOR)
    axes.bar_label(bars, labels=[f"{c.share:.1%}" for c in target.classes], fontsize=7)
    axes.margins(y=0.15)
    axes.set_title(f"class balance of {target.column}", fontsize=9)
    axes.tick_params(axis="x", labelrotation=45 if len(labels) > 6 else 0)
    return figure_uri(figure)


def _figure(size: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=70, layout="constrained")
    axes = figure.add_subplot()
    axes.tick_params(labelsize=7)
    return figure, axes


def _sparse_ticks(axes: Any, labels: tuple[str, ...]) -> None:
    step = max(1, len(labels) // 6)
    positions = list(range(0, len(labels), step))
    axes.set_xticks(positions, [labels[i] for i in positions], rotation=45, fontsize=6)


def _short(value: Any, limit: int = 18) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
