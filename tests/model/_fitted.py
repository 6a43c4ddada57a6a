"""Small fitted models in a real workspace, for the evaluation, acceptance and registry tests.

Synthetic credit data (1,500 rows: 1,200 training side, 300 sealed) is ingested, split, and a
logistic-regression or ridge pipeline with simple preprocessing is stored as a ``model`` artifact
carrying the meta that ``mlstrata.model.artifact`` documents.
"""

from __future__ import annotations

import shutil
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from mlstrata import api
from mlstrata.data.synth import write_credit
from mlstrata.model.artifact import store_model
from mlstrata.model.data import load_training_data
from mlstrata.workspace import Artifact, Workspace

NUMERIC = ["age", "income", "employment_years", "loan_amount", "term_months", "interest_rate",
           "debt_to_income", "num_credit_lines", "previous_defaults"]
CATEGORICAL = ["home_ownership", "purpose"]


def credit_workspace(root: Path, target: str = "default", split: bool = True) -> Workspace:
    """A workspace with dataset ``credit`` (target ``target``) and, by default, its split."""
    ws = Workspace.init(root / "project")
    source = write_credit(root / "credit.parquet", 1500, 0)
    api.ingest(source, "credit", target=target, workspace=ws)
    if split:
        api.split("credit", val=0.25, workspace=ws)
    return ws


def _pipeline(estimator: Any, numeric: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])
    return Pipeline([("prep", prep), ("model", estimator)])


def fit_model(
    ws: Workspace, cv_mean: float | None = None, name: str = "credit-model", strength: float = 1.0
) -> Artifact:
    """Fit logistic regression (binary target) or ridge (regression) on the training rows.

    The model is stored as ``name``; ``cv_mean`` fakes the cross-validated primary metric and
    ``strength`` (the regularization) makes a different model with the same data.
    """
    from sklearn.linear_model import LogisticRegression, Ridge

    data = load_training_data(ws, "credit")
    assert data.target is not None
    numeric = [c for c in NUMERIC if c != data.target]
    inputs = numeric + CATEGORICAL
    binary = data.task == "binary"
    pipeline = _pipeline(LogisticRegression(C=1 / strength, max_iter=500) if binary
                         else Ridge(alpha=strength), numeric)
    pipeline.fit(data.features("train")[inputs], data.labels("train"))
    metric = "roc_auc" if binary else "rmse"
    types = {c.name: c.type for c in data.columns}
    split = data.split.id if data.split is not None else None
    meta = {
        "task": data.task, "target": data.target, "candidate": "logistic" if binary else "ridge",
        "params": {}, "metric": metric,
        "cv": {metric: {"mean": cv_mean, "std": 0.01}} if cv_mean is not None else {},
        "inputs": [{"name": n, "type": types[n]} for n in inputs],
        "classes": [0, 1] if binary else None,
        "dataset": data.dataset.id, "split": split, "excluded": [],
    }
    lineage = {"dataset": data.dataset.id, **({"split": split} if split else {})}
    return store_model(ws, pipeline, name=name, meta=meta, inputs=lineage)


# -- fixtures (imported by the test modules that use them) -----------------------------------

# load_sealed_test (model/data.py) fetches Arrow from a DB-API result; DuckDB warns about the copy.


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingested and split credit workspace per test module, copied by each test."""
    root = tmp_path_factory.mktemp("credit")
    credit_workspace(root)
    return root / "project"


@pytest.fixture
def credit(_template: Path, tmp_path: Path) -> Workspace:
    """A private copy of the template workspace (dataset ``credit`` + its split)."""
    shutil.copytree(_template, tmp_path / "project")
    return Workspace(tmp_path / "project")


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow SQLite store (creating one takes seconds; copying does not)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracked(credit: Workspace, _empty_mlflow_db: Path) -> Workspace:
    """The credit workspace with its own (fresh) embedded MLflow store."""
    shutil.copy(_empty_mlflow_db, credit.store / "mlflow.db")
    return credit


def write_config(ws: Workspace, text: str) -> Workspace:
    """Replace ``mlstrata.yaml`` and reopen the workspace so the new config is read."""
    (ws.root / "mlstrata.yaml").write_text(textwrap.dedent(text))
    return Workspace(ws.root)
