"""The result of an ingest: the three artifacts it cataloged, as a report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from ..reports import Report, html_page, paragraph, table
from ..workspace import Artifact, Workspace

__all__ = ["IngestResult"]


@dataclass(frozen=True)
class IngestResult(Report):
    """The dataset version, its sealed test set (if any) and the raw backup an ingest produced."""

    dataset: Artifact
    testset: Artifact | None
    raw: Artifact
    reused_existing: bool

    @classmethod
    def reused(cls, ws: Workspace, dataset: Artifact) -> IngestResult:
        """The result of re-ingesting content that is already in the workspace."""
        testset_id = dataset.meta.get("testset")
        raw = next(parent for role, parent in ws.parents(dataset.id) if role == "source")
        return cls(dataset, ws.get(testset_id) if testset_id else None, raw, True)

    def to_dict(self) -> dict[str, Any]:
        """The catalog entries of the three artifacts and whether they already existed."""
        return {
            "dataset": self.dataset.to_dict(),
            "testset": self.testset.to_dict() if self.testset else None,
            "raw": self.raw.to_dict(),
            "reused_existing": self.reused_existing,
        }

    def render_terminal(self, console: Console) -> None:
        """A summary: refs, rows, columns with types, PII findings and actions."""
        meta = self.dataset.meta
        verb = "already ingested as" if self.reused_existing else "ingested as"
        console.print(f"[bold green]{meta['source']}[/] {verb} [bold]{self.dataset.ref}[/] "
                      f"({meta['rows']} training rows, id {self.dataset.id[:12]})")
        if self.testset:
            console.print(f"sealed test set: {self.testset.ref} ({self.testset.meta['rows']} rows,"
                          " readable only by the acceptance test)")
        console.print(f"raw backup: {self.raw.ref} (sha256 {self.raw.id[:12]}, owner-only)")
        columns = Table("column", "type", title="columns")
        for column in meta["columns"]:
            columns.add_row(column["name"], column["type"])
        console.print(columns)
        for finding in meta["pii"]:
            console.print(f"[yellow]PII[/] {finding['column']}: {', '.join(finding['kinds'])}"
                          f" → {finding['action']}")

    def to_html(self) -> str:
        """The same summary as a self-contained page."""
        meta = self.dataset.meta
        return html_page(
            f"Ingest of {meta['source']}",
            [
                ("Columns", [table(meta["columns"], ["name", "type"])]),
                ("PII", [table(meta["pii"]) if meta["pii"] else paragraph("No PII found.")]),
            ],
            facts={"dataset": self.dataset.ref, "rows": meta["rows"],
                   "sealed test set": self.testset.ref if self.testset else "none",
                   "raw backup": self.raw.ref, "sha256": self.dataset.id},
        )
