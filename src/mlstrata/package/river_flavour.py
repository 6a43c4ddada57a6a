"""The River flavour of the package format: an online model frozen by ``mlstrata online snapshot``.

A River pipeline has no ONNX form, so its package holds the frozen model itself — the same
directory layout, manifest and checks as every package, minus the graph::

    model.joblib      the frozen model (``mlstrata.online.frozen``): River inside; its sha256 is
                      the model id, checked before it is unpickled (by load_model, by the
                      MLmodel's loader, by whatever reads the package)
    signature.json    inputs from the online model's contract (types, rules with severities,
                      training ranges), outputs (label + probabilities with the class order, or
                      value); ``flavour: river``, no ``onnx_inputs``
    contract.yaml     the online model's contract (what every event was checked against)
    MLmodel, python_model.pkl, ...   an MLflow pyfunc model (needs River and mlstrata)
    model_card.md / model_card.html  with the snapshot's lineage: checkpoint, event range,
                      quarantined events
    reference.json    what ``mlstrata monitor`` compares the live stream with (training rows of
                      the evaluation dataset, predictions and metrics on its validation rows)
    manifest.json     ``flavour: river``, sha256 of every file, lineage, ``extra.online``

``manifest.parity`` compares the frozen model with the live one (measured by the snapshot); the
lean runtime refuses the package in one line (:func:`~mlstrata.runtime.manifest.verify_package`).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import _atomic
from ..errors import DataError
from ..monitor.reference import REFERENCE_FILE, Reference
from ..runtime.manifest import MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, Manifest, hash_files
from ..workspace import Artifact, Workspace
from .builder import (
    RIVER_FLAVOUR,
    PackageResult,
    _install,
    _installed,
    _lineage,
    _reference,
    _save_mlflow,
    _training_data,
    _zip,
    input_entries,
)
from .locate import package_dir
from .log_policy import add_log_policy
from .model_card import ModelCard

__all__ = ["RIVER_FLAVOUR", "build_river_package"]

_LIBRARIES = ("river", "mlstrata", "joblib", "numpy", "pandas", "mlflow")


def build_river_package(ws: Workspace, artifact: Artifact, model: Any, out: Path | None = None,
                        *, zip_: bool = True, pmml: bool = False) -> PackageResult:
    """Package the frozen online model ``artifact`` (unpickled as ``model``, which carries its
    online ``spec``) into ``out`` (default ``<project>/packages/<name>-<version>``)."""
    if pmml:
        raise DataError(f"{artifact.ref} is a River model (an online snapshot): PMML export "
                        "applies to scikit-learn pipelines only; package it without --pmml")
    data = _training_data(ws, artifact, str(artifact.meta["task"]))
    columns = [str(item["name"]) for item in artifact.meta["inputs"]]
    reference = _reference(ws, artifact, model, data, columns)
    target = (out or package_dir(ws, artifact)).resolve()
    with ws.staging() as stage:
        directory = stage / target.name
        directory.mkdir()
        manifest = _write_package(ws, artifact, model, directory, data.features("train"),
                                  reference)
        zipped = _zip(directory) if zip_ else None
        _install(directory, target)
        zip_path = target.with_name(target.name + ".zip") if zipped else None
        if zipped is not None and zip_path is not None:
            os.replace(zipped, zip_path)
    return PackageResult(target, zip_path, manifest)


def _write_package(ws: Workspace, artifact: Artifact, model: Any, directory: Path,
                   training: Any, reference: Reference) -> Manifest:
    """Every file of a River package, the manifest last."""
    shutil.copyfile(ws.path_for_read(artifact), directory / "model.joblib")
    contract = model.spec.contract
    _atomic.write_text(directory / "contract.yaml", contract.to_yaml())
    signature = _signature(artifact, model, contract, training)
    add_log_policy(signature, ws, artifact)
    _atomic.write_text(directory / "signature.json", json.dumps(signature, indent=2, default=str))
    _save_mlflow(directory, artifact, _LIBRARIES)
    lineage = _lineage(ws, artifact)
    online = dict(artifact.meta.get("online") or {})
    card = ModelCard(artifact.name, artifact.version, artifact.id, str(artifact.meta["task"]),
                     artifact.meta.get("target"), str(artifact.meta.get("candidate", "")),
                     lineage, artifact.meta.get("cv") or {}, artifact.meta.get("acceptance"),
                     artifact.meta.get("gates"), artifact.meta["parity"], [],
                     flavour=RIVER_FLAVOUR, notes=tuple(online.get("notes") or ()))
    _atomic.write_text(directory / "model_card.md", card.to_markdown())
    _atomic.write_text(directory / "model_card.html", card.to_html())
    _atomic.write_text(directory / REFERENCE_FILE, reference.to_json())
    manifest = Manifest(
        schema_version=MANIFEST_SCHEMA_VERSION, mlstrata_version=metadata.version("mlstrata"),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_name=artifact.name, model_version=artifact.version, model_id=artifact.id,
        task=str(artifact.meta["task"]), lineage={e["role"]: e["id"] for e in lineage},
        files=hash_files(directory), libraries=_library_versions(),
        parity=dict(artifact.meta["parity"]), float_precision="float64", opset={},
        extra={"online": online}, flavour=RIVER_FLAVOUR)
    _atomic.write_text(directory / MANIFEST_FILE, manifest.to_json())
    return manifest


def _signature(artifact: Artifact, model: Any, contract: Any, training: Any) -> dict[str, Any]:
    """The signature of a River package: the contract's inputs and the model's outputs."""
    names = [str(item["name"]) for item in artifact.meta["inputs"]]
    task = str(artifact.meta["task"])
    if task == "regression":
        outputs: list[dict[str, Any]] = [{"name": "value", "type": "float", "shape": [None, 1]}]
    else:
        classes = list(model.spec.classes)
        kind = "boolean" if isinstance(classes[0], bool) else (
            "text" if isinstance(classes[0], str) else "integer")
        outputs = [{"name": "label", "type": kind, "shape": [None]},
                   {"name": "probabilities", "type": "float", "shape": [None, len(classes)],
                    "classes": classes}]
    return {"schema_version": 1, "flavour": RIVER_FLAVOUR, "model": artifact.ref, "task": task,
            "target": artifact.meta.get("target"),
            "inputs": input_entries(artifact, names, contract, training), "dates": [],
            "onnx_inputs": [], "outputs": outputs, "float_precision": "float64"}


def _library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in _LIBRARIES if _installed(name)}
