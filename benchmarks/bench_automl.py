"""AutoML benchmark: mlstrata vs FLAML vs AutoGluon at the same budget, on bundled datasets.

For every dataset (tables shipped inside scikit-learn and statsmodels, and mlstrata's synthetic
credit data: ``_automl_datasets.py``) one seeded 80/20 cut is written once; each system gets
only the 80% and the same wall-clock budget, runs in its own process pinned to the same 2 CPUs
(peak RSS its own: ``_rss.py``), and its predictions on the held-out 20% are scored here by the
same code: ROC AUC (binary), accuracy (multiclass), R² (regression).

- mlstrata: a fresh workspace with ``sealed_test_fraction: 0``; ``mlstrata ingest`` of the 80%,
  then ``mlstrata automl NAME --time-budget B`` (before that command existed: ``mlstrata train``
  with ``model.time_budget_seconds: B``); the stored model scores the held-out rows
  (``_automl_mlstrata_predict.py``). Its wall time and peak RSS cover ingest + search + predict.
- FLAML ``AutoML(time_budget=B)`` and AutoGluon ``TabularPredictor.fit(time_limit=B,
  presets="medium_quality")`` (``_automl_peer.py``), each from its own virtual environment
  under ``benchmarks/work/automl/`` created on first use with pinned versions. AutoGluon's
  neural networks are excluded (they need torch, which is not installed).

Targets (issue 14): mlstrata's held-out score at least each peer's minus noise (0.005 AUC or
accuracy, 0.01 R²) on every dataset, and a strictly better average rank than both.
Results: ``benchmarks/results/bench_automl.json`` (+ a Markdown table with ``--markdown``).

Usage: ``.venv/bin/python benchmarks/bench_automl.py [--quick] [--budget 60] [--datasets a,b]
[--markdown FILE] [--reuse-peers EARLIER.json]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from _results import write_results
from _rss import run_measured

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "automl"
BIN = Path(sys.executable).parent
CPUS = "0,1"
SYSTEMS = ("mlstrata", "flaml", "autogluon")
DATASETS = ("breast_cancer", "fair", "credit", "digits", "anes96", "diabetes", "star98",
            "randhie", "california_housing")
QUICK = ("breast_cancer", "anes96", "diabetes")
CREDIT_ROWS = 30_000
SEED = 0
NOISE = {"binary": 0.005, "multiclass": 0.005, "regression": 0.01}
METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
ENVIRONMENTS = {
    "data": ["scikit-learn==1.9.0", "statsmodels==0.15.0", "pandas==3.1.1", "pyarrow==26.0.1"],
    "flaml": ["flaml[automl]==2.8.0", "pyarrow==26.0.1"],
    "autogluon": ["autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"],
}


def environment(name: str) -> Path:
    """The interpreter of environment ``name``, created and installed (pinned) when missing."""
    venv = WORK / f"{name}-venv"
    python, marker = venv / "bin" / "python", venv / "installed.txt"
    wanted = "\n".join(ENVIRONMENTS[name])
    if not marker.exists() or marker.read_text() != wanted:
        print(f"· creating {venv} ({', '.join(ENVIRONMENTS[name])}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *ENVIRONMENTS[name]],
                       check=True)
        marker.write_text(wanted)
    return python


def prepare(names: list[str]) -> list[dict[str, Any]]:
    """Write every dataset's 80/20 cut under ``WORK/data``; their descriptions, skips included."""
    data = WORK / "data"
    data.mkdir(parents=True, exist_ok=True)
    if "credit" in names:
        subprocess.run([str(BIN / "mlstrata"), "synth", "credit", "--rows", str(CREDIT_ROWS),
                        "--seed", "3", "--out", str(data / "credit-source.parquet")],
                       check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(environment("data")), str(HERE / "_automl_datasets.py"),
                          str(data), str(SEED), *names],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def mlstrata_search(name: str, budget: float) -> tuple[list[str], str]:
    """The command that searches: ``automl`` when this mlstrata has it, else ``train``."""
    has_automl = subprocess.run([str(BIN / "mlstrata"), "automl", "--help"],
                                capture_output=True).returncode == 0
    if has_automl:
        return ["automl", name, "--time-budget", f"{budget:g}", "--seed", "0", "--json"], "automl"
    return ["train", name, "--json"], "train (model.time_budget_seconds)"


def run_mlstrata(spec: dict[str, Any], budget: float, out: Path) -> dict[str, Any]:
    """ingest the 80% into a fresh workspace, search, score the held-out rows; summed."""
    name, task = spec["name"], spec["task"]
    project = WORK / "projects" / name
    shutil.rmtree(project, ignore_errors=True)
    subprocess.run([str(BIN / "mlstrata"), "init", str(project)], check=True,
                   stdout=subprocess.DEVNULL)
    config = project / "mlstrata.yaml"
    config.write_text(config.read_text().replace("sealed_test_fraction: 0.2",
                                                 "sealed_test_fraction: 0.0")
                      + f"model:\n  metric: {METRIC[task]}\n  time_budget_seconds: {budget:g}\n")
    data = WORK / "data" / name
    search, how = mlstrata_search(name, budget)
    steps = [
        ["ingest", str(data / "train.parquet"), "--name", name, "--target", spec["target"],
         "--json"],
        search,
    ]
    seconds, peak, detail = 0.0, 0.0, {"command": how}
    for args in steps:
        run = run_measured([BIN / "mlstrata", *args], cwd=project, cpus=CPUS, capture=True)
        seconds, peak = seconds + run.seconds, max(peak, run.peak_rss_mb)
        detail[f"{args[0]}_seconds"] = round(run.seconds, 1)
        if run.exit_code != 0:
            return {"error": f"mlstrata {args[0]} exited {run.exit_code}", **detail}
        if args[0] in ("train", "automl"):
            report = json.loads(run.stdout)
            detail["winner"] = report.get("winner") or report.get("candidate")
            detail["model"] = report.get("model") or f"{name}.model"
    run = run_measured([sys.executable, HERE / "_automl_mlstrata_predict.py", project,
                        f"{name}.model", data / "test.parquet", spec["target"], task, out],
                       cwd=project, cpus=CPUS)
    if run.exit_code != 0:
        return {"error": f"mlstrata predict exited {run.exit_code}", **detail}
    detail["predict_seconds"] = round(run.seconds, 1)
    return {"seconds": round(seconds + run.seconds, 1),
            "peak_rss_mb": round(max(peak, run.peak_rss_mb), 1), **detail}


def run_peer(system: str, spec: dict[str, Any], budget: float, out: Path) -> dict[str, Any]:
    """FLAML or AutoGluon in its own environment and process: fit on the 80%, predict."""
    python = environment(system)
    run = run_measured([python, HERE / "_automl_peer.py", system, WORK / "data" / spec["name"],
                        spec["target"], spec["task"], f"{budget:g}", out],
                       cwd=WORK, cpus=CPUS)
    if run.exit_code != 0:
        return {"error": f"{system} exited {run.exit_code}"}
    return {"seconds": round(run.seconds, 1), "peak_rss_mb": round(run.peak_rss_mb, 1)}


def predictions_file(spec: dict[str, Any], system: str) -> Path:
    return WORK / "predictions" / f"{spec['name']}-{system}.parquet"


def held_out(spec: dict[str, Any], system: str) -> tuple[Any, Any]:
    """The held-out truth and one system's predictions, as arrays the metric takes."""
    truth = pd.read_parquet(WORK / "data" / spec["name"] / "test.parquet")[spec["target"]]
    predicted = pd.read_parquet(predictions_file(spec, system))
    if spec["task"] == "binary":
        return (truth == sorted(truth.unique())[-1]).to_numpy(), predicted["score"].to_numpy()
    if spec["task"] == "multiclass":
        return truth.astype(str).to_numpy(), predicted["prediction"].astype(str).to_numpy()
    return truth.to_numpy(dtype=float), predicted["prediction"].to_numpy(dtype=float)


def metric(task: str, truth: Any, predicted: Any) -> float:
    """ROC AUC, accuracy or R²: the same code scores every system."""
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    scorer = {"binary": roc_auc_score, "multiclass": accuracy_score, "regression": r2_score}
    return float(scorer[task](truth, predicted))


def paired_interval(spec: dict[str, Any], peer: str, resamples: int = 1000) -> list[float]:
    """95% paired-bootstrap interval of mlstrata's score minus ``peer``'s on the held-out rows:
    how much of a difference this many test rows can tell apart."""
    import numpy as np

    truth, ours = held_out(spec, "mlstrata")
    _, theirs = held_out(spec, peer)
    rng = np.random.default_rng(SEED)
    differences = []
    for _ in range(resamples):
        rows = rng.integers(0, len(truth), len(truth))
        if spec["task"] == "binary" and len(set(truth[rows])) < 2:
            continue
        differences.append(metric(spec["task"], truth[rows], ours[rows])
                           - metric(spec["task"], truth[rows], theirs[rows]))
    low, high = np.percentile(differences, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def run_dataset(spec: dict[str, Any], budget: float,
                known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every system on one dataset, one after the other (never two at once); systems whose
    results are ``known`` (``--reuse-peers``) are not run again."""
    results: dict[str, Any] = dict(known or {})
    for system in (s for s in SYSTEMS if s not in results):
        out = predictions_file(spec, system)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        print(f"· {spec['name']}: {system} ...", flush=True)
        result = (run_mlstrata(spec, budget, out) if system == "mlstrata"
                  else run_peer(system, spec, budget, out))
        if "error" not in result:
            result["score"] = round(metric(spec["task"], *held_out(spec, system)), 4)
        results[system] = result
        print(f"  {result}", flush=True)
    if "error" not in results["mlstrata"]:
        results["mlstrata"]["minus_peer_95ci"] = {
            peer: paired_interval(spec, peer) for peer in SYSTEMS[1:]
            if "error" not in results[peer]}
    return {**spec, "metric": METRIC[spec["task"]],
            "systems": {system: results[system] for system in SYSTEMS}}


def source_state() -> dict[str, Any]:
    """The mlstrata code that ran: HEAD and whether src/ had uncommitted changes then."""
    git = ["git", "-C", str(HERE.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True).stdout.strip()
    return {"commit": head, "uncommitted_changes_in_src": bool(dirty)}


def peer_results(path: Path) -> dict[str, dict[str, Any]]:
    """The peers' results per dataset from an earlier run's JSON (same budget and split)."""
    report = json.loads(path.read_text())
    return {row["name"]: {s: row["systems"][s] for s in SYSTEMS[1:]}
            for row in report["datasets"]}


def rank(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Average rank per system (1 = best; ties share the mean rank; a failure ranks last)."""
    ranks = pd.DataFrame([{s: r["systems"][s].get("score", float("-inf")) for s in SYSTEMS}
                          for r in rows])
    return {s: round(float(v), 2)
            for s, v in ranks.rank(axis=1, ascending=False, method="average").mean().items()}


def verdict(rows: list[dict[str, Any]], ranks: dict[str, float]) -> dict[str, Any]:
    """The issue's targets: within noise of each peer everywhere; a strictly better mean rank."""
    misses = []
    for row in rows:
        ours = row["systems"]["mlstrata"].get("score", float("-inf"))
        for peer in SYSTEMS[1:]:
            theirs = row["systems"][peer].get("score", float("-inf"))
            if ours < theirs - NOISE[row["task"]]:
                misses.append(f"{row['name']}: {row['metric']} {ours:.4f} < {peer} {theirs:.4f}"
                              f" - {NOISE[row['task']]}")
    best_rank = all(ranks["mlstrata"] < ranks[p] for p in SYSTEMS[1:])
    return {"within_noise_everywhere": not misses, "misses": misses,
            "best_average_rank": best_rank, "met": not misses and best_rank}


def markdown(rows: list[dict[str, Any]], ranks: dict[str, float], budget: float) -> str:
    """The results as a Markdown table (score / wall s / peak RSS MB per system)."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = ", ".join(sorted({r["systems"]["mlstrata"].get("command", "?") for r in rows}))
    lines = [f"bench_automl, {when}: budget {budget:g} s, CPUs {CPUS}, seed {SEED}, "
             f"mlstrata `{how}`; cells: held-out score / wall s / peak RSS MB", "",
             "| dataset | task, rows | metric | " + " | ".join(SYSTEMS) + " | best |",
             "|---|---|---|" + "---|" * (len(SYSTEMS) + 1)]
    for row in rows:
        cells, scores = [], {}
        for system in SYSTEMS:
            result = row["systems"][system]
            if "error" in result:
                cells.append(f"failed: {result['error']}")
                continue
            scores[system] = result["score"]
            cells.append(f"{result['score']:.4f} / {result['seconds']:.0f} / "
                         f"{result['peak_rss_mb']:.0f}")
        best = max(scores, key=scores.__getitem__) if scores else "-"
        lines.append(f"| {row['name']} | {row['task']}, {row['rows']} | {row['metric']} | "
                     + " | ".join(cells) + f" | {best} |")
    lines.append("| average rank | | | " + " | ".join(f"{ranks[s]:.2f}" for s in SYSTEMS)
                 + " | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per system")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK)} at a 15 s budget: checks the harness")
    parser.add_argument("--datasets", help="comma-separated subset of " + ", ".join(DATASETS))
    parser.add_argument("--markdown", type=Path, help="also write the table here, per dataset")
    parser.add_argument("--reuse-peers", type=Path, metavar="JSON",
                        help="take FLAML's and AutoGluon's results from an earlier run's JSON "
                             "and run only mlstrata (a partial run: not written to results/)")
    args = parser.parse_args()
    names = list(QUICK if args.quick else DATASETS)
    if args.datasets:
        names = args.datasets.split(",")
    budget = 15.0 if args.quick else args.budget
    for system in SYSTEMS[1:]:
        environment(system)  # install before anything is timed
    source = source_state()
    specs = prepare(names)
    skipped = [s for s in specs if "skipped" in s]
    known = peer_results(args.reuse_peers) if args.reuse_peers else {}
    rows: list[dict[str, Any]] = []
    for spec in (s for s in specs if "skipped" not in s):
        rows.append(run_dataset(spec, budget, known.get(spec["name"])))
        ranks = rank(rows)
        if args.markdown:
            args.markdown.write_text(markdown(rows, ranks, budget))
    ranks = rank(rows)
    print(markdown(rows, ranks, budget))
    figures = {"mlstrata_source": source, "budget_seconds": budget, "cpus": CPUS, "seed": SEED,
               "environments": ENVIRONMENTS, "datasets": rows, "skipped": skipped,
               "average_rank": ranks, "targets": {"noise": NOISE, **verdict(rows, ranks)}}
    if args.quick or args.datasets or args.reuse_peers:  # a check or a partial rerun
        (WORK / "partial.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"partial results: {WORK / 'partial.json'}")
    else:
        write_results("bench_automl", figures)


if __name__ == "__main__":
    main()
