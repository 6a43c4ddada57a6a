"""Fitted models in the workspace: a joblib'd scikit-learn pipeline plus its catalog meta.

A ``model`` artifact is the whole fitted pipeline (preprocessing + estimator), so whatever loads
it predicts from raw feature columns. Its catalog meta records, at least:

==================  =========================================================================
``task``            binary | multiclass | regression | clustering
``target``          the target column (None for clustering)
``candidate``       the candidate name (``lightgbm``, ``logistic``, ``stacking``...)
``params``          the hyper-parameters the estimator was built with
``metric``          the primary metric and ``cv``: {metric: {mean, std}} from cross-validation
``inputs``          [{name, type}] of the raw feature columns the pipeline expects
``classes``         class labels, in the order of ``predict_proba`` columns (classification)
``dataset``         id of the dataset version trained on; ``split``: id of its split or None
``excluded``        [{column, reason}] features left out (identifier, constant, leakage...)
==================  =========================================================================

Loading verifies the file's sha256 against its id before unpickling it (a pickle runs code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _atomic
from ..errors import WorkspaceError
from ..workspace import Artifact, Workspace

__all__ = ["MODEL_KIND", "load_model", "store_model"]

MODEL_KIND = "model"


def store_model(
    ws: Workspace,
    pipeline: Any,
    *,
    name: str,
    meta: Mapping[str, Any],
    inputs: Mapping[str, str],
    description: str = "",
) -> Artifact:
    """Pickle ``pipeline`` with joblib and catalog it as a ``model`` artifact named ``name``."""
    import joblib

    with ws.staging() as stage:
        path = stage / "model.joblib"
        with _atomic.atomic_path(path) as tmp:
            joblib.dump(pipeline, tmp)
        return ws.put_file(path, kind=MODEL_KIND, name=name, meta=meta, inputs=inputs,
                           description=description)


def load_model(ws: Workspace, ref: str) -> tuple[Artifact, Any]:
    """Resolve a model ref and return its artifact and the unpickled pipeline (hash checked)."""
    import joblib

    artifact = ws.resolve(ref, (MODEL_KIND,))
    path = ws.path_for_read(artifact)
    actual = _atomic.sha256_file(path)
    if actual != artifact.id:
        raise WorkspaceError(
            f"{path}: sha256 {actual[:12]} does not match the catalog's {artifact.id[:12]}; the "
            "file was altered, so it will not be unpickled — retrain or restore it"
        )
    return artifact, joblib.load(path)
