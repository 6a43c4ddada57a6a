"""``mlstrata predict``: score a whole input with a model package, streaming, all or nothing.

:func:`predict` reads the input batch by batch (:mod:`.reading`), cleans raw records like the
training data when needed (:mod:`.cleaning`), scores them (:mod:`.scoring`) and appends the scored
rows to the output and the rejected rows to the rejects file (:mod:`.writing`). Both are
published only when the whole input has been scored: a failure or Ctrl-C leaves no partial
file and no half-written table. ``engine="spark"`` runs the same scoring on Apache Spark
(:mod:`.spark`). The result is a :class:`PredictReport`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from ..errors import DataError, SourceError
from ..package.locate import locate_package
from ..predlog import PredictionLog
from ..reports import Report
from ..reports.html import html_page, table
from ..runtime.model import LoadedModel, load
from ..workspace import Workspace
from .cleaning import RecipeMode, clean_batches
from .predlogging import logged_batches
from .reading import BATCH_ROWS, describe_source, read_batches
from .scoring import REJECT_REASON, OnInvalid, score_batches
from .writing import Destination, TableWriter, default_rejects_path, parse_destination

__all__ = ["PredictReport", "load_model", "predict"]

Engine = Literal["local", "spark"]


@dataclass
class PredictReport(Report):
    """What a batch-prediction run did: rows in, scored and rejected, speed, where they went;
    ``rows_warned``: scored rows whose ``warnings`` column names broken warn rules."""

    model: str
    model_version: int
    run_id: str
    input: str
    output: str
    rows_in: int
    rows_scored: int
    rows_rejected: int
    seconds: float
    engine: str = "local"
    rejects: str | None = None
    recipe_steps: list[str] = field(default_factory=list)
    rows_warned: int = 0

    @property
    def rows_per_second(self) -> float:
        """Input rows scored (or rejected) per second of wall time."""
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Every figure of the run, JSON-ready."""
        return {"model": self.model, "model_version": self.model_version, "run_id": self.run_id,
                "engine": self.engine, "input": self.input, "output": self.output,
                "rejects": self.rejects, "rows_in": self.rows_in,
                "rows_scored": self.rows_scored, "rows_rejected": self.rows_rejected,
                "rows_warned": self.rows_warned, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1),
                "recipe_steps": self.recipe_steps}

    def render_terminal(self, console: Console) -> None:
        """A one-screen summary: counts, speed and the files written."""
        grid = Table.grid(padding=(0, 2))
        for name, value in self._rows():
            grid.add_row(f"[bold]{name}[/]", value)
        console.print(grid)

    def to_html(self) -> str:
        """The summary as a standalone HTML page."""
        sections = []
        if self.recipe_steps:
            sections.append(("Cleaned like the training data",
                             [table([{"step": step} for step in self.recipe_steps])]))
        return html_page(f"Batch prediction with {self.model}@{self.model_version}", sections,
                         subtitle=f"run {self.run_id}", facts=dict(self._rows()))

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("model", f"{self.model}@{self.model_version}"), ("run id", self.run_id),
                ("engine", self.engine), ("input", self.input),
                ("rows in", f"{self.rows_in:,}"), ("scored", f"{self.rows_scored:,}"),
                ("rejected", f"{self.rows_rejected:,}"),
                ("with warnings", f"{self.rows_warned:,} (scored; see the warnings column)"),
                ("speed", f"{self.rows_per_second:,.0f} rows/s in {self.seconds:.1f} s"),
                ("output", self.output)]
        if self.rejects:
            rows.append(("rejects", self.rejects))
        if self.recipe_steps:
            rows.append(("cleaning", f"{len(self.recipe_steps)} recipe steps replayed"))
        return rows


def load_model(model: str | Path | LoadedModel, workspace: Workspace | None = None, *,
               threads: int | None = None, strict: bool = False) -> LoadedModel:
    """``model`` loaded: a :class:`LoadedModel` as it is, else a package path, ``NAME``,
    ``NAME@N`` or ``NAME@ALIAS`` located with :func:`~mlstrata.package.locate.locate_package`
    (``strict``: rows breaking a warn rule are rejected too)."""
    if isinstance(model, LoadedModel):
        return model
    return load(locate_package(str(model), workspace), threads=threads, strict=strict)


def predict(model: str | Path | LoadedModel, input: str | Path, output: str | Path, *,
            keys: Sequence[str] = (), on_invalid: OnInvalid = "reject",
            rejects_path: str | Path | None = None, batch_rows: int = BATCH_ROWS,
            engine: Engine = "local", master: str | None = None, threads: int | None = None,
            output_table: str | None = None, table: str | None = None, query: str | None = None,
            recipe: RecipeMode = "auto", workspace: Workspace | None = None,
            progress: Callable[[int], None] | None = None,
            log: PredictionLog | None = None, strict: bool = False) -> PredictReport:
    """Score every row of ``input`` with ``model`` into ``output`` (see the module docstring).

    ``output`` is a Parquet/CSV path or a database table (:func:`.writing.parse_destination`);
    ``table``/``query`` pick the rows of a database input. Rejected rows go to ``rejects_path``
    (default ``<output stem>.rejects.csv``), written only when there are any. ``progress`` is
    called with the number of input rows done after each batch. With ``log`` every scored row
    is written to the prediction log (source ``batch``, the run id as request id; on Spark
    ``<run id>-p<partition>``). ``strict`` rejects (or fails on) rows that break a warn rule
    of the contract too, instead of scoring them with a warning.
    """
    destination = parse_destination(str(output), output_table)
    rejects = Destination("csv", str(rejects_path or default_rejects_path(destination)))
    _check_distinct(str(input), destination, rejects)
    if engine == "spark":
        from .spark import predict_spark

        return predict_spark(model, str(input), destination, keys=keys, on_invalid=on_invalid,
                             rejects=rejects, batch_rows=batch_rows, master=master,
                             workspace=workspace, progress=progress, strict=strict, log=log)
    if engine != "local":
        raise DataError(f"unknown engine {engine!r}; use 'local' or 'spark'")
    loaded = load_model(model, workspace, threads=threads, strict=strict)
    started, run_id = time.perf_counter(), uuid.uuid4().hex
    batches = read_batches(str(input), batch_rows=batch_rows, table=table, query=query)
    with contextlib.ExitStack() as stack:
        writer, reject_writer = TableWriter(destination, stack), TableWriter(rejects, stack)
        rows_in = warned = 0
        cleaned = clean_batches(loaded, batches, workspace, recipe,
                                lambda rows, columns: reject_writer.write(_as_text(rows, columns)))
        scoring = score_batches(loaded, cleaned.batches, keys=keys, on_invalid=on_invalid,
                                run_id=run_id)
        for scored in logged_batches(scoring, log, loaded, run_id=run_id, source="batch",
                                     key=keys[0] if keys else None):
            writer.write(scored.scored)
            warned += scored.warned
            if scored.rejects.num_rows:
                reject_writer.write(_as_text(scored.rejects, cleaned.columns))
            rows_in = cleaned.rows_in
            if progress is not None:
                progress(rows_in)
        if rows_in == 0:
            raise SourceError(f"{describe_source(str(input))} has no data rows; nothing was "
                              "scored")
    return PredictReport(
        model=loaded.name, model_version=loaded.version, run_id=run_id,
        input=describe_source(str(input)), output=str(destination), rows_in=rows_in,
        rows_scored=writer.rows, rows_rejected=reject_writer.rows,
        seconds=time.perf_counter() - started,
        rejects=str(rejects.location) if reject_writer.opened else None,
        recipe_steps=cleaned.cleaning.steps if cleaned.cleaning else [], rows_warned=warned)


def _as_text(rejects: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Rejected rows as text in the input's ``columns`` + the reason, so that rows rejected by a
    recipe (raw) and by the contract (cleaned, maybe with derived columns) share one file."""
    rows = rejects.num_rows
    arrays = [rejects.column(name).cast(pa.string()) if name in rejects.column_names
              else pa.nulls(rows, pa.string()) for name in [*columns, REJECT_REASON]]
    return pa.Table.from_arrays(arrays, names=[*columns, REJECT_REASON])


def _check_distinct(source: str, destination: Destination, rejects: Destination) -> None:
    """Refuse to write over the input, or the rejects over the output."""
    output = destination.path.resolve() if destination.path is not None else None
    rejects_file = Path(rejects.location).resolve()
    if "://" not in source and Path(source).resolve() in (output, rejects_file):
        raise SourceError(f"{source} is the input; write the predictions to another file")
    if output == rejects_file:
        raise SourceError(f"{rejects.location} would hold both the predictions and the rejects; "
                          "pass another --rejects path")
