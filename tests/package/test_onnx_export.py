"""ONNX export: parity with the native pipeline for each model family, and clear failures."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, TargetEncoder
from xgboost import XGBClassifier

from mlstrata.package.onnx_export import (
    PARITY_BOUND,
    OnnxConversionError,
    Parity,
    ParityError,
    measure_parity,
    onnx_feeds,
    onnx_problem,
    to_onnx,
)

from ._pipelines import frame, pipeline


@pytest.mark.parametrize("estimator", [
    LogisticRegression(max_iter=500),
    HistGradientBoostingClassifier(max_iter=30, random_state=0),
    RandomForestClassifier(n_estimators=10, random_state=0),
    LGBMClassifier(n_estimators=20, verbose=-1),
    XGBClassifier(n_estimators=20),
], ids=lambda e: type(e).__name__)
def test_classifier_pipelines_convert_in_double_with_parity(estimator: object) -> None:
    features, labels = frame(800)
    fitted = pipeline(estimator).fit(features, labels)
    export = to_onnx(fitted, features.head(20), "binary")
    parity = measure_parity(fitted, export.model_bytes, features, "binary")
    assert export.float_precision == "double"
    assert parity.max_abs_diff_scores <= PARITY_BOUND and parity.label_mismatches == 0
    assert parity.rows == 800
    assert [o["name"] for o in export.outputs] == ["label", "probabilities"]
    assert export.outputs[1]["classes"] == [0, 1]
    types = {s["name"]: s["onnx_type"] for s in export.input_schema}
    assert types == {"income": "double", "age": "double", "debt": "double", "city": "string"}


@pytest.mark.slow
def test_hist_gradient_boosting_on_10k_rows_has_no_float32_trap() -> None:
    """The issue's trap: float32 inputs moved probabilities by 0.03 and flipped a label."""
    features, labels = frame(10_000, seed=1)
    fitted = pipeline(HistGradientBoostingClassifier(max_iter=100, random_state=0)).fit(
        features, labels)
    export = to_onnx(fitted, features.head(20), "binary")
    parity = measure_parity(fitted, export.model_bytes, features, "binary")
    assert parity.rows == 10_000
    assert parity.max_abs_diff_scores <= 1e-4
    assert parity.label_mismatches == 0


def test_columns_joined_in_a_double_graph_are_not_rounded_to_float32() -> None:
    """skl2onnx joins a scaler's columns with FeatureVectorizer, whose output is float32."""
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": 1e8 + rng.random(200), "b": rng.random(200)})
    target = features["a"] - 1e8 + features["b"]
    fitted = Pipeline([("scale", StandardScaler()), ("model", LinearRegression())]).fit(
        features, target)
    export = to_onnx(fitted, features.head(5), "regression")
    parity = measure_parity(fitted, export.model_bytes, features, "regression")
    assert export.float_precision == "double"
    assert parity.max_abs_diff_scores < 1e-6  # float32 rounds 1e8 + x to a multiple of 8


def test_target_encodings_stay_double() -> None:
    """skl2onnx looks target encodings up as float32; a tree on them then flips rows."""
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(30)], 400)})
    target = rng.normal(size=400) * 1000 + 0.123456789
    fitted = Pipeline([("encode", TargetEncoder(target_type="continuous")),
                       ("model", LinearRegression())]).fit(features, target)
    export = to_onnx(fitted, features.head(5), "regression")
    parity = measure_parity(fitted, export.model_bytes, features.head(50).assign(
        city=["c0", "unseen", *features.city.head(48)]), "regression")
    assert export.float_precision == "double"
    assert parity.max_abs_diff_scores < 1e-9  # float32 encodings: about 1e-5 here


def test_regression_output_is_named_value_and_agrees() -> None:
    features, _ = frame(600)
    target = np.log(features["income"]) * 100
    fitted = pipeline(HistGradientBoostingRegressor(max_iter=30)).fit(features, target)
    export = to_onnx(fitted, features.head(10), "regression")
    parity = measure_parity(fitted, export.model_bytes, features, "regression")
    assert [o["name"] for o in export.outputs] == ["value"]
    assert parity.passed
    session = ort.InferenceSession(export.model_bytes, providers=["CPUExecutionProvider"])
    (value,) = session.run(["value"], onnx_feeds(features.head(3), export.input_schema))
    assert value.shape == (3, 1)


def test_missing_text_and_numbers_are_fed_safely() -> None:
    features, labels = frame(300)
    fitted = pipeline(LogisticRegression()).fit(features, labels)
    export = to_onnx(fitted, features.head(5), "binary")
    probe = features.head(2).copy()
    probe.loc[probe.index[0], "city"] = None
    probe.loc[probe.index[1], "debt"] = np.nan
    feeds = onnx_feeds(probe, export.input_schema)
    assert feeds["city"][0, 0] == "" and np.isnan(feeds["debt"][1, 0])
    session = ort.InferenceSession(export.model_bytes, providers=["CPUExecutionProvider"])
    label, probabilities = session.run(None, feeds)
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1.0)


def test_unconvertible_estimator_is_named_with_the_fix() -> None:
    features, labels = frame(200)
    fitted = pipeline(_NoConverter()).fit(features, labels)
    with pytest.raises(OnnxConversionError) as error:
        to_onnx(fitted, features.head(5), "binary")
    message = str(error.value)
    assert "_NoConverter" in message and "require_onnx: false" in message
    assert "\n" not in message


def test_onnx_problem_says_why_a_pipeline_cannot_be_packaged() -> None:
    features, labels = frame(200)
    unconvertible = pipeline(_NoConverter()).fit(features, labels)
    assert "_NoConverter" in str(onnx_problem(unconvertible, features, "binary"))
    convertible = pipeline(LogisticRegression(max_iter=500)).fit(features, labels)
    assert onnx_problem(convertible, features, "binary") is None


def test_parity_error_names_the_model_and_the_figures() -> None:
    parity = Parity(0.03, 1, 10_000)
    assert not parity.passed
    with pytest.raises(ParityError, match=r"credit@2: ONNX differs .* 0\.03 .* 1 flipped labels"):
        parity.require("credit@2")


class _NoConverter(LogisticRegression):
    """A classifier subclass skl2onnx has no converter for."""


def test_columns_named_as_real_tables_name_them_feed_the_graph() -> None:
    """skl2onnx renames inputs to identifiers (``od280/od315`` → ``od280_od315``); the graph
    keeps the column names, which the runtime and parity feed it by."""
    names = {"income": "net income", "age": "od280/od315", "debt": "año-1", "city": "x.y"}
    data, y = frame()
    renamed = data.rename(columns=names)
    odd = pipeline(LogisticRegression(max_iter=500))
    odd.steps[0][1].transformers = [(n, t, [names[c] for c in cols])
                                    for n, t, cols in odd.steps[0][1].transformers]
    odd.fit(renamed, y)
    export = to_onnx(odd, renamed.head(20), "binary")
    session = ort.InferenceSession(export.model_bytes)
    assert [i.name for i in session.get_inputs()] == list(names.values())
    assert measure_parity(odd, export.model_bytes, renamed, "binary").passed
