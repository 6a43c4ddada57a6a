"""The AutoML benchmark's datasets: tables that ship inside Python packages, cut 80/20 once.

Run by ``bench_automl.py`` with the interpreter of its data environment (scikit-learn and
statsmodels pinned there; the main environment has no statsmodels):
``python _automl_datasets.py OUT_DIR SEED [NAME ...]``. For every dataset it writes
``OUT_DIR/NAME/train.parquet`` (80%) and ``test.parquet`` (20%, seeded, stratified on the class
for classification) and prints one JSON line per dataset: name, task, target, rows, columns,
source, and whether it has missing values and text columns. The held-out 20% is written to its
own file and is given to no system before scoring.

Nothing here downloads: a dataset whose loader would need the network (scikit-learn's
California housing) is reported as skipped, with the reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

Loader = Callable[[], tuple[pd.DataFrame, str, str, str]]
"""Returns (frame, target column, task, where it comes from)."""


def breast_cancer() -> tuple[pd.DataFrame, str, str, str]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame, "target", "binary", "sklearn.datasets.load_breast_cancer"


def digits() -> tuple[pd.DataFrame, str, str, str]:
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    return frame, "target", "multiclass", "sklearn.datasets.load_digits"


def diabetes() -> tuple[pd.DataFrame, str, str, str]:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return frame, "target", "regression", "sklearn.datasets.load_diabetes (unscaled)"


def california() -> tuple[pd.DataFrame, str, str, str]:
    from sklearn.datasets import fetch_california_housing

    frame = fetch_california_housing(as_frame=True, download_if_missing=False).frame
    return frame, "MedHouseVal", "regression", "sklearn.datasets.fetch_california_housing"


_OCCUPATIONS = {1: "student", 2: "farming/semi-skilled", 3: "white-collar",
                4: "teacher/counselor", 5: "managerial", 6: "professional"}


def fair() -> tuple[pd.DataFrame, str, str, str]:
    """Fair's extramarital affairs survey (6366 women): any affair (yes/no) as the target;
    the wife's and husband's occupation codes as the text labels the data's notes give."""
    from statsmodels.datasets import fair as data

    frame = data.load_pandas().data
    frame["had_affair"] = np.where(frame.pop("affairs") > 0, "yes", "no")
    for column in ("occupation", "occupation_husb"):
        frame[column] = frame[column].astype(int).map(_OCCUPATIONS)
    return frame, "had_affair", "binary", "statsmodels.datasets.fair (occupations as text)"


_PARTY = ["strong democrat", "weak democrat", "independent democrat", "independent",
          "independent republican", "weak republican", "strong republican"]


def anes96() -> tuple[pd.DataFrame, str, str, str]:
    """1996 American National Election Study (944 voters): party identification, 7 text labels."""
    from statsmodels.datasets import anes96 as data

    frame = data.load_pandas().data.drop(columns=["popul"])  # popul = exp(logpopul) - 0.1
    frame["party"] = frame.pop("PID").astype(int).map(dict(enumerate(_PARTY)))
    return frame, "party", "multiclass", "statsmodels.datasets.anes96 (PID as text labels)"


def randhie() -> tuple[pd.DataFrame, str, str, str]:
    """RAND health insurance experiment (20190 person-years): outpatient visits (regression)."""
    from statsmodels.datasets import randhie as data

    frame = data.load_pandas().data
    return frame, "mdvis", "regression", "statsmodels.datasets.randhie"


def star98() -> tuple[pd.DataFrame, str, str, str]:
    """California schools 1998 (303 districts): share of pupils above the national maths median."""
    from statsmodels.datasets import star98 as data

    frame = data.load_pandas().data
    above, below = frame.pop("NABOVE"), frame.pop("NBELOW")
    frame["share_above"] = above / (above + below)
    return frame, "share_above", "regression", "statsmodels.datasets.star98 (NABOVE share)"


CREDIT_SOURCE = "credit-source.parquet"
"""Written into OUT_DIR by ``mlstrata synth credit`` before this script runs."""


def credit(out: Path) -> tuple[pd.DataFrame, str, str, str]:
    """mlstrata's synthetic credit table: gaps, outliers, text categories, postal codes as text,
    a date. The row id and the PII columns (e-mail, phone) are dropped for every system."""
    frame = pd.read_parquet(out / CREDIT_SOURCE).drop(columns=["application_id", "email", "phone"])
    frame["application_date"] = pd.to_datetime(frame["application_date"])
    return frame, "default", "binary", "mlstrata synth credit (id, e-mail, phone dropped)"


LOADERS: dict[str, Loader] = {
    "breast_cancer": breast_cancer, "digits": digits, "diabetes": diabetes,
    "california_housing": california, "fair": fair, "anes96": anes96, "randhie": randhie,
    "star98": star98,
}


def write_split(frame: pd.DataFrame, target: str, task: str, out: Path, seed: int) -> None:
    """The seeded 80/20 cut (stratified for classes), as two Parquet files."""
    stratify = frame[target] if task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    out.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(out / "train.parquet", index=False)
    test.reset_index(drop=True).to_parquet(out / "test.parquet", index=False)


def describe(name: str, frame: pd.DataFrame, target: str, task: str, source: str) -> dict:
    features = frame.drop(columns=[target])
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
            and not pd.api.types.is_datetime64_any_dtype(features[c])]
    return {"name": name, "task": task, "target": target, "rows": len(frame),
            "features": features.shape[1], "source": source,
            "missing_cells": int(features.isna().sum().sum()), "text_columns": text}


def main() -> None:
    out, seed, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    for name in names:
        try:
            loaded = credit(out) if name == "credit" else LOADERS[name]()
            frame, target, task, source = loaded
        except OSError as error:  # a loader that would need the network
            print(json.dumps({"name": name, "skipped": f"not bundled: {error}"}), flush=True)
            continue
        write_split(frame, target, task, out / name, seed)
        print(json.dumps(describe(name, frame, target, task, source)), flush=True)


if __name__ == "__main__":
    main()
