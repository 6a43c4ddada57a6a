"""``mlstrata ingest SOURCE --join REF --on KEY``: ingest, then enrich with another version.

The join is checked on the rows about to be stored before the ingest writes anything (the key
exists on both sides with one type, it is unique on the joined side, no column collides), so a
refused join leaves the workspace as it was. Then the ingested version is cleaned by a one-step
``join`` recipe, fitted on its training rows: the result is a new version whose lineage names the
ingested version, the stored recipe and the joined version, and whose sealed test set is the
ingest's (the acceptance test replays the join on it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from rich.console import Console

from ..reports import Report, html_page, table
from ..workspace import Artifact, Workspace
from .clean import CleanReport, clean_dataset
from .ingest import IngestOptions, IngestResult, ingest
from .join import join_recipe, resolve_joins
from .sources import SourceSpec

__all__ = ["JoinedIngest", "ingest_and_join"]


@dataclass(frozen=True)
class JoinedIngest(Report):
    """The ingest, and the join that enriched its dataset version."""

    ingested: IngestResult
    joined: CleanReport

    @property
    def dataset(self) -> Artifact:
        """The enriched version (what training should use)."""
        return self.joined.output

    def to_dict(self) -> dict[str, Any]:
        """The ingest's entries, the join's report and the enriched version."""
        step = self.joined.steps[0]
        return {**self.ingested.to_dict(), "joined": self.joined.to_dict(),
                "enriched": self.dataset.to_dict(), "unmatched_rows": step.unmatched}

    def render_terminal(self, console: Console) -> None:
        """The ingest summary, then the join's rows and unmatched count."""
        self.ingested.render_terminal(console)
        step = self.joined.steps[0]
        console.print(f"{step.step}: {step.rows_in} rows in, {step.rows_out} out, "
                      f"{step.unmatched} without a match")
        console.print(f"enriched version: [bold]{self.dataset.ref}[/] {self.dataset.id[:12]} "
                      f"(recipe {self.joined.recipe.ref})")

    def to_html(self) -> str:
        """Both summaries on one page."""
        return html_page(f"Ingest and join into {self.dataset.ref}",
                         [("Join", [table([s.to_dict() for s in self.joined.steps])])],
                         facts={"ingested": self.ingested.dataset.ref,
                                "enriched": self.dataset.ref, "recipe": self.joined.recipe.ref})


def ingest_and_join(ws: Workspace, spec: SourceSpec, options: IngestOptions, *, join: str,
                    on: Sequence[str], how: str = "left",
                    step: Callable[[str], None] | None = None) -> JoinedIngest:
    """Ingest ``spec``, then join dataset ``join`` on ``on`` into a new version."""
    recipe = join_recipe(join, on, how)
    bound = resolve_joins(ws, recipe)

    def check(con: duckdb.DuckDBPyConnection, sql: str) -> None:
        bound.fit(con, sql)

    ingested = ingest(ws, spec, options, step, before_store=check)
    if step is not None:
        step("joining")
    _, _, report = clean_dataset(ws, ingested.dataset.ref, recipe)
    return JoinedIngest(ingested, report)
