"""Build a model package: one self-describing directory (and ``.zip``) per model version.

Layout of ``<project>/packages/<model>-<version>/``::

    model.onnx        the pipeline after its ``dates`` step, preprocessing included
    model.joblib      the native pipeline (load only after its sha256 matches the manifest)
    signature.json    inputs (types, nullability, categories/ranges from the contract, and
                      each number's training range), dates to expand, ONNX inputs, outputs
                      (label, probabilities + class order, value); the PII action of each
                      input and the business key, for the prediction log (log_policy.py)
    contract.yaml     the data contract, when the project has one for the dataset
    MLmodel, python_model.pkl, python_env.yaml, requirements.txt ...
                      an MLflow pyfunc model: mlflow.pyfunc.load_model(dir).predict(frame)
    model_card.md / model_card.html
    reference.json    the training distribution of every input, the predictions and the metrics
                      (with bootstrap intervals) on the validation rows: what 'mlstrata
                      monitor' compares live traffic with (see mlstrata.monitor.reference)
    model.pmml        with --pmml only; its measured parity is manifest.extra["pmml"]
    manifest.json     sha256 + size of every file above, lineage, library versions, parity

Every number input carries the range its training rows covered (``training_min`` and
``training_max``), with which the runtime names the fields that drove a prediction out of range.
A model whose dataset has no contract gets those ranges as its rules too (``min``/``max``,
widened the way ``mlstrata contract infer`` widens them, and like them ``warn``), so that a
value outside what training saw is flagged.

Each input's rules carry their severity (``"severity": {"min": "warn", "allowed": "error"}``):
the runtime refuses a value breaking an ``error`` rule and scores one breaking a ``warn`` rule
with a warning (``mlstrata serve --strict`` refuses both). ``strict`` is still written for the
``allowed`` rule, so an older runtime reads the package as before.

A model frozen from an online model (``meta["flavour"] == "river"``, ``mlstrata online
snapshot``) has no ONNX form; its package is the River flavour (:mod:`.river_flavour`).

Nothing is written unless everything succeeds: the package is built in the workspace's staging
area and renamed into place at the end.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from .. import _atomic
from ..contract import Contract
from ..data.contract_infer import MAX_DISCRETE, widened_range
from ..model.artifact import load_model
from ..model.data import TrainingData, load_training_data
from ..monitor.reference import REFERENCE_FILE, Reference, build_reference
from ..reports import Report, html_page, paragraph, table
from ..runtime.manifest import MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, Manifest, hash_files
from ..workspace import Artifact, Workspace
from .join_tables import write_join_tables
from .locate import package_dir
from .log_policy import add_log_policy
from .model_card import ModelCard
from .onnx_export import OnnxExport, Parity, measure_parity, split_dates, to_onnx
from .pmml import export_pmml, measure_pmml_parity

__all__ = ["PARITY_SAMPLE_ROWS", "PackageResult", "build_package"]

PARITY_SAMPLE_ROWS = 2000
RIVER_FLAVOUR = "river"
"""``meta["flavour"]`` of a model artifact frozen from an online model (see river_flavour.py)."""
_LIBRARIES = ("scikit-learn", "onnx", "onnxruntime", "skl2onnx", "onnxmltools", "lightgbm",
              "xgboost-cpu", "mlflow", "joblib", "numpy", "pandas")
_PROGRESS_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@dataclass(frozen=True)
class PackageResult(Report):
    """A built package: its directory, zip and manifest."""

    path: Path
    zip_path: Path | None
    manifest: Manifest

    @property
    def size(self) -> int:
        """Total bytes of the package directory's files."""
        return sum(entry.size for entry in self.manifest.files.values())

    def to_dict(self) -> dict[str, Any]:
        """Path, files, parity and size, JSON-ready."""
        return {"path": str(self.path), "zip": str(self.zip_path) if self.zip_path else None,
                "model": f"{self.manifest.model_name}@{self.manifest.model_version}",
                "size": self.size, "float_precision": self.manifest.float_precision,
                "parity": self.manifest.parity,
                "pmml_parity": (self.manifest.extra.get("pmml") or {}).get("parity"),
                "files": {name: e.size for name, e in self.manifest.files.items()}}

    def render_terminal(self, console: Console) -> None:
        """Print where the package is, its files, parity and size."""
        parity = self.manifest.parity
        console.print(f"package: {self.path}", highlight=False, soft_wrap=True)
        if self.zip_path:
            console.print(f"zip:     {self.zip_path}", highlight=False, soft_wrap=True)
        for name, entry in self.manifest.files.items():
            console.print(f"  {name:<28} {entry.size:>12,} bytes", highlight=False)
        compared = "ONNX - native" if self.manifest.flavour == "onnx" else "frozen - live"
        console.print(f"parity:  max |{compared}| = {parity['max_abs_diff']:.3g} on "
                      f"{parity['rows']} rows, {parity['label_mismatches']} flipped labels "
                      f"({self.manifest.float_precision})", highlight=False)
        pmml = self.manifest.extra.get("pmml")
        if pmml:
            console.print(f"pmml:    max |PMML - native| = {pmml['parity']['max_abs_diff']:.3g} "
                          f"on {pmml['parity']['rows']} rows", highlight=False)
        console.print(f"size:    {self.size / 1e6:.2f} MB", highlight=False)

    def to_html(self) -> str:
        """A one-page summary of the package."""
        rows = [{"file": n, "bytes": e.size, "sha256": e.sha256}
                for n, e in self.manifest.files.items()]
        return html_page(f"Package {self.path.name}", [
            ("Files", [table(rows)]), ("Parity", [table([self.manifest.parity])]),
            ("Location", [paragraph(str(self.path))])])


def build_package(
    ws: Workspace,
    model_ref: str,
    out: Path | None = None,
    *,
    parity_rows: pd.DataFrame | None = None,
    zip_: bool = True,
    pmml: bool = False,
) -> PackageResult:
    """Package model ``model_ref`` into ``out`` (default ``<project>/packages/<name>-<version>``).

    Parity is measured on ``parity_rows`` (default: the training dataset's validation rows, or up
    to 2,000 training rows) and must be within the bound, or nothing is written.
    """
    artifact, pipeline = load_model(ws, model_ref)
    if artifact.meta.get("flavour") == RIVER_FLAVOUR:
        from .river_flavour import build_river_package

        return build_river_package(ws, artifact, pipeline, out, zip_=zip_, pmml=pmml)
    task = str(artifact.meta["task"])
    columns = _input_names(artifact, pipeline)
    data = _training_data(ws, artifact, task)
    rows = (parity_rows if parity_rows is not None else _default_rows(data))[columns]
    export = to_onnx(pipeline, rows.head(100), task)
    parity = measure_parity(pipeline, export.model_bytes, rows, task)
    parity.require(artifact.ref)
    reference = _reference(ws, artifact, pipeline, data, columns)
    target = (out or package_dir(ws, artifact)).resolve()
    with ws.staging() as stage:
        directory = stage / target.name
        directory.mkdir()
        manifest = _write_package(ws, artifact, pipeline, export, parity, directory,
                                  data.features("train"), rows if pmml else None, reference)
        zipped = _zip(directory) if zip_ else None
        _install(directory, target)
        zip_path = target.with_name(target.name + ".zip") if zipped else None
        if zipped is not None and zip_path is not None:
            os.replace(zipped, zip_path)
    return PackageResult(target, zip_path, manifest)


def _input_names(artifact: Artifact, pipeline: Any) -> list[str]:
    inputs = artifact.meta.get("inputs")
    if inputs:
        return [str(item["name"]) for item in inputs]
    return [str(name) for name in pipeline.feature_names_in_]


def _training_data(ws: Workspace, artifact: Artifact, task: str) -> TrainingData:
    setting: Any = task if task in ("binary", "multiclass", "regression", "clustering") else "auto"
    return load_training_data(ws, str(artifact.meta["dataset"]), setting)


def _default_rows(data: TrainingData) -> pd.DataFrame:
    if data.is_validation.any():
        return data.features("validation")
    train = data.features("train")
    return train.sample(n=min(PARITY_SAMPLE_ROWS, len(train)), random_state=0)


def _reference(ws: Workspace, artifact: Artifact, pipeline: Any, data: TrainingData,
               columns: list[str]) -> Reference:
    """The monitoring reference: training distributions, validation predictions and metrics."""
    types = {str(i["name"]): str(i.get("type", "")) for i in artifact.meta.get("inputs") or []}
    validation = None
    if data.is_validation.any() and data.target is not None:
        validation = (data.features("validation"), data.labels("validation"))
    return build_reference(
        artifact.name, artifact.version, str(artifact.meta["task"]), artifact.meta.get("target"),
        [(name, types.get(name, "")) for name in columns], data.features("train"), pipeline,
        validation, artifact.meta.get("metric"), ws.config.model.gates)


def _write_package(ws: Workspace, artifact: Artifact, pipeline: Any, export: OnnxExport,
                   parity: Parity, directory: Path, training: pd.DataFrame,
                   pmml_rows: pd.DataFrame | None, reference: Reference) -> Manifest:
    """Write every file of the package into ``directory``; ``training``: the training rows (for
    the signature's ranges); ``pmml_rows`` (the parity rows) when ``model.pmml`` is wanted too."""
    native = ws.path_for_read(artifact)
    _atomic.write_bytes(directory / "model.onnx", export.model_bytes)
    shutil.copyfile(native, directory / "model.joblib")
    contract = _find_contract(ws, artifact)
    if contract is not None:
        shutil.copyfile(contract, directory / "contract.yaml")
    signature = _signature(artifact, pipeline, export,
                           Contract.load(contract) if contract is not None else None, training)
    add_log_policy(signature, ws, artifact)
    _atomic.write_text(directory / "signature.json", json.dumps(signature, indent=2, default=str))
    _save_mlflow(directory, artifact)
    write_join_tables(ws, artifact, directory)
    lineage = _lineage(ws, artifact)
    card = ModelCard(artifact.name, artifact.version, artifact.id, str(artifact.meta["task"]),
                     artifact.meta.get("target"), str(artifact.meta.get("candidate", "")),
                     lineage, artifact.meta.get("cv") or {}, artifact.meta.get("acceptance"),
                     artifact.meta.get("gates"), parity.to_dict(),
                     list(artifact.meta.get("excluded") or []))
    _atomic.write_text(directory / "model_card.md", card.to_markdown())
    _atomic.write_text(directory / "model_card.html", card.to_html())
    _atomic.write_text(directory / REFERENCE_FILE, reference.to_json())
    extra = {} if pmml_rows is None else {"pmml": _write_pmml(artifact, pipeline, pmml_rows,
                                                               directory / "model.pmml")}
    manifest = Manifest(
        schema_version=MANIFEST_SCHEMA_VERSION, mlstrata_version=metadata.version("mlstrata"),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_name=artifact.name, model_version=artifact.version, model_id=artifact.id,
        task=str(artifact.meta["task"]),
        lineage={e["role"]: e["id"] for e in lineage}, files=hash_files(directory),
        libraries=_library_versions(), parity=parity.to_dict(),
        float_precision=export.float_precision, opset=export.opset, extra=extra)
    _atomic.write_text(directory / MANIFEST_FILE, manifest.to_json())
    return manifest


def _write_pmml(artifact: Artifact, pipeline: Any, rows: pd.DataFrame, path: Path
                ) -> dict[str, Any]:
    """Write ``model.pmml`` and return its parity with the native model on ``rows``."""
    target = artifact.meta.get("target")
    dates = {str(i["name"]): str(i["type"]) for i in artifact.meta.get("inputs") or []
             if i.get("type") in ("date", "timestamp")}
    export_pmml(pipeline, path, _input_names(artifact, pipeline), target, dates)
    return {"parity": measure_pmml_parity(path, pipeline, rows, str(artifact.meta["task"]),
                                          target, dates),
            "converter": f"sklearn2pmml {metadata.version('sklearn2pmml')}"}


def _signature(artifact: Artifact, pipeline: Any, export: OnnxExport,
               contract: Contract | None, training: pd.DataFrame) -> dict[str, Any]:
    inputs = input_entries(artifact, _input_names(artifact, pipeline), contract, training)
    expander, _ = split_dates(pipeline)
    return {"schema_version": 1, "model": artifact.ref, "task": artifact.meta["task"],
            "target": artifact.meta.get("target"), "inputs": inputs,
            "dates": _date_spec(expander), "onnx_inputs": export.input_schema,
            "outputs": export.outputs, "float_precision": export.float_precision}


def input_entries(artifact: Artifact, names: list[str], contract: Contract | None,
                  training: pd.DataFrame) -> list[dict[str, Any]]:
    """The signature's ``inputs``: each input's type, nullability, the contract's rules with
    their severities, and the range its training rows covered (every package flavour)."""
    types = {str(i["name"]): str(i.get("type", "")) for i in artifact.meta.get("inputs") or []}
    inputs = []
    for name in names:
        spec = contract.columns.get(name) if contract is not None else None
        entry: dict[str, Any] = {"name": name, "logical_type": spec.type if spec else types.get(
            name, ""), "nullable": spec.nullable if spec else True}
        if spec is not None:
            entry.update({k: v for k, v in (("allowed", spec.allowed), ("strict", spec.strict),
                                            ("min", spec.min), ("max", spec.max),
                                            ("pattern", spec.pattern)) if v is not None})
            entry["severity"] = _severities(spec)
        if name in training.columns:
            entry.update(_training_range(entry["logical_type"], training[name],
                                         as_rules=contract is None))
        inputs.append(entry)
    return inputs


def _severities(spec: Any) -> dict[str, str]:
    """The severity of each rule a contract column makes that the runtime checks per value."""
    present = {"type": True, "not_null": not spec.nullable, "min": spec.min is not None,
               "max": spec.max is not None, "allowed": spec.allowed is not None,
               "pattern": spec.pattern is not None}
    return {kind: spec.severity_of(kind) for kind, made in present.items() if made}


def _training_range(kind: str, values: pd.Series, *, as_rules: bool) -> dict[str, Any]:
    """``training_min``/``training_max`` of a number input, observed on the training rows; with
    ``as_rules`` (no contract) also ``min``/``max`` as warnings: the observed bounds of an integer
    with at most 20 values (a flag, a count), else widened by 10% of the span as contract
    inference does."""
    if kind not in ("integer", "float"):
        return {}
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    numbers = numbers[np.isfinite(numbers)]
    if numbers.empty:
        return {}
    cast = int if kind == "integer" else float
    low, high = cast(numbers.min()), cast(numbers.max())
    found: dict[str, Any] = {"training_min": low, "training_max": high}
    if as_rules:
        discrete = kind == "integer" and numbers.nunique() <= MAX_DISCRETE
        found.update({"min": low, "max": high} if discrete else widened_range(kind, low, high))
        found["severity"] = {"min": "warn", "max": "warn"}
    return found


def _date_spec(expander: Any) -> list[dict[str, Any]]:
    """Which columns the runtime expands into which parts (from the fitted ``dates`` step)."""
    if expander is None:
        return []
    columns = getattr(expander, "columns_", None) or getattr(expander, "columns", None) or []
    parts = list(getattr(expander, "parts", None) or [])
    return [{"column": str(column), "parts": parts} for column in columns]


def _find_contract(ws: Workspace, artifact: Artifact) -> Path | None:
    """``contracts/<name>.yaml`` of the training dataset or the nearest dataset it came from."""
    dataset: Artifact | None = ws.get(str(artifact.meta["dataset"]))
    while dataset is not None:
        path = ws.root / "contracts" / f"{dataset.name}.yaml"
        if path.is_file():
            return path
        parents = [p for _, p in ws.parents(dataset.id) if p.kind == "dataset"]
        dataset = parents[0] if parents else None
    return None


def _lineage(ws: Workspace, artifact: Artifact) -> list[dict[str, str]]:
    """Every ancestor of the model (raw bytes → dataset → recipe → split → model), oldest first."""
    seen: dict[str, dict[str, str]] = {}
    frontier = [("model", artifact)]
    while frontier:
        role, current = frontier.pop()
        if current.id in seen:
            continue
        seen[current.id] = {"role": role, "kind": current.kind, "ref": current.ref,
                            "id": current.id}
        frontier += ws.parents(current.id)
    dataset_id = str(artifact.meta.get("dataset", ""))
    if dataset_id and dataset_id not in seen:
        dataset = ws.get(dataset_id)
        seen[dataset.id] = {"role": "dataset", "kind": dataset.kind, "ref": dataset.ref,
                            "id": dataset.id}
    return sorted(seen.values(), key=lambda e: (e["kind"] == "model", e["ref"]))


def _save_mlflow(directory: Path, artifact: Artifact,
                 libraries: tuple[str, ...] = ("scikit-learn", "joblib", "pandas")) -> None:
    """Write an MLflow pyfunc model whose ``predict`` runs the hash-checked native pipeline.

    MLflow saves into a fresh directory; its files are moved to the package root and the
    artifact path is pointed at the package's own ``model.joblib`` (no second copy).
    """
    import yaml

    mlflow_pyfunc = _import_pyfunc()
    staging = directory.parent / "mlflow"
    requirements = [f"{name}=={metadata.version(name)}"
                    for name in libraries if _installed(name)]
    logger = logging.getLogger("mlflow")
    level, progress = logger.level, os.environ.get(_PROGRESS_VARIABLE)
    logger.setLevel(logging.ERROR)  # its cloudpickle notice is about MLflow, not this package
    os.environ[_PROGRESS_VARIABLE] = "false"  # no "Downloading artifacts" bar on stderr
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow_pyfunc.save_model(
                path=str(staging), python_model=_native_python_model(artifact.id),
                artifacts={"native": str(directory / "model.joblib")},
                pip_requirements=requirements)
    finally:
        logger.setLevel(level)
        if progress is None:
            os.environ.pop(_PROGRESS_VARIABLE, None)
        else:
            os.environ[_PROGRESS_VARIABLE] = progress
    mlmodel = yaml.safe_load((staging / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["artifacts"]["native"]["path"] = "model.joblib"
    (staging / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    shutil.rmtree(staging / "artifacts")
    for item in staging.iterdir():
        os.replace(item, directory / item.name)
    staging.rmdir()


def _native_python_model(sha256: str) -> Any:
    """A pyfunc model that checks ``model.joblib``'s sha256 before it unpickles it.

    Defined inside a function so that cloudpickle stores the class by value: loading needs
    MLflow and scikit-learn, not this module.
    """
    mlflow_pyfunc = _import_pyfunc()

    with warnings.catch_warnings():  # MLflow asks for type hints; they would be enforced
        # MLflow re-enables UserWarnings inside (``filter_user_warnings_once``), so a filter is
        # not enough: nothing is shown until catch_warnings restores ``showwarning``.
        warnings.showwarning = _shown_nowhere

        class NativeModel(mlflow_pyfunc.PythonModel):  # type: ignore[misc,name-defined]
            def __init__(self, expected: str) -> None:
                self.expected = expected
                self.pipeline: Any = None

            def load_context(self, context: Any) -> None:
                import hashlib

                import joblib

                path = context.artifacts["native"]
                with open(path, "rb") as handle:
                    actual = hashlib.file_digest(handle, "sha256").hexdigest()
                if actual != self.expected:
                    raise ValueError(f"{path}: sha256 {actual[:12]} does not match the packaged "
                                     f"{self.expected[:12]}; refusing to unpickle it")
                self.pipeline = joblib.load(path)

            # No annotations: MLflow would turn them into a schema it enforces on every call.
            def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
                return self.pipeline.predict(model_input)

        return NativeModel(sha256)


def _shown_nowhere(*_args: Any, **_kwargs: Any) -> None:
    """A ``warnings.showwarning`` that shows nothing."""


def _import_pyfunc() -> Any:
    """``mlflow.pyfunc``, imported without the warnings MLflow raises about its own types."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.pyfunc
    return mlflow.pyfunc


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in _LIBRARIES if _installed(name)}


def _zip(directory: Path) -> Path:
    archive = shutil.make_archive(str(directory), "zip", root_dir=directory.parent,
                                  base_dir=directory.name)
    return Path(archive)


def _install(staged: Path, target: Path) -> None:
    """Move the finished package into place, replacing an older build of the same version."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        os.replace(target, old)
        shutil.rmtree(old)
    shutil.move(str(staged), str(target))
