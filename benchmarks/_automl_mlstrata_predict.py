"""Score the held-out rows with mlstrata's stored model, the way the peers' ``predict`` does.

Run by ``bench_automl.py`` in its own process (measured like the peers):
``python _automl_mlstrata_predict.py PROJECT MODEL_REF TEST_PARQUET TARGET TASK OUT_PARQUET``.
The target column is dropped before the model sees the rows; the output has the same columns
as ``_automl_peer.py`` writes (``score`` = probability of the last sorted class for binary,
``prediction`` otherwise).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from mlstrata.model.artifact import load_model
from mlstrata.workspace import Workspace


def main() -> None:
    project, ref, test_path = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    target, task, out = sys.argv[4], sys.argv[5], Path(sys.argv[6])
    artifact, pipeline = load_model(Workspace(project, command="bench_automl"), ref)
    test = pd.read_parquet(test_path).drop(columns=[target])
    rows = test[[column["name"] for column in artifact.meta["inputs"]]]
    if task == "binary":
        classes = list(artifact.meta["classes"])
        positive = classes.index(sorted(classes)[-1])
        result = pd.DataFrame({"score": pipeline.predict_proba(rows)[:, positive]})
    else:
        result = pd.DataFrame({"prediction": pd.Series(pipeline.predict(rows)).to_numpy()})
    result.to_parquet(out, index=False)


if __name__ == "__main__":
    main()
