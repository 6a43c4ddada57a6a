"""Small fitted pipelines and model artifacts for the packaging tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlstrata.model.artifact import store_model
from mlstrata.workspace import Artifact, Workspace
from tests._factories import make_dataset

NUMERIC = ["income", "age", "debt"]
TEXT = ["city"]

DATASET_SQL = """
SELECT (hash(range) % 100000)::BIGINT / 7.0 AS income,
       18 + (hash(range * 3) % 60)::BIGINT AS age,
       CASE WHEN range % 13 = 0 THEN NULL ELSE (hash(range * 7) % 5000)::BIGINT / 3.0 END AS debt,
       ['north', 'south', 'east'][1 + (hash(range * 11) % 3)::BIGINT] AS city,
       (hash(range * 17) % 100)::BIGINT < 20 + (hash(range) % 100000)::BIGINT / 2000
           AS default_flag
FROM range({rows})
"""


def frame(rows: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A synthetic credit-like frame with a missing-value column and a text column."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, rows),
        "age": rng.integers(18, 80, rows),
        "debt": rng.normal(2000, 800, rows),
        "city": rng.choice(["north", "south", "east"], rows),
    })
    data.loc[::13, "debt"] = np.nan
    score = (np.log(data["income"]) - 10) * 2 - data["debt"].fillna(2000) / 1000 \
        + (data["city"] == "north") + rng.normal(0, 1, rows)
    return data, (score > 0).astype(int)


def pipeline(estimator: Any) -> Pipeline:
    """Impute + scale numbers, one-hot encode text, then ``estimator`` (unfitted)."""
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    features = ColumnTransformer([("num", numbers, NUMERIC),
                                  ("cat", OneHotEncoder(handle_unknown="ignore"), TEXT)])
    return Pipeline([("features", features), ("model", estimator)])


def stored_model(ws: Workspace, estimator: Any, rows: int = 600,
                 name: str = "credit-model") -> Artifact:
    """Fit ``estimator`` on a stored dataset version and store it as a model artifact."""
    dataset = make_dataset(ws, DATASET_SQL.format(rows=rows), name="credit",
                           target="default_flag")
    data = _read(ws, dataset)
    features, labels = data[NUMERIC + TEXT], data["default_flag"]
    fitted = pipeline(estimator).fit(features, labels)
    meta = {"task": "binary", "target": "default_flag", "candidate": type(estimator).__name__,
            "params": {}, "metric": "roc_auc", "cv": {"roc_auc": {"mean": 0.7, "std": 0.02}},
            "inputs": [{"name": c, "type": "float" if c != "city" else "text"}
                       for c in NUMERIC + TEXT],
            "classes": [False, True], "dataset": dataset.id, "split": None, "excluded": []}
    return store_model(ws, fitted, name=name, meta=meta, inputs={"dataset": dataset.id})


def _read(ws: Workspace, dataset: Artifact) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(ws.path_for_read(dataset)).to_pandas()
