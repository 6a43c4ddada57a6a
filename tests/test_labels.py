"""The user's own class labels, end to end: text (binary and multiclass), boolean and integers
that are not ``0..n-1``, through training (XGBoost, logistic and their soft vote), the acceptance
test, the package (ONNX and PMML), and every serving pattern — the runtime, REST
(``/v1/predict``, ``/invocations``, OIP v2), gRPC, batch, precompute and the wheel.

The synthetic credit data has 0/1 labels, which hid that XGBoost refuses anything else; these
packages relabel its ``default`` column as real tables would.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tritonclient.grpc as triton_grpc

from mlstrata.batch.precompute import precompute
from mlstrata.batch.predict import predict
from mlstrata.model.acceptance import ACCEPTANCE_KIND
from mlstrata.package.wheel import build_wheel
from mlstrata.runtime.model import LoadedModel, load
from mlstrata.runtime.signature import class_key
from mlstrata.serve.app import create_app
from mlstrata.serve.grpc_server import start_grpc_server
from mlstrata.serve.holder import ModelHolder
from mlstrata.serve.precomputed import open_precomputed
from mlstrata.workspace import Workspace

from ._packaged import Relabel, build_credit_package
from .batch._inputs import KEY, raw_csv
from .package.test_wheel import _predict_script, _python, _unpacked
from .serve.conftest import running, valid_records
from .serve.test_grpc import _inputs as grpc_inputs

pytestmark = pytest.mark.slow

RELABEL: dict[str, tuple[Relabel, list[Any]]] = {
    "text binary": (lambda t: pc.if_else(pc.equal(t["default"], 1), "yes", "no"),
                    ["no", "yes"]),
    "text multiclass": (lambda t: pc.if_else(
        pc.equal(t["default"], 1), "default",
        pc.if_else(pc.greater(t["previous_defaults"], 0), "late", "paid")),
        ["default", "late", "paid"]),
    "boolean": (lambda t: pc.equal(t["default"], 1), [False, True]),
    "integers 1 and 2": (lambda t: pc.add(t["default"], 1), [1, 2]),
}


@pytest.fixture(scope="module", params=list(RELABEL))
def labelled(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """A package trained (XGBoost, logistic, their soft vote) on relabelled data; its labels."""
    relabel, labels = RELABEL[request.param]
    root = tmp_path_factory.mktemp("labels")
    package = build_credit_package(root, "xgboost, logistic", relabel=relabel,
                                   ensembles="[voting]")
    return package, labels


def _model(labelled: tuple[Path, list[Any]]) -> tuple[LoadedModel, list[Any], list[str]]:
    package, labels = labelled
    return load(package), labels, [class_key(c) for c in labels]


def _answers_with_labels(records: list[dict[str, Any]], labels: list[Any],
                         keys: list[str]) -> None:
    """Every answer is one of the user's labels (of the user's type) with one probability per
    label, keyed as JSON spells it."""
    assert records
    for record in records:
        assert record["prediction"] in labels
        assert type(record["prediction"]) is type(labels[0])
        assert list(record["probabilities"]) == keys


def test_training_and_acceptance_keep_the_labels(labelled: tuple[Path, list[Any]]) -> None:
    package, labels = labelled
    signature = json.loads((package / "signature.json").read_text())
    assert signature["outputs"][1]["classes"] == labels
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["parity"]["label_mismatches"] == 0
    [acceptance] = Workspace(package.parents[1]).artifacts(ACCEPTANCE_KIND)
    metrics = acceptance.meta["metrics"]
    assert metrics and all(math.isfinite(value) for value in metrics.values())


def test_runtime_and_rest_fronts_answer_with_the_labels(
        labelled: tuple[Path, list[Any]]) -> None:
    model, labels, keys = _model(labelled)
    records = valid_records(labelled[0], rows=30)
    expected = model.predict_records(records).to_records()
    _answers_with_labels(expected, labels, keys)
    with running(create_app(ModelHolder(lambda: labelled[0]), max_body_bytes=200_000)) as url:
        v1 = httpx.post(f"{url}/v1/predict", json=records).json()
        assert v1["predictions"] == expected
        mlflow = httpx.post(f"{url}/invocations", json={"dataframe_records": records}).json()
        assert mlflow["predictions"] == [r["prediction"] for r in expected]
        oip = httpx.post(f"{url}/v2/models/{model.name}/infer", json=_oip(model, records)).json()
        label = next(o for o in oip["outputs"] if o["name"] == "label")
        assert label["data"] == [r["prediction"] for r in expected]


def _oip(model: LoadedModel, records: list[dict[str, Any]]) -> dict[str, Any]:
    datatypes = {"float": "FP64", "integer": "INT64", "boolean": "BOOL"}
    return {"inputs": [{"name": f.name, "shape": [len(records), 1],
                        "datatype": datatypes.get(f.logical_type, "BYTES"),
                        "data": [r[f.name] for r in records]} for f in model.signature.inputs]}


def test_grpc_answers_with_the_labels(labelled: tuple[Path, list[Any]]) -> None:
    model, labels, _ = _model(labelled)
    records = valid_records(labelled[0], rows=10)
    expected = model.predict_records(records).predictions
    server = start_grpc_server(ModelHolder(lambda: labelled[0]), port=0)
    try:
        with triton_grpc.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
            result = client.infer(model.name, grpc_inputs(model, records))
    finally:
        server.stop(grace=1)
    got = result.as_numpy("label").tolist()
    assert [g.decode() if isinstance(g, bytes) else g for g in got] == expected


def test_batch_and_precompute_store_the_labels(labelled: tuple[Path, list[Any]],
                                               tmp_path: Path) -> None:
    package, labels = labelled
    model, _, keys = _model(labelled)
    workspace = Workspace(package.parents[1])
    out = tmp_path / "scored.parquet"
    predict(model, raw_csv(package), out, keys=[KEY], workspace=workspace)
    scored = pq.read_table(out)
    assert set(scored["prediction"].to_pylist()) <= set(labels)
    assert scored.schema.field("prediction").type == pa.array(labels).type
    assert [f"probability_{k}" for k in keys] == [
        n for n in scored.column_names if n.startswith("probability_")]
    database = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    precompute(model, str(raw_csv(package)), key=KEY, db_url=database, workspace=workspace)
    store = open_precomputed(database)
    try:
        for row in scored.slice(0, 20).to_pylist():
            found = store.lookup(row[KEY])
            assert found is not None
            assert found["prediction"] == row["prediction"]
            assert type(found["prediction"]) is type(labels[0])
            assert found["probabilities"] == {k: row[f"probability_{k}"] for k in keys}
    finally:
        store.close()


def test_the_wheel_answers_with_the_labels(labelled: tuple[Path, list[Any]],
                                           tmp_path: Path) -> None:
    model, labels, keys = _model(labelled)
    records = valid_records(labelled[0], rows=5)
    site = _unpacked(build_wheel(labelled[0], tmp_path / "dist"), tmp_path / "site")
    got = _python(sys.executable, _predict_script(records), site, tmp_path)
    _answers_with_labels(got["batch"], labels, keys)
    assert got["batch"] == model.predict_records(records).to_records()

