"""The result of ``mlstrata train``: leaderboard, exclusions, tuning, error analysis — as a report.

Data first: :class:`Entry` is one cross-validated leaderboard row, :class:`TrainResult` the whole
outcome; both serialize to JSON, and the result renders to the terminal (Rich) and to one
self-contained HTML page (plots embedded).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from ..reports import Fragment, Report, html_page, paragraph, table
from ..workspace import Artifact
from .error_analysis import ErrorAnalysis
from .search_run import SearchSummary
from .tune import Tuning

__all__ = ["Entry", "EntryKind", "TrainResult"]

EntryKind = Literal["baseline", "candidate", "tuned", "ensemble"]
_SHOWN_METRICS = 3


@dataclass
class Entry:
    """One cross-validated model on the leaderboard.

    ``eligible`` is False for entries that may not win (the baseline, or a model that cannot be
    exported to ONNX while ``require_onnx`` is set). ``result`` is the :class:`CVResult` (with the
    out-of-fold predictions); it is not serialized.
    """

    name: str
    candidate: str
    kind: EntryKind
    params: dict[str, Any]
    metrics: dict[str, tuple[float, float]]
    fit_seconds: float
    predict_seconds: float
    onnx: bool
    eligible: bool
    run_id: str | None = None
    result: Any = field(default=None, repr=False, compare=False)

    def score(self, metric: str) -> float:
        """The mean cross-validated value of ``metric``."""
        return self.metrics[metric][0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready row: metrics as ``{mean, std}``."""
        return {
            "name": self.name, "candidate": self.candidate, "kind": self.kind,
            "params": self.params,
            "metrics": {m: {"mean": _finite(mean), "std": _finite(std)}
                        for m, (mean, std) in self.metrics.items()},
            "fit_seconds": self.fit_seconds, "predict_seconds": self.predict_seconds,
            "onnx": self.onnx, "eligible": self.eligible, "mlflow_run_id": self.run_id,
        }


@dataclass
class TrainResult(Report):
    """What ``train`` did: the ranked leaderboard, the stored winner and how it got there."""

    model: Artifact
    dataset: str
    task: str
    target: str | None
    metric: str
    greater_is_better: bool
    leaderboard: list[Entry]
    winner: str
    excluded: list[dict[str, Any]]
    tuning: list[Tuning]
    errors: ErrorAnalysis | None
    clusters: list[dict[str, float]] | None
    mlflow_run_id: str
    tracking_uri: str
    seconds: float
    report_paths: dict[str, Path] = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict, repr=False)
    search: SearchSummary | None = None

    @property
    def cv_score(self) -> float:
        """The winner's mean cross-validated primary metric (training rows only)."""
        return self._winner_entry().score(self.metric)

    def to_dict(self) -> dict[str, Any]:
        """Every number of the report, JSON-ready."""
        return {
            "model": self.model.ref, "model_id": self.model.id, "dataset": self.dataset,
            "task": self.task, "target": self.target, "metric": self.metric,
            "greater_is_better": self.greater_is_better, "winner": self.winner,
            "leaderboard": [e.to_dict() for e in self.leaderboard],
            "excluded": self.excluded, "tuning": [t.to_dict() for t in self.tuning],
            "error_analysis": self.errors.to_dict() if self.errors else None,
            "clusters": self.clusters, "mlflow_run_id": self.mlflow_run_id,
            "tracking_uri": self.tracking_uri, "seconds": round(self.seconds, 3),
            "report": {k: str(v) for k, v in self.report_paths.items()},
            "cv_score": _finite(self.cv_score),
            "elapsed_seconds": round(self._elapsed(), 3),
            "search": self.search.to_dict() if self.search is not None else None,
        }

    def _elapsed(self) -> float:
        """The whole training's wall time: the search's measure (publishing included) if any."""
        if self.search is not None and not math.isnan(self.search.elapsed_seconds):
            return self.search.elapsed_seconds
        return self.seconds

    def render_terminal(self, console: Console) -> None:
        """The leaderboard as a table, then exclusions, tuning, the winner and the report path."""
        console.print(self._leaderboard_table())
        for item in self.excluded:
            console.print(f"excluded [bold]{item['column']}[/]: {item['reason']} "
                          f"({item.get('detail', '')})", highlight=False)
        for tuning in self.tuning:
            best = "—" if tuning.best_score is None else f"{tuning.best_score:.4f}"
            console.print(f"tuned {tuning.candidate}: {tuning.trials} trials "
                          f"({tuning.new_trials} new, {tuning.pruned} pruned), best {best}",
                          highlight=False)
        for line in self.search.lines() if self.search is not None else []:
            console.print(line, highlight=False)
        mean, std = self._winner_entry().metrics[self.metric]
        console.print(f"[bold green]winner[/] {self.winner}: {self.metric} {mean:.4f} ± {std:.4f}"
                      f"  →  model [bold]{self.model.ref}[/] ({self.model.id[:12]})",
                      highlight=False)
        if "html" in self.report_paths:
            console.print(f"report: {self.report_paths['html']}", highlight=False)
        console.print(f"mlflow run: {self.mlflow_run_id} ({self.tracking_uri})", highlight=False)

    def to_html(self) -> str:
        """One self-contained page: leaderboard, exclusions, tuning, error analysis."""
        sections: list[tuple[str, list[Fragment]]] = [
            ("Leaderboard", [
                paragraph(f"Ranked by cross-validated {self.metric} "
                          f"({'higher' if self.greater_is_better else 'lower'} is better); "
                          "mean ± std over the folds, seconds per fold."),
                table(self._rows()),
            ]),
            ("Excluded features", [table(self.excluded)]),
            ("Tuning", [table([t.to_dict() for t in self.tuning])]),
        ]
        if self.search is not None:
            sections.append(("Search", [paragraph(" ".join(self.search.lines())),
                                        table([t.to_dict() for t in self.search.trials])]))
        if self.clusters is not None:
            sections.append(("Choosing k", [table(self.clusters)]))
        if self.errors is not None:
            sections.append(("Error analysis", [paragraph(
                "Computed from the winner's out-of-fold predictions on the training rows.")]))
            sections.extend(self.errors.html_sections(self.plots or None))
        facts = {"model": f"{self.model.ref} ({self.model.id[:12]})", "dataset": self.dataset,
                 "task": self.task, "target": self.target, "winner": self.winner,
                 "MLflow run": self.mlflow_run_id, "seconds": round(self.seconds, 1)}
        return html_page(f"Training: {self.model.ref}", sections, subtitle=self.dataset,
                         facts=facts)

    def _winner_entry(self) -> Entry:
        return next(e for e in self.leaderboard if e.name == self.winner)

    def _shown_metrics(self) -> list[str]:
        names = list(self.leaderboard[0].metrics) if self.leaderboard else [self.metric]
        return [self.metric, *[m for m in names if m != self.metric]][:_SHOWN_METRICS]

    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        for rank, entry in enumerate(self.leaderboard, 1):
            row: dict[str, Any] = {"rank": rank, "model": entry.name, "kind": entry.kind}
            row.update({m: _mean_std(entry.metrics, m) for m in entry.metrics})
            row.update({"fit s": round(entry.fit_seconds, 3),
                        "predict s": round(entry.predict_seconds, 4),
                        "onnx": entry.onnx, "winner": entry.name == self.winner})
            rows.append(row)
        return rows

    def _leaderboard_table(self) -> Table:
        shown = self._shown_metrics()
        grid = Table("#", "model", *shown, "fit s", "predict s", "onnx",
                     title=f"leaderboard ({self.metric}, {self.task})")
        for rank, entry in enumerate(self.leaderboard, 1):
            mark = " *" if entry.name == self.winner else ""
            grid.add_row(str(rank), entry.name + mark,
                         *[_mean_std(entry.metrics, m) for m in shown],
                         f"{entry.fit_seconds:.2f}", f"{entry.predict_seconds:.3f}",
                         "yes" if entry.onnx else "no")
        return grid


def _finite(value: float) -> float | None:
    """JSON has no NaN: a metric that could not be computed on some fold becomes null."""
    return None if value != value or value in (float("inf"), float("-inf")) else value


def _mean_std(metrics: Mapping[str, tuple[float, float]], name: str) -> str:
    if name not in metrics:
        return ""
    mean, std = metrics[name]
    return f"{mean:.4f} ± {std:.4f}"
