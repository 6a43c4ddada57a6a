"""What the online commands report, as data first: terminal, JSON and self-contained HTML.

:class:`ReplayReport` is a replay's metric over time (overall and per block of events) with the
refused events; :class:`OnlineStatus` is one model's state (spec, events logged, checkpoints,
quarantine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from ..reports import Report, figure_uri, html_page, image, paragraph, table

__all__ = ["MetricPoint", "OnlineStatus", "ReplayReport"]

_TERMINAL_POINTS = 12


@dataclass(frozen=True)
class MetricPoint:
    """The metric after ``events`` events: over all of them, and over the last block."""

    events: int
    overall: float
    block: float


@dataclass(frozen=True)
class ReplayReport(Report):
    """A progressive-validation replay: rows read, learnt, refused, and the metric over time.

    ``events`` is the range of sequence numbers the replay logged (``None`` when the live state
    was left untouched).
    """

    model: str
    metric: str
    every: int
    rows: int
    learnt: int
    refused: int
    refusals: Sequence[str]
    points: Sequence[MetricPoint]
    overall: float | None
    seconds: float
    events: tuple[int, int] | None = None
    notes: Sequence[str] = field(default_factory=tuple)

    @property
    def committed(self) -> bool:
        """Whether the replayed events became part of the live model."""
        return self.events is not None

    def to_dict(self) -> dict[str, Any]:
        """Every number of the replay."""
        body = asdict(self)
        body["committed"] = self.committed
        body["events_per_second"] = self.learnt / self.seconds if self.seconds else None
        return body

    def render_terminal(self, console: Console) -> None:
        """A table of the metric at evenly spaced points, then a summary line."""
        grid = Table(title=f"{self.model}: {self.metric} over time (predict, then learn)")
        for column in ("events", f"{self.metric} so far", f"{self.metric} last {self.every}"):
            grid.add_column(column, justify="right")
        for point in _spaced(self.points, _TERMINAL_POINTS):
            grid.add_row(str(point.events), f"{point.overall:.4f}", f"{point.block:.4f}")
        console.print(grid)
        overall = "n/a" if self.overall is None else f"{self.overall:.4f}"
        console.print(f"{self.learnt} events learnt, {self.refused} refused, {self.metric} "
                      f"{overall}, {self.seconds:.1f} s; " + self._state(), highlight=False)
        for line in [*self.refusals, *self.notes]:
            console.print(f"  {line}", highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """The metric's course as a line plot, the refusals listed."""
        sections: list[tuple[str, list[Any]]] = [
            ("Metric over time", [image(figure_uri(self._figure()),
                                        f"{self.metric} over time")]),
            ("Points", [table([asdict(p) for p in self.points])]),
        ]
        if self.refusals or self.notes:
            sections.append(("Refused events and notes",
                             [paragraph(line) for line in [*self.refusals, *self.notes]]))
        facts = {"metric": self.metric, "rows": self.rows, "learnt": self.learnt,
                 "refused": self.refused, "overall": self.overall, "state": self._state()}
        return html_page(f"Replay of {self.model}", sections, facts=facts,
                         subtitle="progressive validation: each event predicted, then learnt")

    def _state(self) -> str:
        if self.events is None:
            return "live state untouched (pass --commit to learn for real)"
        return f"committed as events {self.events[0]}..{self.events[1]}"

    def _figure(self) -> Any:
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(8, 3.5))
        xs = [p.events for p in self.points]
        axes.plot(xs, [p.overall for p in self.points], label="so far")
        axes.plot(xs, [p.block for p in self.points], label=f"each {self.every} events",
                  alpha=0.6)
        axes.set_xlabel("events")
        axes.set_ylabel(self.metric)
        axes.legend()
        figure.tight_layout()
        return figure


@dataclass(frozen=True)
class OnlineStatus(Report):
    """One online model's state: what it is, how many events it holds, its checkpoints."""

    name: str
    spec: Mapping[str, Any]
    events: int
    open_elsewhere: bool
    checkpoints: Sequence[Mapping[str, Any]]
    quarantine: Sequence[Mapping[str, Any]] = ()
    """The guard's quarantine entries (``QuarantineEntry.to_dict``), oldest first."""

    def quarantine_summary(self) -> dict[str, Any]:
        """Events per status (quarantined, dropped, released) and the ranges learning skips.

        >>> OnlineStatus("m", {}, 9, False, [], [{"first": 3, "last": 5, "events": 3,
        ...     "status": "quarantined"}]).quarantine_summary()
        {'entries': 1, 'quarantined': 3, 'dropped': 0, 'released': 0, 'skipped': [[3, 5]]}
        """
        counts = {status: sum(int(e["events"]) for e in self.quarantine if e["status"] == status)
                  for status in ("quarantined", "dropped", "released")}
        skipped = sorted([int(e["first"]), int(e["last"])] for e in self.quarantine
                         if e["status"] != "released")
        return {"entries": len(self.quarantine), **counts, "skipped": skipped}

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON (the newest checkpoint first)."""
        last = self.checkpoints[0] if self.checkpoints else None
        since = self.events - int(last["meta"]["last_event"]) if last else self.events
        return {"name": self.name, "spec": dict(self.spec), "events": self.events,
                "events_since_checkpoint": since, "open_elsewhere": self.open_elsewhere,
                "last_checkpoint": last, "checkpoints": len(self.checkpoints),
                "quarantine": {**self.quarantine_summary(),
                               "list": [dict(e) for e in self.quarantine]}}

    def render_terminal(self, console: Console) -> None:
        """A few lines: model, events, last checkpoint."""
        body = self.to_dict()
        spec = self.spec
        console.print(f"[bold]{self.name}[/]: online {spec['model']} ({spec['task']}) "
                      f"predicting {spec['target']} from {len(spec['features'])} columns",
                      highlight=False)
        for entry in spec.get("excluded", ()):
            console.print(f"  left out {entry['column']} ({entry['reason']}): {entry['detail']}",
                          highlight=False, soft_wrap=True)
        if any(e["reason"] != "dropped" for e in spec.get("excluded", ())):
            console.print("  (to keep one, list it in online.keep in mlstrata.yaml and create "
                          "the model again)", highlight=False)
        console.print(f"events: {self.events} logged, {body['events_since_checkpoint']} since "
                      "the last checkpoint; " + ("open in another process" if self.open_elsewhere
                                                 else "not open elsewhere"), highlight=False)
        last = body["last_checkpoint"]
        if last is not None:
            first, end = last["meta"]["first_event"], last["meta"]["last_event"]
            holds = f"events {first}..{end}" if end >= first else "the model as created"
            console.print(f"last checkpoint: {last['ref']} ({holds}, {last['created_at']}, "
                          f"sha256 {last['id'][:12]}...)", highlight=False)
        console.print(self._quarantine_line(), highlight=False)
        for entry in self.quarantine:
            console.print(f"  {entry['id']:>3}  events {entry['first']}..{entry['last']} "
                          f"({entry['events']})  {entry['status']:<11}  {entry['reason']}",
                          highlight=False)

    def _quarantine_line(self) -> str:
        q = self.quarantine_summary()
        if not q["entries"]:
            return "quarantine: empty"
        ranges = ", ".join(f"{a}..{b}" for a, b in q["skipped"]) or "none"
        return (f"quarantine: {q['entries']} entr{'y' if q['entries'] == 1 else 'ies'} — "
                f"{q['quarantined']} events quarantined, {q['dropped']} dropped, "
                f"{q['released']} released; learning skips {ranges} (decide with 'mlstrata "
                f"online quarantine {self.name} --release|--drop ID')")

    def to_html(self) -> str:
        """The state as a facts table and the checkpoints."""
        rows = [{"ref": c["ref"], "first_event": c["meta"]["first_event"],
                 "last_event": c["meta"]["last_event"], "created_at": c["created_at"],
                 "sha256": c["id"]} for c in self.checkpoints]
        quarantine = [{k: e[k] for k in ("id", "first", "last", "events", "status", "reason",
                                          "at")} for e in self.quarantine]
        excluded = list(self.spec.get("excluded", ()))
        return html_page(f"Online model {self.name}", [
            ("Columns left out", [table(excluded) if excluded else paragraph("none")]),
            ("Checkpoints", [table(rows)]),
            ("Quarantine", [table(quarantine) if quarantine else paragraph("empty")])],
                         facts={"events": self.events, **{k: self.spec[k] for k in
                                                          ("model", "task", "target")}})


def _spaced(points: Sequence[MetricPoint], count: int) -> list[MetricPoint]:
    """At most ``count`` points, evenly spread, the last one always included."""
    if len(points) <= count:
        return list(points)
    step = len(points) / count
    return [points[min(int((i + 1) * step) - 1, len(points) - 1)] for i in range(count)]
