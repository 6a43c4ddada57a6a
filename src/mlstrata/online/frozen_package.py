"""Scoring with a River package (``mlstrata online snapshot``) where a package is scored.

:func:`load_river_package` verifies the package like the lean runtime does (every file's sha256
against ``manifest.json``, refusing any flavour but ``river``), then unpickles ``model.joblib``
from the very bytes it hashed — never from a second read of the file. The result is a
:class:`~mlstrata.runtime.model.LoadedModel` whose :meth:`~RiverPackageModel.score` runs the
frozen River model instead of onnxruntime: the signature checks (contract rules, warnings,
``--strict``), batch scoring (``mlstrata predict``), rejects and the prediction log all work
unchanged; its lines go to the prediction log under the online model's name and version
(:attr:`~mlstrata.runtime.manifest.Manifest.log_identity`), as the live service's do. It lives
here, not in the runtime, because it needs River.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..predlog import ModelInfo
from ..runtime.inputs import Columns
from ..runtime.manifest import Manifest, PackageIntegrityError, verify_package
from ..runtime.model import LoadedModel, Predictions
from ..runtime.outputs import require_finite
from ..runtime.signature import SIGNATURE_FILE, Signature
from .frozen import FrozenRiverModel

__all__ = ["RIVER_FLAVOUR", "RiverPackageModel", "load_river_package"]

RIVER_FLAVOUR = "river"
MODEL_FILE = "model.joblib"


class RiverPackageModel(LoadedModel):
    """A verified River package ready to score (see the module docstring).

    It shares :class:`LoadedModel`'s checking of records and columns; only scoring differs: no
    ONNX session is opened (the base class is given :class:`_NoGraph`).
    """

    def __init__(self, directory: Path, manifest: Manifest, signature: Signature,
                 model: FrozenRiverModel, *, strict: bool = False) -> None:
        super().__init__(directory, manifest, signature, _NoGraph(), strict=strict)
        self.model = model
        name, version = manifest.log_identity
        self.log_info = dataclasses.replace(ModelInfo.of(self), name=name, version=version)
        """Logged as the online model it was frozen from (one stream with the live service)."""

    def score(self, columns: Columns) -> Predictions:
        """Run the frozen model on typed, already checked columns."""
        frame = pd.DataFrame({name: values for name, values in columns.items()})
        if hasattr(self.model, "predict_proba"):
            probabilities = self.model.predict_proba(frame)
            classes = tuple(self.model.spec.classes)
            labels = np.empty(len(frame), dtype=object)
            labels[:] = [classes[i] for i in probabilities.argmax(axis=1).tolist()]
            predictions = Predictions(labels=self.signature.user_labels(labels),
                                      probabilities=probabilities, classes=classes)
        else:
            predictions = Predictions(values=self.model.predict(frame))
        require_finite(self.signature, columns, predictions)
        return predictions


class _NoGraph:
    """Stands where the base class keeps its onnxruntime session: a graph with no outputs
    (:meth:`RiverPackageModel.score` never runs it)."""

    def get_outputs(self) -> list[Any]:
        return []


def load_river_package(directory: Path | str, *, strict: bool = False) -> RiverPackageModel:
    """Verify and load the River package in ``directory`` (``strict``: warn rules refuse too)."""
    import joblib

    path = Path(directory)
    manifest = verify_package(path, flavour=RIVER_FLAVOUR)
    data = (path / MODEL_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.files[MODEL_FILE].sha256:
        raise PackageIntegrityError(f"{path / MODEL_FILE}: changed since it was verified; it "
                                    "was not unpickled — rebuild or re-download the package")
    model: Any = joblib.load(io.BytesIO(data))
    return RiverPackageModel(path, manifest, Signature.from_file(path / SIGNATURE_FILE), model,
                             strict=strict)
