"""Model-stratum benchmark: the default ``mlstrata run`` vs a default LightGBMClassifier, one run.

1. Synthetic credit data (100k rows by default) → ``mlstrata run`` with the default model config
   and the example cleaning recipe (ingest → clean → validate → split → train → package →
   evaluate → test → register): wall time and
   peak RSS of that process (its own, not this script's: ``_rss.py``). Target: within 10 minutes
   on 2 cores.
2. On the same training rows, a ``LGBMClassifier()`` with default parameters (categoricals as
   pandas categories, dates as day numbers), and both models' ROC AUC on the same sealed test set.
   Target: mlstrata's test ROC AUC at least the default LightGBM's.

Results go to ``benchmarks/results/bench_train.json``.
Usage: ``.venv/bin/python benchmarks/bench_train.py [--rows 100000]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _results import write_results
from _rss import run_measured

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
BIN = Path(sys.executable).parent

CONFIG = """project: bench-train
pipeline:
  source: credit.csv
  name: credit
  target: default
  key: application_id
  time: application_date
  recipe: recipe.yaml
  split: {strategy: stratified, val: 0.2, seed: 0}
"""


def run_mlstrata(project: Path) -> dict[str, object]:
    """``mlstrata run --json`` in its own process: wall seconds, peak RSS, step outcomes."""
    run = run_measured([BIN / "mlstrata", "run", "--json"], cwd=project, capture=True)
    report = json.loads(run.stdout)
    return {"seconds": round(run.seconds, 1), "peak_rss_mb": round(run.peak_rss_mb, 1),
            "exit_code": run.exit_code,
            "steps": {s["step"]: s["status"] for s in report["steps"]}}


def lightgbm_frames(train, test, target: str):  # type: ignore[no-untyped-def]
    """Features as a LightGBM user passes them: text as category codes (levels seen in
    training; unseen → -1, LightGBM's missing), dates as day numbers; the categorical names."""
    import pandas as pd

    x_train = train.drop(columns=[target, "application_id"]).copy()
    x_test = test[x_train.columns].copy()
    categorical = []
    for name in x_train.columns:
        column = x_train[name]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            levels = pd.Index(column.dropna().unique())
            x_train[name] = pd.Categorical(column, categories=levels).codes
            x_test[name] = pd.Categorical(x_test[name], categories=levels).codes
            categorical.append(name)
        elif not pd.api.types.is_numeric_dtype(column):
            for frame in (x_train, x_test):
                frame[name] = (pd.to_datetime(frame[name]) - pd.Timestamp("1970-01-01")).dt.days
    return x_train, x_test, categorical


def compare_on_test(project: Path) -> dict[str, float]:
    """ROC AUC of mlstrata's model and of a default LGBMClassifier on the sealed test set."""
    from lightgbm import LGBMClassifier
    from sklearn.metrics import roc_auc_score

    from mlstrata.model.artifact import load_model
    from mlstrata.model.data import load_sealed_test, load_training_data
    from mlstrata.workspace import Workspace

    ws = Workspace(project, command="bench_train")
    model, pipeline = load_model(ws, "credit.model")
    test = load_sealed_test(ws, model)
    inputs = [c["name"] for c in model.meta["inputs"]]
    ours = roc_auc_score(test["default"], pipeline.predict_proba(test[inputs])[:, 1])
    data = load_training_data(ws, "credit")
    train_rows = data.frame.loc[~data.is_validation]
    x_train, x_test, categorical = lightgbm_frames(train_rows, test, "default")
    baseline = LGBMClassifier(verbose=-1).fit(x_train, train_rows["default"],
                                              categorical_feature=categorical)
    theirs = roc_auc_score(test["default"], baseline.predict_proba(x_test)[:, 1])
    return {"mlstrata_test_roc_auc": round(float(ours), 4),
            "lightgbm_default_test_roc_auc": round(float(theirs), 4),
            "test_rows": len(test), "winner": str(model.meta.get("candidate"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--compare-only", action="store_true",
                        help="reuse the last run's workspace and timing; redo the comparison")
    args = parser.parse_args()
    project = WORK / "train-project"
    if args.compare_only:
        run = json.loads((project / "run-result.json").read_text())
        finish(project, args.rows, run)
        return
    subprocess.run(["rm", "-rf", str(project)], check=True)
    subprocess.run([str(BIN / "mlstrata"), "init", str(project)], check=True,
                   stdout=subprocess.DEVNULL)
    (project / "mlstrata.yaml").write_text(CONFIG)
    recipe = HERE.parent / "examples" / "credit-recipe.yaml"  # drops invalid postal codes
    (project / "recipe.yaml").write_text(recipe.read_text())
    subprocess.run([str(BIN / "mlstrata"), "synth", "credit", "--rows", str(args.rows),
                    "--seed", "11", "--out", str(project / "credit.csv")], check=True)
    print("· mlstrata run (default config) ...", flush=True)
    run = run_mlstrata(project)
    print(f"  {run}", flush=True)
    (project / "run-result.json").write_text(json.dumps(run))
    if "train" not in run["steps"]:  # type: ignore[operator]
        raise SystemExit("mlstrata run stopped before training; see the step table above")
    finish(project, args.rows, run)


def finish(project: Path, rows: int, run: dict[str, object]) -> None:
    """Compare both models on the sealed test set and write the results JSON."""
    scores = compare_on_test(project)
    print(f"  {scores}", flush=True)
    write_results("bench_train", {
        "rows": rows,
        "mlstrata_run": run,
        **scores,
        "targets": {"run_seconds_at_most": 600, "roc_auc_at_least_lightgbm_default": True},
    })


if __name__ == "__main__":
    main()
