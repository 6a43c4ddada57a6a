"""PMML export: real Java converter, real PMML engine (JPMML-Evaluator), parity with the native
pipeline, and one-line refusals for what PMML cannot express."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier

from mlstrata.config import FeatureConfig
from mlstrata.data.types import ColumnInfo
from mlstrata.model._transformers import SelectAtMostK, anova_f
from mlstrata.model.candidates import CANDIDATES
from mlstrata.model.features import make_pipeline, plan_features
from mlstrata.package._pmml_steps import translate
from mlstrata.package.builder import build_package
from mlstrata.package.pmml import (
    PMML_PARITY_BOUND,
    PmmlExportError,
    export_pmml,
    measure_pmml_parity,
)
from mlstrata.workspace import Workspace

COLUMNS = [ColumnInfo("income", "float", "DOUBLE"), ColumnInfo("age", "integer", "BIGINT"),
           ColumnInfo("debt", "float", "DOUBLE"), ColumnInfo("rate", "float", "DOUBLE"),
           ColumnInfo("tenure", "float", "DOUBLE"), ColumnInfo("score", "float", "DOUBLE"),
           ColumnInfo("owner", "boolean", "BOOLEAN"), ColumnInfo("city", "text", "VARCHAR"),
           ColumnInfo("segment", "text", "VARCHAR"), ColumnInfo("employer", "text", "VARCHAR"),
           ColumnInfo("opened", "timestamp", "TIMESTAMP"), ColumnInfo("born", "date", "DATE")]
DATES = {"opened": "timestamp", "born": "date"}
EVERY_STEP = FeatureConfig(
    transforms={"income": "log", "age": "sqrt", "debt": "square", "rate": "boxcox"},
    discretize={"tenure": 4}, encodings={"segment": "ordinal", "employer": "target"},
    date_parts=["year", "month", "day", "dayofweek", "hour", "cyclical"], select_k_best=30,
    rare_level_min_frequency=0.05)


def credit_frame(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numbers (some missing), a boolean, text with rare and missing levels, two date columns
    (one missing now and then) and a binary target that depends on most of them."""
    rng = np.random.default_rng(seed)
    opened = pd.Timestamp("1965-01-01") + pd.to_timedelta(
        rng.integers(0, 60 * 365 * 86400, rows), unit="s")
    frame = pd.DataFrame({
        "income": rng.lognormal(10, 0.6, rows), "age": rng.integers(18, 80, rows),
        "debt": rng.normal(2.0, 0.8, rows), "rate": rng.uniform(1, 15, rows),
        "tenure": rng.uniform(0, 30, rows), "score": rng.normal(600, 80, rows),
        "owner": rng.random(rows) < 0.4,
        "city": rng.choice(["north", "south", "east", "west", "tiny"], rows,
                           p=[0.4, 0.3, 0.2, 0.08, 0.02]).astype(object),
        "segment": rng.choice(["a", "b", "c"], rows).astype(object),
        "employer": rng.choice([f"e{i}" for i in range(40)], rows).astype(object),
        "opened": opened,
        "born": [d.date() for d in pd.Timestamp("1950-01-01")
                 + pd.to_timedelta(rng.integers(0, 50 * 365, rows), unit="D")],
    })
    frame.loc[::11, "income"] = np.nan
    frame.loc[::13, "score"] = np.nan
    frame.loc[::17, "city"] = None
    frame.loc[5::19, "city"] = ""
    frame.loc[::23, "opened"] = pd.NaT
    logit = ((np.log(frame["income"].fillna(20000)) - 10) * 1.5 - frame["debt"]
             + (frame["city"] == "north") + frame["owner"] * 0.5 + opened.month.to_numpy() / 12
             + rng.normal(0, 1, rows))
    return frame, (logit > 0).astype(int)


def odd_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows a scoring engine meets that training did not: unseen and missing text levels, a
    missing date, missing numbers where training had none."""
    odd = frame.head(12).copy()
    odd.loc[odd.index[0], "city"] = "atlantis"
    odd.loc[odd.index[1], ["city", "segment", "employer"]] = [None, "zzz", "e999"]
    odd.loc[odd.index[2], "city"] = ""
    odd.loc[odd.index[3], "opened"] = pd.NaT
    odd.loc[odd.index[4], ["born", "opened"]] = [None, pd.Timestamp("2024-02-29 23:59:59")]
    odd.loc[odd.index[5], ["debt", "rate", "tenure", "age"]] = np.nan
    return pd.concat([frame, odd], ignore_index=True)


def fitted(estimator: Any, config: FeatureConfig, rows: int = 600,
           task: str = "binary") -> tuple[Any, pd.DataFrame, pd.Series]:
    """An mlstrata pipeline (plan_features + make_pipeline) fitted on ``credit_frame``."""
    frame, labels = credit_frame(rows)
    if task == "regression":
        labels = frame["score"].fillna(600) / 100 + frame["debt"]
    if task == "multiclass":
        labels = pd.Series(np.array(["low", "mid", "high"])[np.digitize(frame["debt"], [1.5, 2.5])])
    plan = plan_features(COLUMNS, None, config, task=task)
    pipeline = make_pipeline(plan, config, estimator).fit(frame[plan.inputs], labels)
    return pipeline, frame[plan.inputs], labels


def export_and_measure(pipeline: Any, frame: pd.DataFrame, path: Path,
                       task: str = "binary") -> dict[str, Any]:
    export_pmml(pipeline, path, list(frame.columns), "target", DATES)
    return measure_pmml_parity(path, pipeline, odd_rows(frame), task, "target", DATES)


def test_every_mlstrata_step_translates_with_parity(tmp_path: Path) -> None:
    """Log/sqrt/square/Box-Cox, bins, missing flags, one-hot with rare levels, ordinal and
    target encoding, selection, timestamp and date parts: the PMML engine scores like sklearn,
    also on unseen levels, empty text and missing dates."""
    pipeline, frame, _ = fitted(LogisticRegression(max_iter=2000), EVERY_STEP)
    parity = export_and_measure(pipeline, frame, tmp_path / "model.pmml")
    assert parity["rows"] == len(frame) + 12
    assert parity["max_abs_diff"] <= PMML_PARITY_BOUND and parity["label_mismatches"] == 0
    assert parity["passed"] and parity["evaluator"].startswith("jpmml_evaluator")
    text = (tmp_path / "model.pmml").read_text()
    assert 'dataType="dateTime"' in text and 'dataType="date"' in text


def test_translation_copies_fitted_state_and_leaves_no_mlstrata_step() -> None:
    pipeline, _, _ = fitted(LogisticRegression(max_iter=2000), EVERY_STEP)
    steps = translate(pipeline, DATES)
    modules = {type(o).__module__ for o in _walk([s for _, s in steps])}
    assert not [m for m in modules if m.startswith("mlstrata")]
    np.testing.assert_array_equal(steps[-1][1].coef_, pipeline.steps[-1][1].coef_)
    branch, native = steps[1][1].transformers_[0], pipeline.named_steps["features"].steps[0][1]
    imputer = native.transformers_[0][1].named_steps["impute"]
    fills = [alias.transformer_.expr for _, alias in branch[1].steps[0][1].transformer_list]
    assert fills[0] == f"{float(imputer.statistics_[0])!r} if pandas.isnull(X[0]) else X[0]"
    assert len(fills) == len(imputer.statistics_) == len(branch[2])


@pytest.mark.parametrize("estimator", [
    DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=0),
    HistGradientBoostingClassifier(max_iter=30, random_state=0),
    LGBMClassifier(n_estimators=30, verbose=-1, random_state=0),
    pytest.param(RandomForestClassifier(n_estimators=30, min_samples_leaf=2, random_state=0),
                 marks=pytest.mark.slow),
    pytest.param(XGBClassifier(n_estimators=50, tree_method="hist", random_state=0),
                 marks=pytest.mark.slow),
], ids=lambda e: type(e).__name__)
def test_tree_models_with_default_features_have_parity(estimator: Any, tmp_path: Path) -> None:
    pipeline, frame, _ = fitted(estimator, FeatureConfig())
    parity = export_and_measure(pipeline, frame, tmp_path / "model.pmml")
    assert parity["max_abs_diff"] <= PMML_PARITY_BOUND and parity["label_mismatches"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(("estimator", "task"), [
    (LogisticRegression(max_iter=2000), "multiclass"),
    (HistGradientBoostingClassifier(max_iter=20, random_state=0), "multiclass"),
    (VotingClassifier([("linear", LogisticRegression(max_iter=2000)),
                       ("boosted", HistGradientBoostingClassifier(max_iter=20, random_state=0))],
                      voting="soft", flatten_transform=False), "binary"),
], ids=["logistic-multiclass", "hist_gb-multiclass", "voting-binary"])
def test_multiclass_and_ensembles_have_parity(estimator: Any, task: str, tmp_path: Path) -> None:
    pipeline, frame, _ = fitted(estimator, FeatureConfig(), task=task)
    parity = export_and_measure(pipeline, frame, tmp_path / "model.pmml", task=task)
    assert parity["max_abs_diff"] <= PMML_PARITY_BOUND and parity["label_mismatches"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(("candidate", "labels"), [
    ("xgboost", ["no", "yes"]), ("xgboost", [False, True]), ("xgboost", [1, 2]),
    ("xgboost", ["high", "low", "mid"]), ("logistic", ["high", "low", "mid"]),
    ("voting", ["no", "yes"]),
], ids=lambda v: str(v))
def test_the_users_labels_have_parity(candidate: str, labels: list[Any], tmp_path: Path) -> None:
    """Text, boolean and 1/2 labels (XGBoost itself takes only 0..n-1) score the same in PMML,
    also with XGBoost inside a soft vote."""
    task = "multiclass" if len(labels) > 2 else "binary"
    xgboost = CANDIDATES["xgboost"].build(task, {"n_estimators": 30}, seed=0)
    estimator = {"xgboost": xgboost, "logistic": LogisticRegression(max_iter=2000),
                 "voting": VotingClassifier([("boosted", xgboost),
                                             ("linear", LogisticRegression(max_iter=2000))],
                                            voting="soft", flatten_transform=False)}[candidate]
    frame, codes = credit_frame(600)
    if task == "multiclass":
        codes = pd.Series(np.digitize(frame["debt"], [1.5, 2.5]))
    relabelled = pd.Series(np.asarray(labels, dtype=object)[codes]).astype(type(labels[0]))
    plan = plan_features(COLUMNS, None, FeatureConfig(), task=task)
    pipeline = make_pipeline(plan, FeatureConfig(), estimator).fit(frame[plan.inputs], relabelled)
    assert list(pipeline.classes_) == labels
    parity = export_and_measure(pipeline, frame[plan.inputs], tmp_path / "model.pmml", task=task)
    assert parity["max_abs_diff"] <= PMML_PARITY_BOUND and parity["label_mismatches"] == 0


@pytest.mark.parametrize("estimator", [Ridge(), HistGradientBoostingRegressor(max_iter=30)],
                         ids=lambda e: type(e).__name__)
def test_regression_has_parity(estimator: Any, tmp_path: Path) -> None:
    pipeline, frame, _ = fitted(estimator, EVERY_STEP.model_copy(update={"select_k_best": None}),
                                task="regression")
    parity = export_and_measure(pipeline, frame, tmp_path / "model.pmml", task="regression")
    assert parity["passed"] and parity["max_abs_diff"] <= parity["allowed_diff"]


class _Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A custom transformer no PMML converter knows."""

    def fit(self, X: Any, y: Any = None) -> _Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2.0


def test_a_step_the_converter_does_not_know_is_one_line_and_writes_nothing(
        tmp_path: Path) -> None:
    pipeline, frame, _ = fitted(LogisticRegression(max_iter=500), FeatureConfig())
    features = pipeline.named_steps["features"]
    features.transformers_[0][1].steps.append(("double", _Doubler().fit(frame)))
    with pytest.raises(PmmlExportError) as caught:
        export_pmml(pipeline, tmp_path / "model.pmml", list(frame.columns), "target", DATES)
    message = str(caught.value)
    assert "cannot be expressed in PMML" in message and "_Doubler" in message
    assert "without --pmml" in message and "\n" not in message
    assert not (tmp_path / "model.pmml").exists()


def test_an_mlstrata_step_without_translation_is_named_before_java_runs(tmp_path: Path) -> None:
    pipeline, frame, labels = fitted(LogisticRegression(max_iter=500), FeatureConfig())
    branch = pipeline.named_steps["features"].transformers_[0][1]
    selector = SelectAtMostK(anova_f, k=3).fit(branch[:-1].transform(
        pipeline.named_steps["dates"].transform(frame)[branch.feature_names_in_]), labels)
    branch.steps.append(("pick", selector))
    with pytest.raises(PmmlExportError, match=r"^step 'numeric_plain\.pick' \(SelectAtMostK\) "
                                              r"has no PMML translation; package without --pmml"):
        export_pmml(pipeline, tmp_path / "model.pmml", list(frame.columns), "target", DATES)


def test_a_model_without_target_is_refused(tmp_path: Path) -> None:
    pipeline, frame, _ = fitted(LogisticRegression(max_iter=500), FeatureConfig())
    with pytest.raises(PmmlExportError, match="classification and regression"):
        export_pmml(pipeline, tmp_path / "model.pmml", list(frame.columns), None, DATES)


def test_package_writes_model_pmml_with_parity_in_the_manifest(credit_package: Path,
                                                               tmp_path: Path) -> None:
    """The demo's pipeline (numbers, text, a date column) through ``build_package``."""
    project = tmp_path / "project"
    shutil.copytree(credit_package.parent.parent, project)
    ws = Workspace.find(project)
    result = build_package(ws, "credit.model", tmp_path / "pkg", zip_=False, pmml=True)
    manifest = json.loads((result.path / "manifest.json").read_text())
    parity = manifest["extra"]["pmml"]["parity"]
    assert "model.pmml" in manifest["files"]
    assert parity["max_abs_diff"] <= PMML_PARITY_BOUND and parity["label_mismatches"] == 0
    assert parity["rows"] == manifest["parity"]["rows"]
    assert result.to_dict()["pmml_parity"] == parity


def _walk(objects: list[Any]) -> list[Any]:
    """Every estimator inside ``objects`` (pipelines, unions, column transformers, domains)."""
    found: list[Any] = []
    for obj in objects:
        if isinstance(obj, str):
            continue
        found.append(obj)
        inner = (getattr(obj, "steps", None) or getattr(obj, "transformer_list", None)
                 or getattr(obj, "transformers_", None) or [])
        found += _walk([item[1] for item in inner])
        found += _walk(list(getattr(obj, "domains", None) or []))
    return found
