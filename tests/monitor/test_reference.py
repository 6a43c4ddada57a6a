"""``mlstrata package`` stores the reference monitoring compares with, hashed like every file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstrata.monitor.reference import PresenceSketch, load_reference
from mlstrata.monitor.sketch import CategorySketch, NumberSketch
from mlstrata.runtime.manifest import verify_package
from mlstrata.runtime.signature import Signature


def test_the_package_carries_its_reference(credit_package: Path) -> None:
    manifest = verify_package(credit_package)
    assert "reference.json" in manifest.files
    reference = load_reference(credit_package)
    signature = Signature.from_file(credit_package / "signature.json")

    assert list(reference.inputs) == signature.input_names
    for field in signature.inputs:
        sketch = reference.inputs[field.name]
        expected = {"integer": NumberSketch, "float": NumberSketch, "text": CategorySketch,
                    "boolean": CategorySketch, "date": PresenceSketch,
                    "timestamp": PresenceSketch}[field.logical_type]
        assert isinstance(sketch, expected), field.name
        assert sketch.rows + sketch.missing == reference.training_rows
    age = reference.inputs["age"]
    assert isinstance(age, NumberSketch) and len(age.bin_edges) <= 9
    assert age.bin_counts().sum() == age.rows and set(age.bin_edges) <= set(age.edges)


def test_the_reference_holds_validation_predictions_and_metrics(credit_package: Path) -> None:
    reference = load_reference(credit_package)
    assert reference.task == "binary" and reference.classes == ["0", "1"]
    predictions = reference.predictions
    assert predictions.labels is not None and set(predictions.labels.levels) <= {"0", "1"}
    assert predictions.score is not None and predictions.score_name == "probability of 1"
    validation = reference.validation
    assert validation is not None and validation.rows == predictions.rows
    assert validation.threshold == 0.5 and validation.resamples == 200
    auc = validation.metrics["roc_auc"]
    assert auc.low is not None and auc.high is not None
    assert auc.low <= auc.value <= auc.high and auc.high - auc.low < 0.3


def test_the_reference_is_plain_json(credit_package: Path) -> None:
    data = json.loads((credit_package / "reference.json").read_text())
    assert data["format_version"] == 1 and data["model"] == "credit.model"
    age = data["inputs"]["age"]
    assert age["kind"] == "number" and len(age["bins"]["edges"]) + 1 == len(age["bins"]["counts"])
    assert data["validation"]["metrics"]["roc_auc"]["ci95"][0] is not None


def test_a_newer_reference_is_refused_in_one_line(credit_package: Path, tmp_path: Path) -> None:
    import shutil

    from mlstrata.errors import DataError

    copy = tmp_path / "pkg"
    shutil.copytree(credit_package, copy)
    data = json.loads((copy / "reference.json").read_text())
    (copy / "reference.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(DataError, match="format_version 99 is newer"):
        load_reference(copy)
