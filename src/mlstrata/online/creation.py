"""Creating an online model: its spec from a contract (or a dataset), an optional warm start,
and its first checkpoint.

The contract comes from a YAML file, or from a dataset version: the project's
``contracts/<dataset>.yaml`` when it exists, else one inferred from the data (as ``mlstrata
contract infer`` would). From a dataset the classes are counted in the data (the rules batch
training uses); from a contract alone they are the target's ``allowed`` values. The settings
``mlstrata.yaml`` gives under ``online:`` (model parameters, seed, dropped and kept columns)
and ``model.features.date_parts`` are frozen into the spec. The dataset (``--dataset``, else the
warm start's) is the evidence :mod:`mlstrata.online.columns` judges the columns on: identifiers,
hashed or masked PII and text with too many categories are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract import Contract
from ..errors import ContractError, RefNotFoundError, WorkspaceError
from ..workspace import Artifact, Workspace
from .durability import CheckpointPolicy, Durability, events_dir
from .estimators import build_pipeline
from .learner import OnlineModel
from .recovery import WarmStart, dataset_rows, warm_start
from .spec import SPEC_KIND, OnlineSpec, build_spec

__all__ = ["CreateRequest", "Created", "create_online"]


@dataclass(frozen=True)
class CreateRequest:
    """What ``mlstrata online create`` was asked for: a contract file or a dataset ref."""

    name: str
    target: str
    model: str | None = None
    contract: Path | None = None
    dataset: str | None = None
    warm_start: str | None = None


@dataclass(frozen=True)
class Created:
    """A new online model: its spec artifact, spec, first checkpoint and warm start."""

    artifact: Artifact
    spec: OnlineSpec
    checkpoint: Artifact
    warm: WarmStart | None


def create_online(ws: Workspace, request: CreateRequest,
                  policy: CheckpointPolicy | None = None) -> Created:
    """Create the online model ``request.name`` (refused when the name is taken); nothing is
    stored until the warm start has succeeded."""
    _refuse_taken(ws, request.name)
    contract, classes, parents = _contract_and_classes(ws, request)
    warm = _dataset(ws, request.warm_start) if request.warm_start else None
    settings = ws.config.online
    kind = request.model or settings.model
    evidence = _dataset(ws, request.dataset) if request.dataset else warm
    spec = build_spec(request.name, contract, request.target, kind, classes=classes,
                      params=settings.params.get(kind, {}), seed=settings.seed,
                      drop=settings.drop, keep=settings.keep,
                      findings=_findings(ws, contract, request.target, evidence),
                      date_parts=ws.config.model.features.date_parts,
                      warm_start=warm.id if warm else None)
    model = OnlineModel(spec, build_pipeline(spec))
    learnt = warm_start(model, dataset_rows(ws, warm.id)) if warm else None
    inputs = {**parents, **({"warm_start": warm.id} if warm else {})}
    artifact = ws.put_bytes(spec.to_json().encode("utf-8"), suffix=".json", kind=SPEC_KIND,
                            name=request.name, inputs=inputs,
                            meta={"model": spec.model, "task": spec.task, "target": spec.target},
                            description=f"online {spec.model} predicting {spec.target}")
    durability = Durability(ws, artifact, policy or CheckpointPolicy())
    return Created(artifact, spec, durability.close(model.pipeline, model.seq), learnt)


def _refuse_taken(ws: Workspace, name: str) -> None:
    try:
        ws.resolve(name, (SPEC_KIND,))
    except RefNotFoundError:
        if events_dir(ws, name).exists():
            raise WorkspaceError(f"{events_dir(ws, name)} already holds an event log but no "
                                 "online model is named so; move it away or pick another "
                                 "name") from None
        return
    raise WorkspaceError(f"an online model named '{name}' exists; pick another name (its "
                         f"state: mlstrata online show {name})")


def _contract_and_classes(ws: Workspace, request: CreateRequest
                          ) -> tuple[Contract, tuple[Any, ...] | None, dict[str, str]]:
    """The contract, the classes when a dataset counts them, and the lineage parents."""
    if (request.contract is None) == (request.dataset is None):
        raise ContractError("give the events' contract as exactly one of --contract FILE or "
                            "--dataset REF")
    if request.contract is not None:
        return Contract.load(request.contract), None, {}
    dataset = _dataset(ws, str(request.dataset))
    contract = _dataset_contract(ws, dataset)
    return contract, _dataset_classes(ws, dataset, contract, request.target), \
        {"dataset": dataset.id}


def _dataset(ws: Workspace, ref: str) -> Artifact:
    from ..data.datasets import open_dataset

    return open_dataset(ws, ref, purpose="online").artifact


def _dataset_contract(ws: Workspace, dataset: Artifact) -> Contract:
    """The project's contract for the dataset, or one inferred from its rows."""
    from ..data.contract_infer import infer_contract, relax_pii_columns
    from ..data.datasets import open_dataset, workspace_connection

    path = ws.root / "contracts" / f"{dataset.name}.yaml"
    if path.is_file():
        return Contract.load(path)
    opened = open_dataset(ws, dataset.id, purpose="online")
    con = workspace_connection(ws)
    try:
        inferred = infer_contract(con, opened.relation(con), dataset.name, source=dataset.ref)
    finally:
        con.close()
    return relax_pii_columns(inferred, dataset.meta.get("pii") or [])


def _findings(ws: Workspace, contract: Contract, target: str,
              dataset: Artifact | None) -> list[dict[str, str]]:
    """The columns to leave out, judged on the contract and the dataset's counts."""
    from ..data.datasets import open_dataset, workspace_connection
    from ..data.engine import parquet_scan, quote_identifier
    from .columns import ColumnCounts, left_out

    config = ws.config.model.features
    if dataset is None or target not in contract.columns:
        return left_out(contract, target, config=config)
    path = open_dataset(ws, dataset.id, purpose="online").path
    con = workspace_connection(ws)
    try:
        present = {row[0] for row in con.execute(
            f"DESCRIBE SELECT * FROM {parquet_scan(path)}").fetchall()}
        columns = [c for c in contract.columns if c in present and c != target]
        counted = []
        for name in columns:
            column = quote_identifier(name)
            span = f"min({column}), max({column})" \
                if contract.columns[name].type == "integer" else "NULL, NULL"
            counted.append(f"count({column}), count(DISTINCT {column}), {span}")
        found = con.execute(f"SELECT {', '.join(counted)} FROM {parquet_scan(path)}")\
            .fetchone() if counted else ()
    finally:
        con.close()
    counts = {name: ColumnCounts(int(found[4 * i]), int(found[4 * i + 1]),
                                 None if found[4 * i + 2] is None
                                 else (float(found[4 * i + 2]), float(found[4 * i + 3])))
              for i, name in enumerate(columns)} if found else {}
    return left_out(contract, target, counts=counts, pii=dataset.meta.get("pii") or [],
                    source=f"dataset {dataset.ref}", config=config)


def _dataset_classes(ws: Workspace, dataset: Artifact, contract: Contract,
                     target: str) -> tuple[Any, ...] | None:
    """The target's classes counted in the dataset, or () for a regression target."""
    from ..data.datasets import open_dataset, workspace_connection
    from ..data.engine import parquet_scan
    from ..data.target import detect_task
    from ..data.types import ColumnInfo, duckdb_type

    if target not in contract.columns:
        return None  # build_spec names the missing target
    kind = contract.columns[target].type
    path = open_dataset(ws, dataset.id, purpose="online").path
    con = workspace_connection(ws)
    try:
        info = detect_task(con, f"SELECT * FROM {parquet_scan(path)}",
                           ColumnInfo(target, kind, duckdb_type(kind)))
    finally:
        con.close()
    return tuple(sorted(c.value for c in info.classes)) if info.classes else ()

