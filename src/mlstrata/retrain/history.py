"""A dataset's history of batches: check a new batch, then append it as a new version.

The history of dataset ``NAME`` is a chain of versions. The first is an ordinary ingest; each
retrain ingests its batch as ``NAME.batch`` (with its own sealed test slice: the latest rows by
time when the dataset has a time column, else a stratified or random share) and stores a new
``NAME`` version whose lineage names the ``previous`` version and the ``batch``. Its meta lists
every batch of the history (``batches``: each batch's dataset and sealed slice, oldest first);
its rows are the training rows of the newest ``history_batches`` batches (all when unset) and its
sealed test set is the union of those batches' slices, so ``mlstrata test`` still reads exactly
the held-out rows of the data a model learnt from.

A batch is checked *before* anything is stored: read with the history's column types, the PII
policy applied, cleaned by the fitted recipes of the champion's training data, and validated
against the contract. A batch that lacks a column, holds values that do not parse, or breaks a
rule is refused in one line and the workspace is left exactly as it was.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..data.clean import fitted_recipes_since_ingest
from ..data.datasets import workspace_connection
from ..data.engine import parquet_scan, quote_identifier, quote_literal
from ..data.ingest import IngestOptions, ingest
from ..data.pii import pii_expression
from ..data.recipe import apply_fitted
from ..data.sources import SourceSpec, load_source
from ..data.validate import ValidationReport, validate
from ..errors import DataError, MlstrataError
from ..workspace import ACCEPTANCE_PURPOSE, SEALED_KIND, Artifact, Workspace

__all__ = ["AppendedBatch", "BatchRefusedError", "append_batch", "check_batch", "history_root"]

Step = Callable[[str], None]


class BatchRefusedError(MlstrataError):
    """A new batch breaks the contract or lacks columns: nothing was stored."""


@dataclass(frozen=True)
class AppendedBatch:
    """What appending a batch stored: the batch itself, its sealed slice and the new version."""

    batch: Artifact
    slice: Artifact | None
    version: Artifact
    testset: Artifact | None

    def to_dict(self) -> dict[str, Any]:
        """Refs and ids, JSON-ready."""
        return {"batch": self.batch.ref, "batch_rows": self.batch.meta.get("rows"),
                "slice": self.slice.ref if self.slice else None,
                "slice_rows": self.slice.meta.get("rows") if self.slice else None,
                "dataset": self.version.ref, "dataset_id": self.version.id,
                "dataset_rows": self.version.meta.get("rows"),
                "testset": self.testset.ref if self.testset else None,
                "batches": len(self.version.meta.get("batches", []))}


def history_root(ws: Workspace, model: Artifact | None, name: str) -> Artifact:
    """The newest version of ``name``'s history: the ingested (uncleaned) version the champion
    learnt from, else the newest ingested or appended version of ``name``."""
    if model is not None:
        return fitted_recipes_since_ingest(ws, ws.get(str(model.meta["dataset"])))[0]
    newest = ws.resolve(name, ("dataset",))
    return fitted_recipes_since_ingest(ws, newest)[0]


def batches_of(version: Artifact) -> list[dict[str, str | None]]:
    """The batches of a history version, oldest first (an ingest is a history of one)."""
    found = version.meta.get("batches")
    if isinstance(found, list) and found:
        return [dict(item) for item in found]
    return [{"dataset": version.id, "testset": version.meta.get("testset")}]


def check_batch(
    ws: Workspace, spec: SourceSpec, previous: Artifact, model: Artifact | None,
    contract: Path, step: Step,
) -> tuple[int, ValidationReport]:
    """Read and validate a batch the way the history's data was treated; store nothing.

    Returns the batch's row count and the passed validation report; raises
    :class:`BatchRefusedError` naming what is wrong otherwise.
    """
    from ..contract import Contract

    columns = list(previous.meta.get("source_columns") or previous.meta["columns"])
    typed = SourceSpec(**{**vars(spec), "schema": {c["name"]: c["type"] for c in columns}})
    con = workspace_connection(ws)
    try:
        with ws.staging() as stage:
            step("reading the batch")
            try:
                _require_columns(con, spec, stage, columns, model)
                loaded = load_source(typed, con, stage)
            except BatchRefusedError:
                raise
            except MlstrataError as exc:
                raise BatchRefusedError(f"batch refused, nothing stored: {exc}") from exc
            sql = _with_pii(ws, previous, loaded.table, [c["name"] for c in columns])
            step("cleaning the batch with the stored recipe")
            cleaned = _cleaned(ws, con, model, sql)
            step("validating the batch against the contract")
            checked = Contract.load(contract).with_python_checks(ws.config.data.checks)
            report = validate(con, con.sql(cleaned), checked, spec.location, contract.name)
    finally:
        con.close()
    if not report.passed:
        blocking = [r for r in report.failed if r.blocking]
        failed = ", ".join(r.rule.name for r in blocking[:5])
        raise BatchRefusedError(f"{spec.location}: the batch breaks {len(blocking)} rule(s) "
                                f"of {contract.name} ({failed}); nothing was stored — run "
                                f"'mlstrata validate {spec.location} --contract {contract}' "
                                "for the failing rows")
    return loaded.rows, report


def _require_columns(con: duckdb.DuckDBPyConnection, spec: SourceSpec, stage: Path,
                     columns: Sequence[dict[str, Any]], model: Artifact | None) -> None:
    """Refuse a batch missing any of the history's columns, saying which the model needs."""
    probe = load_source(spec, con, stage)
    present = [c.name for c in probe.columns]
    con.execute(f"DROP TABLE {quote_identifier(probe.table)}")
    missing = [c["name"] for c in columns if c["name"] not in present]
    if not missing:
        return
    needed = set()
    if model is not None:
        needed = {i["name"] for i in model.meta.get("inputs", [])} | {model.meta.get("target")}
    named = ", ".join(
        f"'{name}'" + (" (the model needs it)" if name in needed else "")
        + (f" (did you mean {', '.join(close)}?)"
           if (close := difflib.get_close_matches(name, present, n=2)) else "")
        for name in missing)
    raise BatchRefusedError(f"{spec.location}: the batch lacks column(s) {named} that the "
                            "dataset's history has; nothing was stored — add them to the batch")


def _with_pii(ws: Workspace, previous: Artifact, table: str, names: Sequence[str]) -> str:
    """SQL for the batch with the history's PII policy applied, as ingest applies it."""
    policy = dict(previous.meta.get("pii_policy") or {})
    kinds = {f["column"]: f.get("kinds", []) for f in previous.meta.get("pii") or []}
    parts = []
    for name in names:
        expression = pii_expression(name, policy.get(name, "keep"), kinds.get(name, ()),
                                    ws.pii_salt())
        if expression is not None:
            parts.append(f"{expression} AS {quote_identifier(name)}")
    return f"SELECT {', '.join(parts)} FROM {quote_identifier(table)}"


def _cleaned(ws: Workspace, con: duckdb.DuckDBPyConnection, model: Artifact | None,
             sql: str) -> str:
    if model is None:
        return sql
    try:
        for _, fitted in fitted_recipes_since_ingest(ws, ws.get(str(model.meta["dataset"])))[1]:
            sql = apply_fitted(con, fitted, sql)
        con.sql(f"SELECT count(*) FROM ({sql})").fetchall()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise BatchRefusedError(f"the batch cannot be cleaned by the stored recipe ({first}); "
                                "nothing was stored") from exc
    return sql


def append_batch(
    ws: Workspace, spec: SourceSpec, name: str, previous: Artifact, window: int | None,
    step: Step,
) -> AppendedBatch:
    """Ingest the batch as ``NAME.batch`` and store the next ``NAME`` version of the history."""
    columns = list(previous.meta.get("source_columns") or previous.meta["columns"])
    typed = SourceSpec(**{**vars(spec), "schema": {c["name"]: c["type"] for c in columns}})
    policy = {k: v for k, v in (previous.meta.get("pii_policy") or {}).items()
              if k in {c["name"] for c in columns}}
    step("ingesting the batch")
    result = ingest(ws, typed, IngestOptions(
        name=f"{name}.batch", target=previous.meta.get("target"), key=previous.meta.get("key"),
        time=previous.meta.get("time"), access=previous.access, pii=policy,
        test_fraction=previous.meta.get("sealed_fraction"),
        description=f"a new batch of {name}, appended by mlstrata retrain"))
    if any(item["dataset"] == result.dataset.id for item in batches_of(previous)):
        raise BatchRefusedError(f"{spec.location}: this batch is already in {name}'s history "
                                f"({result.dataset.ref}); nothing was stored — a retrain needs "
                                "new rows")
    history = [*batches_of(previous),
               {"dataset": result.dataset.id,
                "testset": result.testset.id if result.testset else None}]
    kept = history[-window:] if window else history
    step("appending the batch to the history")
    testset = _union_testsets(ws, name, previous, kept, result.testset)
    version = _union_version(ws, name, previous, result.dataset, kept, history, testset)
    return AppendedBatch(result.dataset, result.testset, version, testset)


def _union_testsets(ws: Workspace, name: str, previous: Artifact,
                    kept: Sequence[dict[str, str | None]], slice_: Artifact | None
                    ) -> Artifact | None:
    ids = [item["testset"] for item in kept if item.get("testset")]
    if not ids:
        return None
    paths = [ws.path_for_read(ws.get(str(i)), ACCEPTANCE_PURPOSE) for i in ids]
    inputs = {"batch": slice_.id} if slice_ is not None else {}
    if previous.meta.get("testset"):
        inputs["previous"] = str(previous.meta["testset"])
    meta = {**_history_meta(previous), "testsets": ids}
    return _store_union(ws, paths, kind=SEALED_KIND, name=f"{name}.test", meta=meta,
                        inputs=inputs, access="restricted",
                        description=f"sealed test set of {name}: the slices of {len(ids)} "
                                    "batch(es); only 'mlstrata test' and retrain may read it")


def _union_version(ws: Workspace, name: str, previous: Artifact, batch: Artifact,
                   kept: Sequence[dict[str, str | None]], history: list[dict[str, str | None]],
                   testset: Artifact | None) -> Artifact:
    paths = [ws.path_for_read(ws.get(str(item["dataset"]))) for item in kept]
    meta = {**_history_meta(previous), "testset": testset.id if testset else None,
            "batches": history, "history_batches": len(kept)}
    return _store_union(ws, paths, kind="dataset", name=name, meta=meta,
                        inputs={"previous": previous.id, "batch": batch.id},
                        access=previous.access,
                        description=f"{name} with batch {batch.ref} appended "
                                    f"({len(kept)} of {len(history)} batches)")


def _history_meta(previous: Artifact) -> dict[str, Any]:
    """The previous version's meta a new version keeps (not what identifies one ingest)."""
    dropped = {"ingest_key", "raw_sha256", "source", "source_details", "testset", "testsets",
               "batches", "rows", "history_batches"}
    return {k: v for k, v in previous.meta.items() if k not in dropped}


def _store_union(ws: Workspace, paths: Sequence[Path], *, kind: str, name: str,
                 meta: dict[str, Any], inputs: dict[str, str], access: Any,
                 description: str) -> Artifact:
    """Concatenate Parquet files (in order) into one stored artifact.

    The file is tagged with its name and lineage (Parquet key-value metadata), so a version
    holding the same rows as its batch (a window of one batch) is still its own artifact.
    """
    tags = {"mlstrata_name": name, "mlstrata_parts": ",".join(p.name for p in paths),
            **{f"mlstrata_{role}": value for role, value in inputs.items()}}
    kv = ", ".join(f"{key}: {quote_literal(value)}" for key, value in sorted(tags.items()))
    con = workspace_connection(ws)
    try:
        source = f"SELECT * FROM {parquet_scan(paths, 'union_by_name = true')}"
        rows = int(con.execute(f"SELECT count(*) FROM ({source})").fetchall()[0][0])
        if rows == 0:
            raise DataError(f"appending to {name} gives no rows; the batch is empty")
        with ws.staging() as stage:
            out = stage / "data.parquet"
            con.execute(f"COPY ({source}) TO {quote_literal(str(out))} "
                        f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{kv}}})")
            return ws.put_file(out, kind=kind, name=name, meta={**meta, "rows": rows},
                               inputs=inputs, access=access, description=description)
    finally:
        con.close()
