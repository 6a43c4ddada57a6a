"""Loading a real package with the lean runtime: integrity, validation, native parity."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from mlstrata.runtime.inputs import InvalidInputError
from mlstrata.runtime.manifest import PackageIntegrityError
from mlstrata.runtime.model import load
from mlstrata.runtime.signature import SignatureError


def _records(package: Path, rows: int = 50) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Valid records from the project's own cleaned data, and the same rows as a frame."""
    signature = json.loads((package / "signature.json").read_text())
    names = [field["name"] for field in signature["inputs"]]
    frame = pd.read_csv(package.parent.parent / "data" / "credit.csv",
                        dtype={"postal_code": str}).dropna(subset=names).head(rows)
    return json.loads(frame[names].to_json(orient="records", date_format="iso")), frame[names]


def test_predictions_match_the_native_pipeline(credit_package: Path) -> None:
    model = load(credit_package)
    records, frame = _records(credit_package)
    predictions = model.predict_records(records)
    native = joblib.load(credit_package / "model.joblib")
    frame = frame.assign(application_date=pd.to_datetime(frame["application_date"]))
    expected = native.predict_proba(frame)
    assert predictions.probabilities is not None
    assert np.abs(predictions.probabilities - expected).max() < 1e-6
    assert predictions.labels is not None
    assert predictions.labels.tolist() == native.predict(frame).tolist()
    assert list(predictions.classes) == [0, 1]
    first = predictions.to_records()[0]
    assert set(first) == {"prediction", "probabilities"}
    assert abs(sum(first["probabilities"].values()) - 1.0) < 1e-9


def test_model_names_itself_from_the_manifest(credit_package: Path) -> None:
    model = load(credit_package, threads=1)
    assert (model.name, model.version) == ("credit.model", 1)
    assert model.signature.task == "binary"


@pytest.mark.parametrize(("change", "message"), [
    ({"age": "forty"}, "record 0, field 'age': expected a number, got text 'forty'"),
    ({"term_months": 18}, "record 0, field 'term_months': 18 is not an allowed value"),
    ({"loan_amount": 10.5}, "record 0, field 'loan_amount': expected an integer, got 10.5"),
    ({"purpose": None}, "record 0, field 'purpose': required"),
    ({"application_date": "15/03/2024"}, "record 0, field 'application_date': '15/03/2024' is "
                                         "not an ISO 8601 date"),
    ({"home_ownership": 3}, "record 0, field 'home_ownership': expected text, got number 3"),
])
def test_a_bad_value_is_named_by_record_and_field(credit_package: Path, change: dict[str, Any],
                                                  message: str) -> None:
    model = load(credit_package)
    records, _ = _records(credit_package, 1)
    with pytest.raises(InvalidInputError) as caught:
        model.predict_records([{**records[0], **change}])
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_missing_field_is_an_error_even_when_the_rest_is_fine(credit_package: Path) -> None:
    model = load(credit_package)
    records, _ = _records(credit_package, 2)
    del records[1]["income"]
    with pytest.raises(InvalidInputError, match="record 1, field 'income': missing"):
        model.predict_records(records)


def test_every_problem_is_kept_for_batch_rejects(credit_package: Path) -> None:
    model = load(credit_package)
    records, _ = _records(credit_package, 5)
    records[1]["term_months"] = 18
    records[3]["age"] = "old"
    records[4]["region"] = "atlantis"  # a warning: not among the problems that refuse
    with pytest.raises(InvalidInputError) as caught:
        model.predict_records(records)
    assert [(p.row, p.field, p.rule) for p in caught.value.problems] == [
        (1, "term_months", "allowed"), (3, "age", "type")]


def test_values_breaking_warn_rules_are_scored_with_warnings(credit_package: Path) -> None:
    """The inferred contract's ranges and category sets warn: an unseen region and an interest
    rate above the observed maximum are scored, and say so; the same values refuse when the
    model is loaded strict (``mlstrata serve --strict``)."""
    model = load(credit_package)
    records, _ = _records(credit_package, 3)
    records[1] = {**records[1], "region": "atlantis", "interest_rate": 99.0}
    predictions = model.predict_records(records)
    assert len(predictions) == 3
    assert predictions.warnings[0] == predictions.warnings[2] == ()
    assert [(w.field, w.rule) for w in predictions.warnings[1]] == [
        ("interest_rate", "max"), ("region", "allowed")]
    assert predictions.warnings[1][0].message.startswith("99 is above the maximum")
    assert predictions.warning_count == 2
    shown = predictions.to_records()
    assert "warnings" not in shown[0] and "warnings" not in shown[2]
    assert shown[1]["warnings"][1] == {"field": "region", "rule": "allowed",
                                       "message": predictions.warnings[1][1].message}
    clean = model.predict_records([records[0], records[2]])
    assert predictions.take(np.array([0, 2])).predictions == clean.predictions
    assert predictions.rows(1, 2).warnings == (predictions.warnings[1],)
    strict = load(credit_package, strict=True)
    with pytest.raises(InvalidInputError) as caught:
        strict.predict_records(records)
    assert [(p.row, p.field, p.rule) for p in caught.value.problems] == [
        (1, "interest_rate", "max"), (1, "region", "allowed")]
    assert "only warns, but this server is strict" in str(caught.value)


def test_columns_with_numbers_as_text_are_accepted_from_text_sources(credit_package: Path) -> None:
    model = load(credit_package)
    records, _ = _records(credit_package, 3)
    lists = {name: [str(r[name]) for r in records] for name in model.signature.input_names}
    from_text = model.predict_columns(lists, text_source=True)
    assert from_text.predictions == model.predict_records(records).predictions
    with pytest.raises(InvalidInputError, match="expected a number, got text"):
        model.predict_columns(lists)


def test_one_corrupted_byte_in_the_graph_is_refused(credit_package: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(credit_package, tmp_path / "package")
    graph = bytearray((copy / "model.onnx").read_bytes())
    graph[len(graph) // 2] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(graph))
    with pytest.raises(PackageIntegrityError, match=r"model.onnx: sha256 .* does not match"):
        load(copy)


def test_a_broken_signature_is_refused_by_name(credit_package: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(credit_package, tmp_path / "package")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["signature.json"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "signature.json").write_text('{"inputs": []}')
    with pytest.raises(SignatureError, match="signature.json: not a valid signature"):
        load(copy)


def test_the_runtime_imports_no_training_libraries(credit_package: Path) -> None:
    code = ("import sys, json; from mlstrata.runtime.model import load; "
            f"m = load({str(credit_package)!r}); "
            "heavy = ('sklearn', 'pandas', 'mlflow', 'duckdb', 'skl2onnx', 'pyarrow', 'scipy'); "
            "print(json.dumps([name for name in heavy if name in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []
