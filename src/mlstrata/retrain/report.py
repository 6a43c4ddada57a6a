"""The outcome of one ``mlstrata retrain``: what was appended, trained, compared and decided.

One typed result rendered to the terminal, JSON and HTML (and stored in the catalog as a
``retrain`` artifact), so why a challenger was or was not promoted is on record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..reports import Report, badge, html_page, paragraph, table
from .compare import SliceComparison

__all__ = ["RETRAIN_KIND", "RetrainReport"]

RETRAIN_KIND = "retrain"
_COLOURS = {"promoted": "green", "kept": "yellow", "not due": "cyan", "failed": "red"}


@dataclass
class RetrainReport(Report):
    """One retrain: ``status`` is ``promoted``, ``kept`` (the champion stays), ``not due`` (the
    policy said no; nothing changed) or ``failed`` (a step failed; the champion stays)."""

    name: str
    status: str = "not due"
    reasons: list[str] = field(default_factory=list)
    trigger: str = "manual"
    batch: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    champion: dict[str, Any] | None = None
    challenger: dict[str, Any] | None = None
    comparisons: list[SliceComparison] = field(default_factory=list)
    decide_on: str = "newest"
    margin: float = 0.0
    seconds: float = 0.0
    _clock: float = field(default_factory=time.perf_counter, repr=False, compare=False)

    @property
    def promoted(self) -> bool:
        """True when the challenger became the champion."""
        return self.status == "promoted"

    @property
    def exit_code(self) -> int:
        """0 promoted or not due, 1 the champion was kept or a step failed (for schedulers)."""
        return 0 if self.status in ("promoted", "not due") else 1

    def step(self, name: str, status: str, detail: str = "") -> None:
        """Record a step of the retrain that just ended, with its duration."""
        now = time.perf_counter()
        self.steps.append({"step": name, "status": status, "detail": detail,
                           "seconds": round(now - self._clock, 1)})
        self._clock = now

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return {"name": self.name, "status": self.status, "promoted": self.promoted,
                "reasons": self.reasons, "trigger": self.trigger, "batch": self.batch,
                "steps": self.steps, "champion": self.champion, "challenger": self.challenger,
                "decide_on": self.decide_on, "margin": self.margin,
                "comparisons": [c.to_dict() for c in self.comparisons],
                "seconds": round(self.seconds, 1)}

    def verdict(self) -> str:
        """One line: what happened and why."""
        why = "; ".join(self.reasons)
        challenger = (self.challenger or {}).get("registered") or (self.challenger or {}).get(
            "model", "the challenger")
        lines = {"promoted": f"{challenger} promoted to champion of {self.name}",
                 "kept": f"{challenger} NOT promoted; the champion stays",
                 "not due": f"retrain of {self.name} not due; nothing changed",
                 "failed": f"retrain of {self.name} failed; the champion stays"}
        return f"{lines[self.status]}{': ' + why if why else ''}"

    def render_terminal(self, console: Console) -> None:
        """Steps, the comparison table and the verdict."""
        if self.steps:
            grid = Table("step", "status", "seconds", "detail",
                         title=f"mlstrata retrain {self.name}")
            for item in self.steps:
                grid.add_row(item["step"], item["status"], f"{item['seconds']:.1f}",
                             escape(item["detail"]))
            console.print(grid)
        if self.comparisons:
            console.print(_comparison_table(self.comparisons, self.decide_on))
        colour = _COLOURS[self.status]
        console.print(f"[bold {colour}]{escape(self.verdict())}[/]")

    def to_html(self) -> str:
        """One page: facts, steps, the comparison and the reasons."""
        facts = {"dataset": self.name, "status": self.status, "trigger": self.trigger,
                 "decided on": f"{self.decide_on} sealed rows", "margin": self.margin,
                 "champion": (self.champion or {}).get("registered"),
                 "challenger": (self.challenger or {}).get("registered")
                 or (self.challenger or {}).get("model"),
                 "seconds": round(self.seconds, 1)}
        rows = [{**c.to_dict(), "beats": badge(c.beats(self.margin))} for c in self.comparisons]
        return html_page(
            f"Retrain of {self.name}: {self.status}",
            [("Verdict", [paragraph(self.verdict())]),
             ("Champion against challenger (paired bootstrap on the same sealed rows)",
              [table(rows)]),
             ("Steps", [table(self.steps)]),
             ("Batch", [table([self.batch])] if self.batch else [])],
            facts=facts)


def _comparison_table(comparisons: list[SliceComparison], decide_on: str) -> Table:
    grid = Table("sealed rows", "rows", "metric", "champion", "challenger", "improvement",
                 "interval", title="champion vs challenger (paired bootstrap)")
    for c in comparisons:
        label = f"{c.slice}{' (decides)' if c.slice == decide_on else ''}"
        interval = (f"[{c.low:+.4f}, {c.high:+.4f}] ({c.confidence:.0%})"
                    if c.low is not None and c.high is not None else "-")
        grid.add_row(label, str(c.rows), c.metric, _fmt(c.champion), _fmt(c.challenger),
                     "-" if c.improvement is None else f"{c.improvement:+.4f}", interval)
    return grid


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
