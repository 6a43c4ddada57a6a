"""What ``mlstrata monitor`` found, rendered for a terminal, a scheduler (JSON) and people (HTML).

:class:`MonitorReport` holds one :class:`WindowResult` per window of the log: volume, latency,
warnings, the drift of every input and of the predictions, and — with feedback — live
performance. Its :attr:`~MonitorReport.verdict` is ``healthy``, ``drift``, ``decay`` or
``drift and decay``; :attr:`~MonitorReport.exit_code` is what a scheduler sees (0 healthy,
1 otherwise). :meth:`MonitorReport.to_dict` is the data other renderers (the Prometheus text
file) read.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from ..reports import Fragment, Report, badge, html_page, paragraph, table
from ._svg import paired_bars_svg, series_svg
from .decay import WindowDecay
from .drift import ColumnDrift

__all__ = ["MonitorReport", "WindowResult"]

_HTML_COLUMNS_SHOWN = 60
_TERMINAL_WINDOWS = 24


@dataclass(frozen=True)
class WindowResult:
    """One window: its span, traffic, drift per column and performance."""

    index: int
    start: str
    end: str
    rows: int
    requests: int
    sources: dict[str, int]
    latency_ms: dict[str, float | None]
    warning_rate: float
    warnings: dict[str, int]
    evaluated: bool
    columns: list[ColumnDrift]
    predictions: list[ColumnDrift]
    decay: WindowDecay | None

    @property
    def drifted_columns(self) -> list[str]:
        """Inputs whose distribution or missing rate drifted."""
        return [c.name for c in self.columns if c.flagged]

    @property
    def prediction_drift(self) -> bool:
        """Whether the predictions' distribution drifted."""
        return any(c.flagged for c in self.predictions)

    @property
    def drift(self) -> bool:
        """Any input or the predictions drifted."""
        return bool(self.drifted_columns) or self.prediction_drift

    @property
    def decayed(self) -> bool:
        """Live performance fell (see :mod:`.decay`)."""
        return self.decay is not None and self.decay.decayed

    @property
    def label(self) -> str:
        """A short name for the window (its start)."""
        return self.start.replace("T", " ").removesuffix("Z")[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"index": self.index, "start": self.start, "end": self.end, "rows": self.rows,
                "requests": self.requests, "sources": self.sources,
                "latency_ms": self.latency_ms, "warning_rate": self.warning_rate,
                "warnings": self.warnings, "evaluated": self.evaluated, "drift": self.drift,
                "drifted_columns": self.drifted_columns,
                "prediction_drift": self.prediction_drift, "decay": self.decayed,
                "columns": [c.to_dict() for c in self.columns],
                "predictions": [c.to_dict() for c in self.predictions],
                "performance": self.decay.to_dict() if self.decay is not None else None}


@dataclass(frozen=True)
class MonitorReport(Report):
    """Every window of one model version's log against its reference."""

    model: str
    version: int
    package: str
    log: str
    window: str
    since: str | None
    until: str | None
    thresholds: dict[str, Any]
    alpha: float
    training_rows: int
    feedback: bool
    windows: list[WindowResult]

    @property
    def drift(self) -> bool:
        """Some window drifted."""
        return any(w.drift for w in self.windows)

    @property
    def decay(self) -> bool:
        """Some window decayed."""
        return any(w.decayed for w in self.windows)

    @property
    def verdict(self) -> str:
        """``healthy``, ``drift``, ``decay`` or ``drift and decay``."""
        found = [name for name, flag in (("drift", self.drift), ("decay", self.decay)) if flag]
        return " and ".join(found) or "healthy"

    @property
    def exit_code(self) -> int:
        """0 when healthy, 1 on drift or decay."""
        return 0 if self.verdict == "healthy" else 1

    @property
    def rows(self) -> int:
        """Predictions read."""
        return sum(w.rows for w in self.windows)

    def to_dict(self) -> dict[str, Any]:
        """The verdict, the settings and every window."""
        return {"model": self.model, "version": self.version, "package": self.package,
                "log": self.log, "window": self.window, "since": self.since,
                "until": self.until, "verdict": self.verdict, "drift": self.drift,
                "decay": self.decay, "rows": self.rows, "training_rows": self.training_rows,
                "drifted_columns": list(dict.fromkeys(
                    c for w in self.windows for c in w.drifted_columns)),
                "drifted_windows": sum(w.drift for w in self.windows),
                "decayed_windows": sum(w.decayed for w in self.windows),
                "thresholds": self.thresholds, "significance": {
                    "family_p_value": self.thresholds.get("p_value"),
                    "per_test_p_value": self.alpha, "correction": "bonferroni"},
                "feedback": self.feedback, "windows": [w.to_dict() for w in self.windows]}

    def render_terminal(self, console: Console) -> None:
        """The verdict, one row per window, and the flagged columns with their reasons."""
        colour = "green" if self.verdict == "healthy" else "red"
        console.print(f"[bold {colour}]{self.verdict.upper()}[/] {self.model}@{self.version}: "
                      f"{self.rows:,} predictions in {len(self.windows)} window(s) of "
                      f"{self.window} (log: {self.log})", highlight=False, soft_wrap=True)
        headers = ["window", "rows", "p50/p99 ms", "warned", "drifted inputs", "predictions"]
        grid = Table(*headers, *(["labelled", "performance"] if self.feedback else []))
        shown = self.windows[-_TERMINAL_WINDOWS:]
        for w in shown:
            cells = [w.label, f"{w.rows:,}", _latency(w), f"{w.warning_rate:.1%}",
                     _drift_cell(w), _prediction_cell(w)]
            grid.add_row(*cells, *([_labels_cell(w), _decay_cell(w)] if self.feedback else []))
        console.print(grid)
        if len(shown) < len(self.windows):
            console.print(f"(the last {len(shown)} of {len(self.windows)} windows; every window "
                          "is in the JSON and HTML reports)", highlight=False)
        if not any(w.evaluated for w in self.windows):
            console.print(f"[yellow]no window has the {self.thresholds.get('min_rows')} rows a "
                          "drift verdict needs (monitor.min_rows); use a wider --window[/]",
                          highlight=False)
        flagged = [(w, c) for w in self.windows for c in [*w.columns, *w.predictions]
                   if c.flagged]
        if flagged:
            details = Table("window", "column", "why", "PSI", "p-value")
            for w, c in flagged[:40]:
                details.add_row(w.label, c.name, "; ".join(c.reasons), _num(c.psi),
                                _num(c.p_value))
            console.print(details)
        for w in self.windows:
            if w.decayed and w.decay is not None:
                console.print(f"[red]decay[/] {w.label}: " + "; ".join(w.decay.reasons),
                              highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """One page: facts, time series, the window table, histograms of drifted columns."""
        facts = {"model": f"{self.model}@{self.version}", "verdict": self.verdict,
                 "package": self.package, "log": self.log, "window": self.window,
                 "since": self.since or "start of the log", "until": self.until or "now",
                 "predictions": self.rows, "training rows (reference)": self.training_rows,
                 "per-test p-value (Bonferroni)": self.alpha,
                 **{f"threshold {k}": v for k, v in self.thresholds.items() if k != "log"}}
        sections: list[tuple[str, Iterable[Fragment]]] = [
            ("Windows", [table([_window_row(w) for w in self.windows])]),
            ("Time series", self._series()),
            ("Drifted columns", self._histograms()),
            ("Columns in the last window", [self._column_table()]),
        ]
        if self.feedback:
            columns = ["window", "labelled", "coverage", *self._metric_names(), "verdict", "why"]
            sections.insert(2, ("Performance", [table(self._performance_rows(), columns)]))
        return html_page(f"Monitoring {self.model}@{self.version}", sections,
                         subtitle=self.verdict, facts=facts)

    def _series(self) -> list[Fragment]:
        labels = [w.label for w in self.windows]
        drift = [w.drift for w in self.windows]
        charts = [
            series_svg("predictions", labels, [float(w.rows) for w in self.windows]),
            series_svg("latency p99 (ms)", labels, [w.latency_ms.get("p99") for w in self.windows]),
            series_svg("rows with warnings", labels, [w.warning_rate for w in self.windows]),
            series_svg("drifted inputs", labels,
                       [float(len(w.drifted_columns)) for w in self.windows], flagged=drift),
            series_svg("largest input PSI", labels,
                       [max((c.psi or 0.0 for c in w.columns), default=0.0)
                        for w in self.windows], threshold=self.thresholds.get("psi"),
                       flagged=drift),
        ]
        for k, name in enumerate(p.name for p in (self.windows[0].predictions
                                                  if self.windows else [])):
            charts.append(series_svg(
                f"PSI of {name}", labels,
                [w.predictions[k].psi if k < len(w.predictions) else None
                 for w in self.windows], threshold=self.thresholds.get("psi"),
                flagged=[w.prediction_drift for w in self.windows]))
        if self.feedback:
            charts.append(series_svg("label coverage", labels,
                                     [w.decay.coverage if w.decay else None
                                      for w in self.windows]))
            for metric in self._metric_names():
                charts.append(series_svg(
                    metric, labels, [_live(w, metric) for w in self.windows],
                    threshold=_low(self.windows, metric),
                    flagged=[w.decayed for w in self.windows]))
        return [Fragment("<div class='grid'>" + "".join(charts) + "</div>")]

    def _histograms(self) -> list[Fragment]:
        """Reference vs current, for each flagged column in the window it drifted most."""
        worst: dict[str, ColumnDrift] = {}
        for w in self.windows:
            for c in [*w.columns, *w.predictions]:
                if c.flagged and c.bins and (c.name not in worst
                                             or (c.psi or 0) > (worst[c.name].psi or 0)):
                    worst[c.name] = c
        if not worst:
            return [paragraph("No column drifted.")]
        cards = [_card(c) for c in list(worst.values())[:_HTML_COLUMNS_SHOWN]]
        return [Fragment("<div class='grid'>" + "".join(cards) + "</div>")]

    def _column_table(self) -> Fragment:
        if not self.windows:
            return paragraph("No window.")
        last = self.windows[-1]
        rows = [{"column": c.name, "kind": c.kind,
                 "drift": badge(not c.flagged, "drift" if c.flagged else "stable"),
                 "PSI": c.psi, "test": c.test, "p-value": c.p_value,
                 "Wasserstein (σ)": c.wasserstein, "share change": c.share_change,
                 "new levels": ", ".join(c.new_levels) or None,
                 "missing": f"{c.reference_missing_rate:.1%} → {c.missing_rate:.1%}",
                 "why": "; ".join(c.reasons)} for c in [*last.columns, *last.predictions]]
        return table(rows)

    def _performance_rows(self) -> list[dict[str, Any]]:
        rows = []
        for w in self.windows:
            if w.decay is None:
                continue
            row: dict[str, Any] = {"window": w.label, "labelled": w.decay.labelled,
                                   "coverage": f"{w.decay.coverage:.1%}"}
            row.update({m.metric: m.value for m in w.decay.metrics})
            row["verdict"] = (badge(not w.decayed, "decay" if w.decayed else "ok")
                              if w.decay.evaluated else "too few labels")
            row["why"] = "; ".join(w.decay.reasons)
            rows.append(row)
        return rows

    def _metric_names(self) -> list[str]:
        return list(dict.fromkeys(m.metric for w in self.windows if w.decay
                                  for m in w.decay.metrics))


def _card(column: ColumnDrift) -> str:
    """A drifted column's reference-vs-current histogram and why it was flagged."""
    chart = paired_bars_svg(column.name, column.bins, column.reference_shares,
                            column.current_shares)
    return (f"<div class='card'>{chart}<p class='muted'>{html.escape('; '.join(column.reasons))}"
            "</p></div>")


def _window_row(w: WindowResult) -> dict[str, Any]:
    return {"window": w.label, "end": w.end, "rows": w.rows, "requests": w.requests,
            "latency p50 (ms)": w.latency_ms.get("p50"),
            "latency p99 (ms)": w.latency_ms.get("p99"),
            "warned rows": f"{w.warning_rate:.1%}",
            "drifted inputs": ", ".join(w.drifted_columns) or ("-" if w.evaluated
                                                               else "too few rows"),
            "predictions": badge(not w.prediction_drift,
                                 "drift" if w.prediction_drift else "stable"),
            "performance": (badge(not w.decayed, "decay" if w.decayed else "ok")
                            if w.decay is not None and w.decay.evaluated else "-")}


def _live(w: WindowResult, metric: str) -> float | None:
    if w.decay is None:
        return None
    return next((m.value for m in w.decay.metrics if m.metric == metric), None)


def _low(windows: list[WindowResult], metric: str) -> float | None:
    for w in windows:
        for m in w.decay.metrics if w.decay else []:
            if m.metric == metric:
                return m.low
    return None


def _latency(w: WindowResult) -> str:
    p50, p99 = w.latency_ms.get("p50"), w.latency_ms.get("p99")
    return "-" if p50 is None or p99 is None else f"{p50:.3g} / {p99:.3g}"


def _drift_cell(w: WindowResult) -> str:
    if not w.evaluated:
        return "[dim]too few rows[/]"
    return f"[red]{', '.join(w.drifted_columns)}[/]" if w.drifted_columns else "none"


def _prediction_cell(w: WindowResult) -> str:
    return "[red]drift[/]" if w.prediction_drift else "stable"


def _labels_cell(w: WindowResult) -> str:
    if w.decay is None:
        return "-"
    return f"{w.decay.labelled:,} ({w.decay.coverage:.0%})"


def _decay_cell(w: WindowResult) -> str:
    if w.decay is None:
        return "-"
    if not w.decay.evaluated:
        return "[dim]too few labels[/]"
    return "[red]decay[/]" if w.decayed else "ok"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
