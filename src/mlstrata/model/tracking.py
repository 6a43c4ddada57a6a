"""Experiment tracking in MLflow: one run per training, one nested run per candidate.

A thin integration kept beside the core: training calls :func:`training_run` and logs through the
returned :class:`TrackedRun`; nothing else in mlstrata imports MLflow for tracking. The default
backend is embedded — ``sqlite:///<workspace>/.mlstrata/mlflow.db`` with artifacts under
``.mlstrata/mlruns`` — so ``mlflow ui --backend-store-uri sqlite:///.mlstrata/mlflow.db`` shows
every run. ``model.tracking_uri`` in ``mlstrata.yaml`` or ``--tracking-uri`` points elsewhere (an
MLflow server); an unreachable URI fails fast, before any training, with one line.

Runs carry tags linking back to workspace lineage (``mlstrata.dataset_id``, ``mlstrata.split_id``,
``mlstrata.raw_sha256``, ``mlstrata.model_id``) and the dataset version as an MLflow dataset input.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MlstrataError
from ..workspace import Workspace

__all__ = ["TAG_PREFIX", "TrackedRun", "TrackingError", "default_tracking_uri",
           "mlflow_calls", "resolve_uri", "training_run"]

TAG_PREFIX = "mlstrata."
_PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
_REMOTE_SCHEMES = ("http://", "https://", "databricks")


class TrackingError(MlstrataError):
    """The MLflow tracking backend cannot be reached or refused a write."""


def default_tracking_uri(ws: Workspace) -> str:
    """The embedded backend of a workspace: a SQLite file inside ``.mlstrata/``."""
    return f"sqlite:///{ws.store / 'mlflow.db'}"


def resolve_uri(ws: Workspace, override: str | None = None) -> str:
    """``override`` (``--tracking-uri``), else ``model.tracking_uri``, else the embedded default."""
    return override or ws.config.model.tracking_uri or default_tracking_uri(ws)


@dataclass(frozen=True)
class TrackedRun:
    """The parent MLflow run of one training; log candidates, the dataset and reports through it."""

    run_id: str
    experiment_id: str
    uri: str

    def log_dataset(self, frame: Any, *, name: str, digest: str, target: str | None) -> None:
        """Record the dataset version as the run's training input (name = ref, digest = id)."""
        import mlflow
        from mlflow.data.pandas_dataset import from_pandas

        with _quiet():
            dataset = from_pandas(frame, name=name, digest=digest[:36], targets=target)
            mlflow.log_input(dataset, context="training")

    def set_lineage(self, ids: Mapping[str, str | None]) -> None:
        """Tag the run with workspace lineage ids, e.g. ``{"dataset_id": ..., "model_id": ...}``."""
        import mlflow

        with _quiet():
            mlflow.set_tags({TAG_PREFIX + k: v for k, v in ids.items() if v is not None})

    def log_candidate(
        self,
        name: str,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, Mapping[str, float]],
        timings: Mapping[str, float],
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Log one cross-validated candidate as a nested run; return its run id.

        ``metrics`` maps a metric to ``{"mean": ..., "std": ...}``; ``timings`` holds
        ``fit_seconds`` and ``predict_seconds``.
        """
        import mlflow

        flat = {f"cv_{m}_{stat}": float(v) for m, stats in metrics.items()
                for stat, v in stats.items()}
        run_tags = {f"{TAG_PREFIX}candidate": name, **(tags or {})}
        with _quiet(), mlflow.start_run(run_name=name, nested=True, tags=run_tags,
                                        experiment_id=self.experiment_id) as run:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_metrics({**flat, **{k: float(v) for k, v in timings.items()}})
            return str(run.info.run_id)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Log summary metrics (the winner's) on the parent run."""
        import mlflow

        with _quiet():
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

    def log_artifacts(self, paths: Sequence[Path], folder: str = "report") -> None:
        """Copy report files and plots into the run's artifact store under ``folder``."""
        import mlflow

        with _quiet():
            for path in paths:
                mlflow.log_artifact(str(path), artifact_path=folder)


@contextlib.contextmanager
def training_run(
    ws: Workspace, *, uri: str | None = None, run_name: str, experiment: str | None = None
) -> Iterator[TrackedRun]:
    """Open (and on exit close) the parent run of one training in the workspace's experiment.

    The backend is probed first, so an unreachable server raises :class:`TrackingError` before
    any work. A run left by an exception is marked FAILED.
    """
    import mlflow

    resolved = resolve_uri(ws, uri)
    name = experiment or ws.config.model.experiment or ws.config.project
    experiment_id = _experiment_id(ws, resolved, name)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(resolved)
    try:
        with _quiet():
            active = mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                                      tags={f"{TAG_PREFIX}workspace": str(ws.root)})
        with active as run:
            yield TrackedRun(run.info.run_id, experiment_id, resolved)
    finally:
        mlflow.set_tracking_uri(previous)


def _experiment_id(ws: Workspace, uri: str, name: str) -> str:
    """Find or create the experiment (artifacts in ``.mlstrata/mlruns`` unless the server's)."""
    from mlflow import MlflowClient

    location = None if uri.startswith(_REMOTE_SCHEMES) else (ws.store / "mlruns").as_uri()
    with mlflow_calls(uri, "tracking URI"):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        return str(client.create_experiment(name, artifact_location=location))


def _param(value: Any) -> Any:
    """MLflow params are strings of at most 6000 characters; keep scalars, shorten the rest."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)[:6000]


@contextlib.contextmanager
def mlflow_calls(uri: str, what: str) -> Iterator[None]:
    """MLflow calls that stay quiet, fail fast on a dead server (no retries, 5 s timeout) and
    turn any MLflow failure into a one-line :class:`TrackingError` naming ``what`` and ``uri``."""
    from mlflow.exceptions import MlflowException

    try:
        with _quiet(), _environment(_PROBE_ENV):
            yield
    except (MlflowException, OSError) as exc:
        detail = str(exc).splitlines()[0][:160]
        raise TrackingError(
            f"MLflow {what} {uri} failed or cannot be reached ({detail}); start the server, or "
            "fix --tracking-uri / model.tracking_uri in mlstrata.yaml (omit both for the "
            "embedded SQLite store)"
        ) from exc


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block only (fast failure while probing a server)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's INFO chatter, its schema hints and SQLAlchemy deprecation warnings."""
    logger = logging.getLogger("mlflow")
    alembic = logging.getLogger("alembic")
    levels = logger.level, alembic.level
    logger.setLevel(logging.WARNING)
    alembic.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
            yield
    finally:
        logger.setLevel(levels[0])
        alembic.setLevel(levels[1])
