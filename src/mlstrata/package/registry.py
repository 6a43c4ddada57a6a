"""The model registry: MLflow registered models, versions and aliases (``champion``...).

The registry lives at the workspace's tracking URI (the embedded ``sqlite:///<ws.store>/mlflow.db``
unless ``model.tracking_uri`` or ``--tracking-uri`` says otherwise; see
:mod:`mlstrata.model.tracking`). A workspace model is registered under ``model.registry_name`` or
its dataset's name; each version is tagged with the workspace model id, ref and lineage ids.

Promotion moves an alias to a version only when the workspace holds, for that version's model, a
passed evaluation (``mlstrata evaluate``) and a passed acceptance test (``mlstrata test``) — the
newest of each counts. Every move of an alias is appended to the registered-model tag
``mlstrata.alias_history.<alias>`` (a JSON list of versions), which ``rollback`` walks back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlstrataError, RefNotFoundError
from ..model.acceptance import find_acceptance
from ..model.artifact import load_model
from ..model.evaluate import find_evaluation
from ..model.tracking import (
    TAG_PREFIX,
    mlflow_calls,
    resolve_uri,
    training_run,
)
from ..workspace import Artifact, Workspace

__all__ = [
    "HISTORY_TAG",
    "PromotionError",
    "RegisteredModelInfo",
    "RegisteredVersion",
    "list_models",
    "promote",
    "register",
    "rollback",
    "show",
]

HISTORY_TAG = TAG_PREFIX + "alias_history."
_MISSING = "RESOURCE_DOES_NOT_EXIST"


class PromotionError(MlstrataError):
    """An alias cannot be moved: gates or acceptance test missing or failed, nothing to roll to."""


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model, with its aliases and mlstrata tags."""

    name: str
    version: int
    source: str
    run_id: str | None
    aliases: list[str]
    tags: dict[str, str]

    @property
    def model_id(self) -> str | None:
        """The workspace model artifact id this version was registered from."""
        return self.tags.get(TAG_PREFIX + "model_id")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "version": self.version, "ref": f"{self.name}@{self.version}",
                "aliases": self.aliases, "model_id": self.model_id,
                "model_ref": self.tags.get(TAG_PREFIX + "model_ref"), "source": self.source,
                "run_id": self.run_id, "tags": self.tags}


@dataclass(frozen=True)
class RegisteredModelInfo:
    """A registered model: its versions, aliases (alias -> version) and alias histories."""

    name: str
    aliases: dict[str, int]
    versions: list[RegisteredVersion] = field(default_factory=list)
    history: dict[str, list[int]] = field(default_factory=dict)

    @property
    def latest(self) -> int | None:
        """The highest version number (None when no version exists)."""
        return max((v.version for v in self.versions), default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "latest": self.latest, "aliases": self.aliases,
                "history": self.history, "versions": [v.to_dict() for v in self.versions]}


def register(
    ws: Workspace, model_ref: str, package_dir: Path | None = None, tracking_uri: str | None = None
) -> RegisteredVersion:
    """Log model ``model_ref`` to MLflow and register it as a new version (idempotent).

    The logged model is the package's MLflow model when ``package_dir`` is given, else the native
    pipeline saved with ``mlflow.sklearn``. Registering the same workspace model twice returns the
    existing version.
    """
    model, pipeline = load_model(ws, model_ref)
    name = ws.config.model.registry_name or ws.get(str(model.meta["dataset"])).name
    with _client(ws, tracking_uri) as client:
        for existing in _versions(client, name):
            if existing.model_id == model.id:
                return existing
        with ws.staging() as stage:
            local = _mlflow_model_dir(package_dir) if package_dir else _save_native(pipeline, stage)
            with training_run(ws, uri=tracking_uri, run_name=f"register {model.ref}") as run:
                client.log_artifacts(run.run_id, str(local), "model")
                run.set_lineage(_lineage(model))
        source = f"{client.get_run(run.run_id).info.artifact_uri}/model"
        _ensure_registered(client, name)
        tags = {TAG_PREFIX + k: v for k, v in _lineage(model).items() if v}
        made = client.create_model_version(name, source, run_id=run.run_id, tags=tags,
                                           description=f"mlstrata model {model.ref}")
        return _version(client.get_model_version(name, made.version))


def list_models(ws: Workspace, tracking_uri: str | None = None) -> list[RegisteredModelInfo]:
    """Every registered model at the workspace's tracking URI, with versions and aliases."""
    with _client(ws, tracking_uri) as client:
        return [_model_info(client, found.name)
                for found in client.search_registered_models(order_by=["name ASC"])]


def show(
    ws: Workspace, ref: str, tracking_uri: str | None = None
) -> RegisteredModelInfo | RegisteredVersion:
    """``NAME`` (the model and all its versions), ``NAME@N`` or ``NAME@ALIAS`` (one version)."""
    name, _, which = ref.partition("@")
    with _client(ws, tracking_uri) as client:
        if not which:
            return _model_info(client, name)
        return _lookup(client, name, which)


def promote(
    ws: Workspace, ref: str, alias: str = "champion", tracking_uri: str | None = None
) -> RegisteredVersion:
    """Point ``alias`` at version ``NAME@N`` after checking its evaluation and acceptance test."""
    name, _, number = ref.partition("@")
    if not number.isdigit():
        raise RefNotFoundError(f"promote needs NAME@VERSION (e.g. {name}@1), got '{ref}'")
    with _client(ws, tracking_uri) as client:
        version = _lookup(client, name, number)
        _require_passed(ws, version, alias)
        history = _history(client, name, alias)
        if not history or history[-1] != version.version:
            _set_history(client, name, alias, [*history, version.version])
        client.set_registered_model_alias(name, alias, str(version.version))
        return _lookup(client, name, number)


def rollback(
    ws: Workspace, name: str, alias: str = "champion", tracking_uri: str | None = None
) -> RegisteredVersion:
    """Move ``alias`` back to the version that held it before the current one."""
    with _client(ws, tracking_uri) as client:
        _model_info(client, name)
        history = _history(client, name, alias)
        if len(history) < 2:
            held = f"only version {history[0]} has held it" if history else "it was never set"
            raise PromotionError(f"cannot roll back '{alias}' of {name}: {held}, so there is no "
                                 f"previous version; promote one with 'mlstrata models promote "
                                 f"{name}@N --alias {alias}'")
        previous = history[-2]
        client.set_registered_model_alias(name, alias, str(previous))
        _set_history(client, name, alias, history[:-1])
        return _lookup(client, name, str(previous))


# -- checks ----------------------------------------------------------------------------------


def _require_passed(ws: Workspace, version: RegisteredVersion, alias: str) -> None:
    """Refuse promotion unless the version's model passed its newest evaluation and acceptance."""
    where = f"cannot promote {version.name}@{version.version} to '{alias}'"
    if version.model_id is None:
        raise PromotionError(f"{where}: it was not registered by mlstrata (no {TAG_PREFIX}model_id "
                             "tag), so its gates cannot be checked; register it with mlstrata")
    try:
        model = ws.get(version.model_id)
    except RefNotFoundError as exc:
        raise PromotionError(f"{where}: its model {version.model_id[:12]} is not in this workspace "
                             f"({ws.root}); promote from the workspace that trained it") from exc
    missing = [problem for problem in (
        _problem(find_evaluation(ws, model), "evaluation", f"mlstrata evaluate {model.ref}"),
        _problem(find_acceptance(ws, model), "acceptance test", f"mlstrata test {model.ref}"),
    ) if problem]
    if missing:
        raise PromotionError(f"{where} (model {model.ref}): " + "; ".join(missing))


def _problem(found: Artifact | None, what: str, command: str) -> str:
    if found is None:
        return f"no {what} — run '{command}'"
    if not found.meta.get("passed"):
        return f"its newest {what} ({found.ref}) failed — fix the model and run '{command}'"
    return ""


# -- MLflow plumbing ---------------------------------------------------------------------------


@contextlib.contextmanager
def _client(ws: Workspace, tracking_uri: str | None) -> Iterator[Any]:
    """An MlflowClient on the resolved URI; connection failures become one-line TrackingErrors."""
    from mlflow import MlflowClient

    uri = resolve_uri(ws, tracking_uri)
    with mlflow_calls(uri, "registry at"):
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)


def _lookup(client: Any, name: str, which: str) -> RegisteredVersion:
    """Version ``which`` (a number or an alias) of ``name``; unknown ones name what exists."""
    from mlflow.exceptions import MlflowException

    info = _model_info(client, name)
    try:
        found = (client.get_model_version(name, which) if which.isdigit()
                 else client.get_model_version_by_alias(name, which))
    except MlflowException as exc:
        if exc.error_code != _MISSING and "not found" not in str(exc).lower():
            raise
        versions = ", ".join(str(v.version) for v in info.versions) or "none"
        aliases = ", ".join(info.aliases) or "none"
        raise RefNotFoundError(f"registered model {name} has no version or alias '{which}' "
                               f"(versions: {versions}; aliases: {aliases}); run "
                               f"'mlstrata models show {name}'") from exc
    return _version(found)


def _model_info(client: Any, name: str) -> RegisteredModelInfo:
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != _MISSING:
            raise
        known = [m.name for m in client.search_registered_models()]
        raise RefNotFoundError(f"no registered model named '{name}' (registered: "
                               f"{', '.join(known) or 'none'}); run 'mlstrata models list'"
                               ) from exc
    history = {key.removeprefix(HISTORY_TAG): json.loads(value)
               for key, value in found.tags.items() if key.startswith(HISTORY_TAG)}
    return RegisteredModelInfo(name, {a: int(v) for a, v in found.aliases.items()},
                               _versions(client, name), history)


def _versions(client: Any, name: str) -> list[RegisteredVersion]:
    escaped = name.replace("'", "\\'")
    found = client.search_model_versions(f"name = '{escaped}'")
    return sorted((_version(v) for v in found), key=lambda v: v.version)


def _version(found: Any) -> RegisteredVersion:
    return RegisteredVersion(found.name, int(found.version), str(found.source), found.run_id,
                             sorted(found.aliases or []), dict(found.tags or {}))


def _history(client: Any, name: str, alias: str) -> list[int]:
    tags = client.get_registered_model(name).tags
    return [int(v) for v in json.loads(tags.get(HISTORY_TAG + alias, "[]"))]


def _set_history(client: Any, name: str, alias: str, history: list[int]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG + alias, json.dumps(history))


def _ensure_registered(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != _MISSING:
            raise
        client.create_registered_model(name, description="registered by mlstrata")


def _lineage(model: Artifact) -> dict[str, str | None]:
    return {"model_id": model.id, "model_ref": model.ref,
            "dataset_id": model.meta.get("dataset"), "split_id": model.meta.get("split")}


def _mlflow_model_dir(package_dir: Path) -> Path:
    """The folder holding the package's ``MLmodel`` (the package root or a sub-folder)."""
    found = sorted(package_dir.rglob("MLmodel"), key=lambda p: len(p.parts))
    if not found:
        raise RefNotFoundError(f"{package_dir}: no MLmodel file in this package; rebuild it with "
                               "'mlstrata package', or register without --package")
    return found[0].parent


def _save_native(pipeline: Any, stage: Path) -> Path:
    """Save the native pipeline as an MLflow sklearn model.

    Requirements are given explicitly (inferring them loads the model in a subprocess, seconds);
    cloudpickle because skops refuses the numpy dtypes fitted pipelines hold.
    """
    import mlflow.sklearn
    import numpy
    import pandas
    import sklearn

    path = stage / "mlflow-model"
    requirements = [f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}",
                    f"pandas=={pandas.__version__}"]
    logger = logging.getLogger("mlflow.sklearn")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the generic pickle caution; the registry is trusted storage
    try:
        with warnings.catch_warnings():
            # raised once while mlflow.pyfunc imports its chat-agent types, about MLflow's own code
            warnings.filterwarnings("ignore", ".*Any type hint is inferred", UserWarning)
            mlflow.sklearn.save_model(
                pipeline, str(path), pip_requirements=requirements,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
    finally:
        logger.setLevel(level)
    return path
