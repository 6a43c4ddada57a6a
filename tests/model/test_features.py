"""Feature plan and preprocessing pipeline: options, training-rows-only fits, names, ONNX."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from mlstrata.config import FeatureConfig
from mlstrata.data.types import ColumnInfo
from mlstrata.errors import ConfigError, DataError
from mlstrata.model.features import (
    DateExpander,
    FeaturePlan,
    build_preprocessor,
    make_pipeline,
    plan_features,
    register_onnx_converters,
)

TYPES = {"income": "float", "age": "integer", "debt": "float", "score": "float",
         "owner": "boolean", "city": "text", "grade": "text", "zip": "text",
         "opened": "date", "label": "boolean"}


def _columns(types: dict[str, str] = TYPES) -> list[ColumnInfo]:
    return [ColumnInfo(name, kind, "") for name, kind in types.items()]  # type: ignore[arg-type]


def _frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, rows),
        "age": rng.integers(18, 80, rows),
        "debt": rng.exponential(1000, rows),
        "score": rng.normal(600, 50, rows),
        "owner": pd.Series(rng.choice([True, False, None], rows), dtype=object),
        "city": pd.Series(rng.choice(["paris", "lyon", "nice", "brest", None], rows,
                                     p=[0.5, 0.3, 0.15, 0.003, 0.047]), dtype=object),
        "grade": rng.choice(["A", "B", "C"], rows),
        "zip": [f"z{i % 60}" for i in range(rows)],
        "opened": pd.Series(pd.to_datetime("2020-01-01")
                            + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D")).dt.date,
    })
    frame.loc[::9, "income"] = np.nan
    frame.loc[::13, "opened"] = None
    frame["label"] = (frame["score"] + rng.normal(0, 40, rows) > 600)
    return frame


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="label")


def _plan(config: FeatureConfig, task: str = "binary", **kwargs: Any) -> FeaturePlan:
    return plan_features(_columns(), "label", config, task=task, **kwargs)


def _fitted(config: FeatureConfig, frame: pd.DataFrame, task: str = "binary",
            **kwargs: Any) -> tuple[FeaturePlan, Any, pd.DataFrame]:
    plan = _plan(config, task, **kwargs)
    expanded = DateExpander(tuple(plan.dates), tuple(plan.date_parts)).fit_transform(
        _features(frame))
    return plan, build_preprocessor(plan, config).fit(expanded, frame["label"]), expanded


# --- the plan -----------------------------------------------------------------------------

def test_plan_sorts_columns_by_type_and_leaves_out_the_target() -> None:
    plan = _plan(FeatureConfig())
    assert plan.numeric == ["income", "age", "debt", "score", "owner"]
    assert plan.categorical == ["city", "grade", "zip"]
    assert plan.dates == ["opened"]
    assert "label" not in plan.inputs and plan.onnx
    assert json.loads(json.dumps(plan.to_dict()))["encodings"]["city"] == "onehot"
    assert ("opened_month_sin", "float") in plan.model_inputs()
    assert ("zip", "string") in plan.model_inputs()


def test_plan_excludes_dropped_columns_and_findings_with_their_reasons() -> None:
    findings = [{"column": "zip", "reason": "identifier", "score": 1.0, "detail": "unique"},
                {"column": "debt", "reason": "leakage", "score": 0.99, "detail": "AUC 0.99"},
                {"column": "score", "reason": "leakage", "score": 0.99, "detail": "AUC 0.99"}]
    plan = _plan(FeatureConfig(drop=["age"], keep=["score"]), exclusions=findings)
    assert plan.excluded == [
        {"column": "age", "reason": "dropped", "detail": "listed in model.features.drop"},
        {"column": "zip", "reason": "identifier", "detail": "unique"},
        {"column": "debt", "reason": "leakage", "detail": "AUC 0.99"}]
    assert "score" in plan.numeric and "zip" not in plan.categorical


@pytest.mark.parametrize(("task", "expected"), [("binary", "target"), ("regression", "target"),
                                                ("multiclass", "onehot"),
                                                ("clustering", "onehot")])
def test_many_levels_default_to_target_encoding_where_it_converts(task: str,
                                                                  expected: str) -> None:
    plan = plan_features(_columns(), None if task == "clustering" else "label",
                         FeatureConfig(max_onehot_levels=30), task=task,
                         levels={"zip": 60, "city": 5})
    assert plan.encodings["zip"] == expected and plan.encodings["city"] == "onehot"


def test_explicit_target_encoding_of_a_multiclass_target_is_marked_not_onnx() -> None:
    plan = _plan(FeatureConfig(encodings={"grade": "target"}), task="multiclass")
    assert plan.encodings["grade"] == "target"
    assert not plan.onnx and "grade" in plan.notes[0]


@pytest.mark.parametrize(("config", "message"), [
    (FeatureConfig(drop=["incme"]),
     r"model.features.drop names 'incme', which is not a feature column; did you mean income"),
    (FeatureConfig(keep=["label"]), r"model.features.keep names 'label'"),
    (FeatureConfig(transforms={"city": "log"}),
     r"model.features.transforms.city: 'city' is text, but transforms applies to numeric"),
    (FeatureConfig(discretize={"opened": 4}),
     r"model.features.discretize.opened: 'opened' is date"),
    (FeatureConfig(encodings={"age": "ordinal"}),
     r"model.features.encodings.age: 'age' is integer, but encodings applies to text"),
])
def test_config_mistakes_name_the_key_and_column(config: FeatureConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _plan(config)


def test_target_encoding_without_a_target_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"encodings.city: target encoding needs a target"):
        plan_features(_columns(), None, FeatureConfig(encodings={"city": "target"}),
                      task="clustering")


def test_no_feature_left_is_an_error() -> None:
    with pytest.raises(DataError, match="no feature column is left"):
        plan_features(_columns({"a": "float", "y": "float"}), "y", FeatureConfig(drop=["a"]))


# --- the pipeline -------------------------------------------------------------------------

def test_pipeline_steps_and_a_fitted_model_on_raw_columns() -> None:
    frame = _frame()
    plan = _plan(FeatureConfig())
    pipeline = make_pipeline(plan, FeatureConfig(), LogisticRegression(max_iter=500))
    assert [name for name, _ in pipeline.steps] == ["dates", "features", "model"]
    pipeline.fit(_features(frame), frame["label"])
    assert pipeline.score(_features(frame), frame["label"]) > 0.7
    again = pickle.loads(pickle.dumps(clone(pipeline).fit(_features(frame), frame["label"])))
    assert np.allclose(again.predict_proba(_features(frame)),
                       pipeline.predict_proba(_features(frame)))
    no_dates = _plan(FeatureConfig(drop=["opened"]))
    steps = make_pipeline(no_dates, FeatureConfig(), LogisticRegression()).steps
    assert [name for name, _ in steps] == ["features", "model"]


def test_statistics_come_from_the_training_rows_only() -> None:
    frame = _frame()
    train, validation = frame.iloc[:300], frame.iloc[300:].copy()
    validation["score"] += 1000.0  # validation rows must not move anything that was learned
    config = FeatureConfig(missing_indicators=False)
    plan = _plan(config)
    pipeline = make_pipeline(plan, config, LogisticRegression(max_iter=500))
    pipeline.fit(_features(train), train["label"])
    plain = pipeline.named_steps["features"].named_transformers_["numeric_plain"]
    position = plain.feature_names_in_.tolist().index("score")
    assert plain.named_steps["scale"].mean_[position] == pytest.approx(train["score"].mean())
    income = plain.feature_names_in_.tolist().index("income")
    assert plain.named_steps["impute"].statistics_[income] == train["income"].median()
    scaled = pipeline[:-1].transform(_features(validation))
    assert scaled[:, position].mean() > 10  # far from 0: scaled with the training mean


@pytest.mark.parametrize("scaling", ["standard", "minmax", "robust", "none"])
def test_scaling_options(scaling: str) -> None:
    frame = _frame()
    plan, fitted, expanded = _fitted(FeatureConfig(scaling=scaling), frame)  # type: ignore[arg-type]
    names = fitted.get_feature_names_out().tolist()
    score = fitted.transform(expanded)[:, names.index("score")]
    expected = {"standard": (score.mean(), 0.0), "minmax": (score.min(), 0.0),
                "robust": (np.median(score), 0.0), "none": (score.mean(), frame.score.mean())}
    assert expected[scaling][0] == pytest.approx(expected[scaling][1], abs=1e-9)
    if scaling == "minmax":
        assert score.max() == pytest.approx(1.0)


@pytest.mark.parametrize(("transform", "function"), [
    ("log", lambda v: np.log1p(np.maximum(v, 0))),
    ("sqrt", lambda v: np.sqrt(np.maximum(v, 0))),
    ("square", lambda v: v * v),
])
def test_math_transforms_before_scaling(transform: str, function: Any) -> None:
    frame = _frame()
    config = FeatureConfig(transforms={"debt": transform}, scaling="none")  # type: ignore[dict-item]
    _, fitted, expanded = _fitted(config, frame)
    names = fitted.get_feature_names_out().tolist()
    assert np.allclose(fitted.transform(expanded)[:, names.index("debt")],
                       function(frame["debt"].to_numpy()))


def test_box_cox_makes_a_skewed_column_symmetric_and_refuses_non_positive_values() -> None:
    frame = _frame()
    _, fitted, expanded = _fitted(FeatureConfig(transforms={"debt": "boxcox"}), frame)
    debt = fitted.transform(expanded)[:, fitted.get_feature_names_out().tolist().index("debt")]
    skew = float(np.mean(((debt - debt.mean()) / debt.std()) ** 3))
    assert abs(skew) < 0.2 and abs(debt.mean()) < 1e-9
    frame.loc[0, "debt"] = -1.0
    with pytest.raises(DataError, match=r"boxcox needs strictly positive values but 'debt'"):
        _fitted(FeatureConfig(transforms={"debt": "boxcox"}), frame)


def test_discretize_gives_one_column_per_bin() -> None:
    _, fitted, expanded = _fitted(FeatureConfig(discretize={"age": 4}), _frame())
    names = fitted.get_feature_names_out().tolist()
    bins = [n for n in names if n.startswith("age_")]
    assert len(bins) == 4
    assert np.all(fitted.transform(expanded)[:, [names.index(b) for b in bins]].sum(axis=1) == 1)


def test_one_hot_groups_rare_missing_and_unseen_levels() -> None:
    frame = _frame()
    _, fitted, expanded = _fitted(FeatureConfig(rare_level_min_frequency=0.01), frame)
    names = fitted.get_feature_names_out().tolist()
    assert {"city_paris", "city_(missing)", "city_(other)"} <= set(names)
    assert "city_brest" not in names  # rarer than 1% of the rows
    new = expanded.iloc[:2].copy()
    new["city"] = ["marseille", None]
    row = fitted.transform(new)
    assert row[0, names.index("city_(other)")] == 1.0
    assert row[1, names.index("city_(missing)")] == 1.0


def test_one_hot_keeps_at_most_max_onehot_levels_columns() -> None:
    _, fitted, _ = _fitted(FeatureConfig(max_onehot_levels=10, encodings={"zip": "onehot"}),
                           _frame())
    zips = [n for n in fitted.get_feature_names_out() if n.startswith("zip_")]
    assert len(zips) == 10 and "zip_(other)" in zips


def test_ordinal_and_target_encodings_give_one_column_each() -> None:
    frame = _frame()
    config = FeatureConfig(encodings={"grade": "ordinal", "zip": "target"})
    _, fitted, expanded = _fitted(config, frame)
    names = fitted.get_feature_names_out().tolist()
    out = fitted.transform(expanded)
    assert sorted(set(out[:, names.index("grade")])) == [0.0, 1.0, 2.0]
    unseen = expanded.iloc[:1].copy()
    unseen["grade"] = "Z"
    assert fitted.transform(unseen)[0, names.index("grade")] == -1.0
    target_encoded = out[:, names.index("zip")]
    assert 0.0 <= target_encoded.min() and target_encoded.max() <= 1.0  # shares of the label
    assert len(set(target_encoded)) > 10


def test_missing_indicators_only_for_columns_with_missing_values() -> None:
    _, fitted, _ = _fitted(FeatureConfig(missing_indicators=True), _frame())
    flags = sorted(n for n in fitted.get_feature_names_out() if n.endswith("__missing"))
    assert flags == sorted(["income__missing", "owner__missing"] + [
        f"opened_{k}__missing" for k in ("year", "month", "month_sin", "month_cos",
                                         "dayofweek", "dow_sin", "dow_cos")])
    _, without, _ = _fitted(FeatureConfig(missing_indicators=False), _frame())
    assert not any(n.endswith("__missing") for n in without.get_feature_names_out())


@pytest.mark.parametrize("k", [3, 500])
def test_select_k_best_keeps_at_most_k_features(k: int) -> None:
    _, fitted, expanded = _fitted(FeatureConfig(select_k_best=k), _frame())
    _, everything, _ = _fitted(FeatureConfig(), _frame())
    kept = fitted.get_feature_names_out().tolist()
    assert len(kept) == min(k, len(everything.get_feature_names_out()))
    assert fitted.transform(expanded).shape[1] == len(kept)
    if k == 3:
        assert "score" in kept  # the one informative column


def test_date_expander_replaces_dates_in_place_and_names_its_output() -> None:
    frame = _features(_frame())
    expander = DateExpander(("opened",), ("year", "hour")).fit(frame)
    out = expander.transform(frame)
    names = expander.get_feature_names_out().tolist()
    assert names == list(out.columns)
    assert names[names.index("zip") + 1:] == ["opened_year", "opened_hour"]
    assert out["opened_year"].isna().sum() == frame["opened"].isna().sum()
    with pytest.raises(DataError, match=r"date column\(s\) \['opened'\] are missing"):
        expander.transform(frame.drop(columns="opened"))


# --- ONNX ---------------------------------------------------------------------------------

def _onnx_feed(plan: FeaturePlan, frame: pd.DataFrame, dtype: Any) -> dict[str, np.ndarray]:
    """What the serving runtime feeds: floats with NaN, text with "" for missing."""
    feed = {}
    for name, kind in plan.model_inputs():
        column = frame[[name]]
        if kind == "float":
            feed[name] = column.to_numpy(dtype=dtype, na_value=np.nan)
        else:
            feed[name] = column.astype(object).where(column.notna(), "").to_numpy().astype(str)
    return feed


@pytest.mark.parametrize("precision", ["float", "double"])
def test_fitted_preprocessor_converts_to_onnx_and_matches(precision: str) -> None:
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    frame = _frame()
    config = FeatureConfig(
        transforms={"income": "log", "debt": "boxcox", "age": "sqrt", "score": "square"},
        discretize={"age": 3}, encodings={"grade": "ordinal", "zip": "target"},
        select_k_best=20)
    plan, fitted, expanded = _fitted(config, frame.iloc[:300])
    serving = DateExpander(tuple(plan.dates), tuple(plan.date_parts)).fit_transform(
        _features(frame.iloc[300:])).reset_index(drop=True)
    serving.loc[0, "city"] = "marseille"  # unseen level
    serving.loc[1, ["city", "income"]] = [None, np.nan]
    numeric, np_type = ((FloatTensorType, np.float32) if precision == "float"
                        else (DoubleTensorType, np.float64))
    register_onnx_converters()
    inputs = [(name, numeric([None, 1]) if kind == "float" else StringTensorType([None, 1]))
              for name, kind in plan.model_inputs()]
    model = to_onnx(fitted, initial_types=inputs, target_opset=18)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for rows in (expanded, serving):
        got = session.run(None, _onnx_feed(plan, rows, np_type))[0]
        assert got.shape == (len(rows), len(fitted.get_feature_names_out()))
        assert np.abs(got - fitted.transform(rows)).max() < 1e-4
