"""How a :class:`~mlstrata.data.profile.Profile` looks: a Rich terminal summary and an HTML page.

Only presentation lives here; every number comes from the profile object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..reports import Fragment, html_page, paragraph, table
from ._profile_correlations import SAMPLE_ROWS
from ._profile_plots import class_balance_svg, column_plot, heatmap_table
from ._profile_stats import ColumnProfile
from .target import TargetInfo

if TYPE_CHECKING:
    from .profile import Profile

__all__ = ["render_html", "render_terminal"]

_TOP_ASSOCIATIONS = 10


def render_terminal(profile: Profile, console: Console) -> None:
    """Overview table, target line, PII findings and warnings."""
    console.print(f"[bold]{escape(profile.title or 'profile')}[/]: {profile.rows:,} rows × "
                  f"{len(profile.columns)} columns, {profile.duplicates.count:,} duplicate rows "
                  f"({profile.duplicates.pct:.1f}%)")
    overview = Table("column", "type", "missing", "distinct", "min", "max", "mean")
    for c in profile.columns:
        overview.add_row(escape(c.name), c.type, f"{c.missing:,} ({c.missing_pct:.1f}%)",
                         f"{c.distinct:,}{'' if c.distinct_exact else '~'}",
                         *(escape(_fmt(v)) for v in (c.min, c.max, c.mean)))
    console.print(overview)
    console.print(f"[bold]target[/]: {escape(_target_line(profile.target))}", highlight=False)
    for finding in profile.pii:
        line = f"{finding.column}: {', '.join(finding.kinds)}{_action(finding.details)}"
        console.print(f"[magenta]PII[/] {escape(line)}", highlight=False)
    for w in profile.warnings:
        line = f"[{w.kind}] " + (f"{w.column}: " if w.column else "") + w.message
        console.print(f"[yellow]warning[/] {escape(line)}", highlight=False)


def render_html(profile: Profile) -> str:
    """The whole report as one self-contained HTML page with inline SVG plots."""
    sections: list[tuple[str, list[Fragment]]] = [
        ("Warnings", [table([_warning_row(w) for w in profile.warnings])]),
        ("Target", list(_target_parts(profile.target))),
        ("Columns", [table([_overview_row(c) for c in profile.columns])]),
        ("Column details", [_cards(profile.columns)]),
        ("Correlations", list(_correlation_parts(profile))),
        ("Personal data (PII)", [table([
            {"column": f.column, "kinds": ", ".join(f.kinds), **f.details} for f in profile.pii
        ])]),
    ]
    target = profile.target
    facts = {
        "dataset": profile.title,
        "id": profile.dataset_id or "—",
        "rows": f"{profile.rows:,}",
        "columns": len(profile.columns),
        "duplicate rows": f"{profile.duplicates.count:,} ({profile.duplicates.pct:.1f}%)",
        "target": _target_line(target),
        "warnings": len(profile.warnings),
    }
    return html_page(f"Profile of {profile.title or 'a table'}", sections,
                     subtitle="Computed out of core with DuckDB by mlstrata profile.", facts=facts)


def _target_line(target: TargetInfo | None) -> str:
    if target is None:
        return "none found"
    line = f"{target.column} ({target.source}) → {target.task or 'not usable'}"
    if target.classes:
        line += "; " + ", ".join(f"{c.value!r}: {c.share:.1%}" for c in target.classes[:6])
    elif target.distribution:
        d = target.distribution
        line += f"; mean {_fmt(d.get('mean'))}, std {_fmt(d.get('std'))}, " \
                f"median {_fmt(d.get('p50'))}"
    return line


def _target_parts(target: TargetInfo | None) -> Iterator[Fragment]:
    if target is None:
        yield paragraph("No target column was declared at ingest or recognised by name.")
        return
    yield paragraph(_target_line(target))
    chart = class_balance_svg(target)
    if chart:
        yield chart
    if target.classes:
        yield table([{"class": c.value, "rows": c.count, "share": f"{c.share:.2%}"}
                     for c in target.classes])
    elif target.distribution:
        yield table([{k: v for k, v in target.distribution.items()}])


def _correlation_parts(profile: Profile) -> Iterator[Fragment]:
    corr = profile.correlations
    where = (f"a reproducible sample of {corr.sample_rows:,} rows (reservoir, seed {corr.seed})"
             if corr.sampled else f"all {corr.sample_rows:,} rows")
    yield paragraph(f"Computed on {where}; tables over {SAMPLE_ROWS:,} rows are sampled. "
                    "Cramér's V is bias-corrected; η (correlation_ratio) relates a number to a "
                    "category.")
    for matrix in (corr.pearson, corr.spearman, corr.cramers_v):
        heatmap = heatmap_table(matrix)
        if heatmap:
            yield heatmap
    if corr.target:
        yield paragraph("Strongest single-feature associations with the target:")
        yield table([{"feature": a.feature, "measure": a.measure, "value": a.value}
                     for a in corr.target[:_TOP_ASSOCIATIONS]])


def _cards(columns: tuple[ColumnProfile, ...]) -> Fragment:
    cards = Markup("")
    for column in columns:
        plot = column_plot(column) or Markup("")
        top = table([{"value": v.value, "count": v.count} for v in column.top_values[:5]])
        cards += (Markup("<div class='card'><h3>") + column.name + Markup("</h3>")
                  + table(_detail_rows(column), ["statistic", "value"]) + plot + top
                  + Markup("</div>"))
    return Markup("<div class='grid'>") + cards + Markup("</div>")


def _detail_rows(column: ColumnProfile) -> list[dict[str, Any]]:
    stats: dict[str, Any] = {
        "type": f"{column.type} ({column.engine_type})", "count": column.count,
        "missing": f"{column.missing} ({column.missing_pct:.1f}%)",
        "distinct": column.distinct if column.distinct_exact else f"≈{column.distinct}",
        "min": column.min, "max": column.max, "mean": column.mean, "std": column.std,
        "skewness": column.skewness, **column.quantiles, "zeros": column.zeros,
        "outliers (1.5 IQR)": column.outliers, "outliers (3 IQR)": column.far_outliers,
    }
    return [{"statistic": k, "value": v} for k, v in stats.items() if v is not None]


def _overview_row(c: ColumnProfile) -> dict[str, Any]:
    return {"column": c.name, "type": c.type, "missing": c.missing,
            "missing %": round(c.missing_pct, 2), "distinct": c.distinct, "min": c.min,
            "max": c.max, "mean": c.mean, "std": c.std}


def _warning_row(w: Any) -> dict[str, Any]:
    return {"column": w.column or "(table)", "kind": w.kind, "message": w.message}


def _action(details: Any) -> str:
    action = details.get("action")
    return f" (action: {action})" if action else ""


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
