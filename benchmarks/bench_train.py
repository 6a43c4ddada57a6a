"""Model-stratum benchmark: the default ``mlstrata run`` vs a default LightGBMClassifier, one run.

1. Synthetic credit data (100k rows by default) → ``mlstrata run`` with the default model config
   and the example cleaning recipe (ingest → clean → validate → split → train → package →
   evaluate → test → register): wall time and
   peak RSS of that process (``os.wait4`` rusage). Target: within 10 minutes on 2 cores.
2. On the same training rows, a ``LGBMClassifier()`` with default parameters (categoricals as
   pandas categories, dates as day numbers), and both models' ROC AUC on the same sealed test set.
   Target: mlstrata's test ROC AUC at least the default LightGBM's.

Results go to ``benchmarks/results/bench_train.json``.
Usage: ``.venv/bin/python benchmarks/bench_train.py [--rows 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results"
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
    start = time.perf_counter()
    process = subprocess.Popen([str(BIN / "mlstrata"), "run", "--json"], cwd=project,
                               stdout=subprocess.PIPE)
    out = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    report = json.loads(out)
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "exit_code": os.waitstatus_to_exitcode(status),
            "steps": {s["step"]: s["status"] for s in report["steps"]}}


def lightgbm_frame(frame, target: str):  # type: ignore[no-untyped-def]
    """Features LightGBM takes as they are: text as categories, dates as day numbers."""
    import pandas as pd

    features = frame.drop(columns=[target, "application_id"])
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            features[name] = column.astype("category")
        elif not pd.api.types.is_numeric_dtype(column):
            features[name] = (pd.to_datetime(column) - pd.Timestamp("1970-01-01")).dt.days
    return features


def compare_on_test(project: Path) -> dict[str, float]:
    """ROC AUC of mlstrata's model and of a default LGBMClassifier on the sealed test set."""
    import pandas as pd
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
    x_train = lightgbm_frame(train_rows, "default")
    x_test = lightgbm_frame(test, "default")
    for name in x_train.columns:
        if isinstance(x_train[name].dtype, pd.CategoricalDtype):
            x_test[name] = pd.Categorical(x_test[name], categories=x_train[name].cat.categories)
    baseline = LGBMClassifier(verbose=-1).fit(x_train, train_rows["default"])
    theirs = roc_auc_score(test["default"], baseline.predict_proba(x_test)[:, 1])
    return {"mlstrata_test_roc_auc": round(float(ours), 4),
            "lightgbm_default_test_roc_auc": round(float(theirs), 4),
            "test_rows": len(test), "winner": str(model.meta.get("candidate"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    project = WORK / "train-project"
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
    if "train" not in run["steps"]:  # type: ignore[operator]
        raise SystemExit("mlstrata run stopped before training; see the step table above")
    scores = compare_on_test(project)
    print(f"  {scores}", flush=True)
    report = {
        "benchmark": "bench_train",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "rows": args.rows,
        "mlstrata_run": run,
        **scores,
        "targets": {"run_seconds_at_most": 600, "roc_auc_at_least_lightgbm_default": True},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench_train.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
