"""``mlstrata online snapshot NAME``: freeze an online model as a regular, versioned model.

The model is recovered exactly as the live service opens it (:func:`~.recovery.open_online`:
the newest verified checkpoint that reflects the quarantine, plus the logged events after it,
quarantined ones skipped) — read-only, so a running server keeps its lock and goes on learning.
It is then frozen (:mod:`.frozen`), stored as a ``model`` artifact named like the online model
(``NAME@N``; lineage: the online spec, the checkpoint, the evaluation dataset and its split) and
packaged in the River flavour (:mod:`mlstrata.package.river_flavour`). From there it is a model
like any other: ``mlstrata evaluate`` checks the gates on the dataset's validation rows,
``mlstrata test`` runs the acceptance test on its sealed test set, ``mlstrata models register``
registers it, and ``mlstrata monitor NAME`` compares the live stream's prediction log with the
package's reference.

The evaluation dataset is ``--dataset REF``, else the one the online model was created from,
else its warm-start dataset; a model created from a contract alone needs ``--dataset``. Its
declared target must be the online model's target and it must hold every input column.

Before anything is stored, the frozen model is compared with the live one on the evaluation
rows (``parity``: the largest probability or value difference and the flipped labels); they
must agree exactly, or nothing is written.

A frozen model pickles to the same bytes for the same state in any process (:mod:`.frozen`),
so a model that has not changed since its last snapshot is that snapshot again — the same
artifact and version — and its package is reused once it verifies (``unchanged``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from rich.console import Console

from ..errors import DataError
from ..model.artifact import MODEL_KIND, store_model
from ..model.data import TrainingData, load_training_data
from ..model.metrics import primary_metric
from ..package.builder import PackageResult, build_package
from ..package.locate import package_dir
from ..reports import Report, html_page, table
from ..runtime.manifest import PackageIntegrityError, verify_package
from ..workspace import Artifact, Workspace
from .checkpoints import river_version
from .events import EventRefusedError
from .frozen import FrozenRiverModel, frame_records, freeze
from .learner import OnlineModel
from .recovery import Recovery, open_online, read_spec
from .spec import OnlineSpec

__all__ = ["PARITY_ROWS", "SnapshotResult", "snapshot_online"]

PARITY_ROWS = 2000
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SnapshotResult(Report):
    """A snapshot: the model artifact it became, its package and what it was frozen from."""

    model: Artifact
    package: PackageResult
    online: dict[str, Any]
    unchanged: bool = False
    """The model equals an earlier snapshot's (the same artifact and version)."""

    def to_dict(self) -> dict[str, Any]:
        """The model ref and id, the package, the online lineage, JSON-ready."""
        return {"model": self.model.ref, "id": self.model.id, "flavour": "river",
                "unchanged": self.unchanged, "package": self.package.to_dict(),
                "online": self.online, "parity": self.model.meta["parity"]}

    def render_terminal(self, console: Console) -> None:
        """Where the snapshot came from and where it went."""
        online = self.online
        events = online["events"]
        console.print(f"snapshot of online model {online['model']} after event {events[1]} "
                      f"-> [bold]{self.model.ref}[/] (River, sha256 {self.model.id[:12]}...)"
                      + (": unchanged since that snapshot, the same version and package"
                         if self.unchanged else ""), highlight=False)
        console.print(f"  from {online['checkpoint_ref'] or 'its spec'} (events up to "
                      f"{online['checkpoint_last_event']}) + {online['replayed']} events "
                      "replayed; "
                      f"{online['quarantined_events']} quarantined event(s) skipped",
                      highlight=False)
        parity = self.model.meta["parity"]
        console.print(f"  frozen = live on {parity['rows']} rows (max |diff| "
                      f"{parity['max_abs_diff']:.3g}, {parity['label_mismatches']} flipped labels)",
                      highlight=False)
        console.print(f"  package: {self.package.path}", highlight=False, soft_wrap=True)
        for note in online["notes"]:
            console.print(f"  note: {note}", highlight=False)

    def to_html(self) -> str:
        """A one-page summary."""
        return html_page(f"Snapshot {self.model.ref}", [
            ("Online lineage", [table([{k: str(v) for k, v in self.online.items()}])]),
            ("Parity", [table([self.model.meta["parity"]])])])


def snapshot_online(ws: Workspace, name: str, dataset: str | None = None) -> SnapshotResult:
    """Freeze the online model ``name`` as ``NAME@N`` with its River package (see the module
    docstring); ``dataset`` is the evaluation dataset's ref."""
    spec_artifact, spec = read_spec(ws, name)
    evaluation = _evaluation_dataset(ws, spec_artifact, spec, dataset)
    data = _training_data(ws, spec, evaluation)
    model, recovery = open_online(ws, name, writable=False)
    frozen = freeze(spec, model.pipeline)
    parity = _parity(model, frozen, _parity_rows(data, spec))
    online = _online_lineage(spec_artifact, spec, model, recovery, evaluation)
    earlier = {a.id for a in ws.artifacts(MODEL_KIND) if a.name == spec.name}
    stored = store_model(
        ws, frozen, name=spec.name, meta=_meta(ws, spec, data, parity, online),
        inputs={"online": spec_artifact.id, "dataset": evaluation.id,
                **({"checkpoint": recovery.checkpoint.id} if recovery.checkpoint else {}),
                **({"split": data.split.id} if data.split is not None else {})},
        description=f"online model {spec.name} frozen after event {model.seq}")
    unchanged = stored.id in earlier
    if unchanged:
        _check_same_evaluation(ws, stored, evaluation)
        online = stored.meta.get("online", online)  # what that snapshot recorded, not this call
    package = _package_of(ws, stored) if unchanged else None
    return SnapshotResult(stored, package or build_package(ws, stored.id), online, unchanged)


def _check_same_evaluation(ws: Workspace, earlier: Artifact, evaluation: Artifact) -> None:
    """An unchanged model is its earlier snapshot, whose metrics, reference and card come from
    the dataset it was evaluated on: refuse another one rather than mix the two."""
    used = [parent for role, parent in ws.parents(earlier.id) if role == "dataset"]
    if used and used[0].id != evaluation.id:
        raise DataError(f"online model {earlier.name} has not changed since {earlier.ref}, which "
                        f"was evaluated on {used[0].ref}, not {evaluation.ref}; snapshot it "
                        "again once it has learnt more events, or leave --dataset out")


def _package_of(ws: Workspace, model: Artifact) -> PackageResult | None:
    """The River package built for ``model`` before, when it is still there and verifies."""
    path = package_dir(ws, model)
    try:
        manifest = verify_package(path, flavour="river")
    except (OSError, PackageIntegrityError):
        return None
    if manifest.model_id != model.id:
        return None
    zipped = path.with_name(path.name + ".zip")
    return PackageResult(path, zipped if zipped.is_file() else None, manifest)


def _evaluation_dataset(ws: Workspace, spec_artifact: Artifact, spec: OnlineSpec,
                        ref: str | None) -> Artifact:
    """``ref``, else the dataset the model was created from, else its warm-start dataset."""
    if ref is not None:
        return ws.resolve(ref, ("dataset",))
    created_from = [parent for role, parent in ws.parents(spec_artifact.id) if role == "dataset"]
    if created_from:
        return created_from[0]
    if spec.warm_start is not None:
        return ws.get(spec.warm_start)
    raise DataError(f"online model {spec.name} was created from a contract and has no dataset "
                    "to be evaluated, tested and monitored against; pass --dataset REF (a "
                    f"dataset version with target '{spec.target}', split with 'mlstrata split')")


def _training_data(ws: Workspace, spec: OnlineSpec, dataset: Artifact) -> TrainingData:
    """The evaluation dataset, checked: the same target, every input column present."""
    task = _batch_task(spec)
    data = load_training_data(ws, dataset.id, task)
    if data.target != spec.target:
        raise DataError(f"{dataset.ref} has target '{data.target}' but online model {spec.name} "
                        f"predicts '{spec.target}'; pass --dataset with a dataset whose target "
                        f"is '{spec.target}'")
    missing = [column for column in spec.features if column not in data.frame.columns]
    if missing:
        raise DataError(f"{dataset.ref} lacks the input column(s) {', '.join(missing)} of online "
                        f"model {spec.name}; pass --dataset with a dataset that has them")
    return data


def _batch_task(spec: OnlineSpec) -> Any:
    """The task as batch models name it: binary, multiclass or regression."""
    if spec.task == "regression":
        return "regression"
    return "binary" if len(spec.classes) == 2 else "multiclass"


def _parity_rows(data: TrainingData, spec: OnlineSpec) -> Any:
    """Up to :data:`PARITY_ROWS` validation rows (training rows without a split)."""
    frame = data.features("validation") if data.is_validation.any() else data.features("train")
    return frame[[c for c in spec.contract.columns if c in frame.columns]].head(PARITY_ROWS)


def _parity(live: OnlineModel, frozen: FrozenRiverModel, rows: Any) -> dict[str, Any]:
    """Compare the frozen model (a DataFrame) with the live one (each row as a JSON request);
    refuse the snapshot when they disagree."""
    records = orjson.loads(orjson.dumps(frame_records(rows, live.spec)))
    answered: list[int] = []
    expected: list[list[float]] = []
    for row, record in enumerate(records):
        try:
            answer = live.predict(record)
        except EventRefusedError:
            continue  # a row the live service would refuse is no request
        answered.append(row)
        expected.append([answer.value] if answer.value is not None else
                         [answer.probabilities[c] for c in live.spec.classes])
    subset = rows.iloc[answered]
    if hasattr(frozen, "predict_proba"):
        got = frozen.predict_proba(subset)
    else:
        got = frozen.predict(subset).reshape(-1, 1)
    want = np.asarray(expected, dtype=np.float64).reshape(got.shape)
    diff = float(np.abs(got - want).max()) if len(answered) else 0.0
    flipped = int((got.argmax(axis=1) != want.argmax(axis=1)).sum()) \
        if live.spec.task == "classification" and len(answered) else 0
    if diff > _TOLERANCE or flipped:
        raise DataError(f"the frozen model of {live.spec.name} differs from the live one by "
                        f"{diff:.3g} ({flipped} flipped labels) on {len(answered)} rows; nothing "
                        "was stored — report this as a bug")
    return {"compared": "frozen vs live", "rows": len(answered), "max_abs_diff": diff,
            "label_mismatches": flipped, "refused_rows": len(records) - len(answered)}


def _online_lineage(spec_artifact: Artifact, spec: OnlineSpec, model: OnlineModel,
                    recovery: Recovery, evaluation: Artifact) -> dict[str, Any]:
    """What the snapshot was frozen from: checkpoint (sha256), events, quarantine."""
    checkpoint = recovery.checkpoint
    upto = int(checkpoint.meta["last_event"]) if checkpoint else 0
    skipped = recovery.quarantine.skipped()
    quarantined = sum(min(last, model.seq) - first_ + 1 for first_, last in skipped
                      if first_ <= model.seq)
    notes = [f"Frozen from online model {spec.name} after event {model.seq}; it learns no more "
             "(take a new snapshot to follow the live model)."]
    if quarantined:
        notes.append(f"{quarantined} quarantined event(s) were not learnt ("
                     + ", ".join(f"{a}..{b}" for a, b in skipped) + ").")
    if spec.warm_start is not None:
        notes.append(f"Warm-started on every row of dataset {spec.warm_start[:12]}: if "
                     f"{evaluation.ref} shares rows with it, 'mlstrata evaluate' is optimistic "
                     "(the sealed test set is kept apart at ingest).")
    notes.extend(recovery.notes)
    return {"model": spec.name, "spec": spec_artifact.id, "spec_version": spec_artifact.version,
            "online_model": spec.model, "checkpoint": checkpoint.id if checkpoint else None,
            "checkpoint_ref": checkpoint.ref if checkpoint else None,
            "checkpoint_last_event": upto, "replayed": recovery.replayed,
            "events": [1, model.seq], "quarantined": skipped,
            "quarantined_events": quarantined, "river": river_version(),
            "log": {"model": spec.name, "version": spec_artifact.version}, "notes": notes}


def _meta(ws: Workspace, spec: OnlineSpec, data: TrainingData, parity: dict[str, Any],
          online: dict[str, Any]) -> dict[str, Any]:
    """The model artifact's meta, as batch training writes it, plus flavour and lineage."""
    task = _batch_task(spec)
    return {"task": task, "target": spec.target, "candidate": f"river {spec.model}",
            "params": dict(spec.params), "metric": primary_metric(task, ws.config.model.metric),
            "inputs": [{"name": c, "type": spec.contract.columns[c].type}
                       for c in spec.features],
            **({"classes": list(spec.classes)} if spec.classes else {}),
            "dataset": data.dataset.id, "split": data.split.id if data.split else None,
            "flavour": "river", "parity": parity, "online": online}
