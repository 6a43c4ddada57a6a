"""One peer AutoML system on one dataset: fit on train.parquet, predict test.parquet.

Run by ``bench_automl.py`` with the interpreter of the peer's own environment, in its own
process (so its peak RSS is its own):
``python _automl_peer.py flaml|autogluon DATA_DIR TARGET TASK BUDGET_SECONDS OUT_PARQUET``.
The target column is dropped from the held-out rows before the system sees them. Predictions
are written for scoring by the benchmark (the same code scores every system): the probability
of the positive (last sorted) class for binary, the label for multiclass, the value for
regression. Both peers optimise the metric they are scored on, use 2 CPUs and seed 0.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

METRICS = {"flaml": {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"},
           "autogluon": {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}}
AUTOGLUON_WITHOUT_TORCH = ["NN_TORCH", "FASTAI"]
"""The two neural networks of AutoGluon's default model set (the others: LightGBM, CatBoost,
XGBoost, random and extra trees) need torch, which is not installed (no GPU; CPU torch alone is
~1 GB): excluded by name so that no budget goes to failed attempts."""


def fit_flaml(train: pd.DataFrame, target: str, task: str, budget: float):  # type: ignore[no-untyped-def]
    from flaml import AutoML

    automl = AutoML()
    automl.fit(X_train=train.drop(columns=[target]), y_train=train[target],
               task="regression" if task == "regression" else "classification",
               metric=METRICS["flaml"][task], time_budget=budget, n_jobs=2, seed=0, verbose=0)
    return automl


def fit_autogluon(train: pd.DataFrame, target: str, task: str, budget: float):  # type: ignore[no-untyped-def]
    from autogluon.tabular import TabularPredictor

    predictor = TabularPredictor(label=target, problem_type=task,
                                 eval_metric=METRICS["autogluon"][task],
                                 path=tempfile.mkdtemp(prefix="autogluon-"), verbosity=0)
    return predictor.fit(train, time_limit=budget, presets="medium_quality",
                         excluded_model_types=AUTOGLUON_WITHOUT_TORCH,
                         num_cpus=2, num_gpus=0)


def predictions(model, test: pd.DataFrame, task: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    if task == "binary":
        proba = model.predict_proba(test)
        if isinstance(proba, pd.DataFrame):  # AutoGluon: columns are the class labels
            return pd.DataFrame({"score": proba[sorted(proba.columns)[-1]].to_numpy()})
        classes = list(model.classes_)  # FLAML: columns in the order of classes_
        return pd.DataFrame({"score": proba[:, classes.index(sorted(classes)[-1])]})
    return pd.DataFrame({"prediction": pd.Series(model.predict(test)).to_numpy()})


def main() -> None:
    system, data, target, task = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    budget, out = float(sys.argv[5]), Path(sys.argv[6])
    train = pd.read_parquet(data / "train.parquet")
    test = pd.read_parquet(data / "test.parquet").drop(columns=[target])
    started = time.perf_counter()
    model = (fit_flaml if system == "flaml" else fit_autogluon)(train, target, task, budget)
    fitted = time.perf_counter()
    predictions(model, test, task).to_parquet(out, index=False)
    print(f"{system}: fit {fitted - started:.1f}s, predict {time.perf_counter() - fitted:.1f}s",
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
