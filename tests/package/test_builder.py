"""Building a package from a stored model: files, manifest, MLflow, contract, atomicity."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlstrata.package.builder import build_package
from mlstrata.package.onnx_export import OnnxConversionError
from mlstrata.runtime.manifest import verify_package
from mlstrata.workspace import Workspace

from ._pipelines import stored_model
from .test_onnx_export import _NoConverter

CONTRACT = """version: 1
dataset: credit
columns:
  income: {type: float, nullable: false, min: 0}
  age: {type: integer, min: 18, max: 120, severity: {max: warn}}
  debt: {type: float}
  city: {type: text, allowed: [north, south, east], strict: true}
  default_flag: {type: boolean}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path]:
    ws = Workspace.init(tmp_path_factory.mktemp("ws") / "project")
    (ws.root / "contracts").mkdir()
    (ws.root / "contracts" / "credit.yaml").write_text(CONTRACT)
    model = stored_model(ws, LogisticRegression(max_iter=500))
    result = build_package(ws, model.ref)
    return ws, result.path


def test_package_holds_every_file_and_verifies(built: tuple[Workspace, Path]) -> None:
    ws, path = built
    assert path == ws.root / "packages" / "credit-model-1"
    manifest = verify_package(path)
    expected = {"model.onnx", "model.joblib", "signature.json", "contract.yaml", "MLmodel",
                "model_card.md", "model_card.html", "python_model.pkl"}
    assert expected <= set(manifest.files)
    assert manifest.model_name == "credit-model" and manifest.task == "binary"
    assert manifest.parity["max_abs_diff"] <= 1e-4 and manifest.parity["rows"] == 600
    assert manifest.float_precision == "double" and manifest.opset["ai.onnx.ml"] == 3
    assert {"scikit-learn", "onnxruntime", "skl2onnx"} <= set(manifest.libraries)
    assert manifest.lineage["dataset"] == manifest.lineage.get("dataset")
    assert not list((ws.store / "tmp").glob("stage-*"))


def test_zip_holds_the_same_files(built: tuple[Workspace, Path]) -> None:
    _, path = built
    with zipfile.ZipFile(path.with_name(path.name + ".zip")) as archive:
        names = {n.split("/", 1)[1] for n in archive.namelist() if not n.endswith("/")}
    assert names == {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def test_signature_carries_the_contract(built: tuple[Workspace, Path]) -> None:
    _, path = built
    signature = json.loads((path / "signature.json").read_text())
    inputs = {i["name"]: i for i in signature["inputs"]}
    assert inputs["city"]["allowed"] == ["north", "south", "east"] and inputs["city"]["strict"]
    assert inputs["income"]["nullable"] is False and inputs["age"]["max"] == 120
    assert inputs["age"]["severity"] == {"type": "error", "min": "error", "max": "warn"}
    assert inputs["city"]["severity"] == {"type": "error", "allowed": "error"}
    assert inputs["income"]["severity"] == {"type": "error", "not_null": "error", "min": "error"}
    assert signature["outputs"][1]["classes"] == [False, True]
    assert signature["dates"] == []


def test_signature_carries_the_training_ranges_beside_the_contracts_rules(
        built: tuple[Workspace, Path]) -> None:
    """The contract's rules stay as written (``debt`` has no range: none is added); every number
    also carries the range of the training rows, which names the fields of a NaN answer."""
    _, path = built
    inputs = {i["name"]: i for i in json.loads((path / "signature.json").read_text())["inputs"]}
    assert (inputs["age"]["min"], inputs["age"]["max"]) == (18, 120)
    assert 18 <= inputs["age"]["training_min"] < inputs["age"]["training_max"] <= 77
    assert "min" not in inputs["debt"] and "max" not in inputs["debt"]
    assert inputs["debt"]["training_min"] < inputs["debt"]["training_max"]
    assert "training_min" not in inputs["city"]


def test_model_card_shows_lineage_metrics_and_parity(built: tuple[Workspace, Path]) -> None:
    _, path = built
    card = (path / "model_card.md").read_text()
    assert "## Data lineage" in card and "dataset credit@1" in card
    assert "roc_auc" in card and "ONNX parity" in card and "No acceptance test" in card
    assert "<table>" in (path / "model_card.html").read_text()


def test_mlflow_pyfunc_loads_and_predicts(built: tuple[Workspace, Path]) -> None:
    _, path = built
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(path))
        frame = pd.DataFrame({"income": [100.0, 14000.0], "age": [30, 50],
                              "debt": [None, 10.0], "city": ["north", "east"]})
        predictions = model.predict(frame)
    assert len(predictions) == 2 and set(map(bool, predictions)) <= {True, False}


def test_unconvertible_model_leaves_nothing_behind(workspace: Workspace) -> None:
    model = stored_model(workspace, _NoConverter(), rows=200)
    with pytest.raises(OnnxConversionError, match="_NoConverter"):
        build_package(workspace, model.ref)
    assert not (workspace.root / "packages").exists()
    assert not list((workspace.store / "tmp").glob("stage-*"))


def test_rebuild_replaces_and_custom_out(built: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, _ = built
    result = build_package(ws, "credit-model", tmp_path / "out" / "pkg", zip_=False)
    assert result.zip_path is None and not (tmp_path / "out" / "pkg.zip").exists()
    again = build_package(ws, "credit-model", tmp_path / "out" / "pkg", zip_=False)
    assert verify_package(again.path).model_id == result.manifest.model_id
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pkg"]


def test_packaging_shows_no_mlflow_warning(built: tuple[Workspace, Path], tmp_path: Path) -> None:
    """MLflow asks for type hints on ``predict`` (and re-enables its warnings to say so)."""
    ws, _ = built
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        build_package(ws, "credit-model", tmp_path / "pkg", zip_=False)
    assert not [w for w in shown if "type hints" in str(w.message)]


def test_mlflow_loader_refuses_an_altered_native_model(
        built: tuple[Workspace, Path], tmp_path: Path) -> None:
    import shutil

    _, path = built
    copy = tmp_path / "tampered"
    shutil.copytree(path, copy)
    with (copy / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.pyfunc

        with pytest.raises(Exception, match="refusing to unpickle"):
            mlflow.pyfunc.load_model(str(copy))
