"""Test helpers: synthetic applications, a package holding a reference, and a prediction log
written line by line in the documented format (``docs/prediction-log.md``), as a server
writes it — so the reader is tested against the format, not against the writer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlstrata.monitor.reference import PredictionReference, Reference, build_reference
from mlstrata.monitor.sketch import CategorySketch, NumberSketch
from mlstrata.runtime.manifest import MANIFEST_SCHEMA_VERSION, Manifest

START = datetime(2026, 11, 30, tzinfo=UTC)

INPUTS: list[tuple[str, str]] = [
    ("age", "integer"), ("income", "float"), ("debt_ratio", "float"),
    ("num_credit_lines", "integer"), ("previous_defaults", "integer"), ("score", "float"),
    ("region", "text"), ("purpose", "text"), ("home_owner", "boolean"),
    ("application_date", "date"),
]
REGIONS = ["north", "south", "east", "west"]
PURPOSES = ["car", "home", "education", "business", "travel", "other"]


def applications(rows: int, seed: int) -> pd.DataFrame:
    """Credit applications with numbers of several shapes, text, a boolean, a date and missing
    values."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.5, 0.5, rows)
    income[rng.random(rows) < 0.03] = np.nan
    return pd.DataFrame({
        "age": rng.integers(18, 80, rows),
        "income": income,
        "debt_ratio": rng.beta(2, 5, rows),
        "num_credit_lines": rng.poisson(4, rows),
        "previous_defaults": rng.choice([0, 1, 2, 3], rows, p=[0.8, 0.12, 0.06, 0.02]),
        "score": rng.normal(650, 60, rows),
        "region": rng.choice(REGIONS, rows, p=[0.4, 0.3, 0.2, 0.1]),
        "purpose": rng.choice(PURPOSES, rows, p=[0.3, 0.25, 0.15, 0.15, 0.1, 0.05]),
        "home_owner": rng.random(rows) < 0.45,
        "application_date": [f"2026-{m:02d}-{d:02d}" for m, d in
                             zip(rng.integers(1, 12, rows), rng.integers(1, 28, rows),
                                 strict=True)],
    })


def risk(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """A deterministic 'model': the probability of default of each application."""
    z = (-(frame["score"].to_numpy() - 650) / 60 + 2 * frame["debt_ratio"].to_numpy()
         + 0.5 * frame["previous_defaults"].to_numpy() - 1.0)
    return 1 / (1 + np.exp(-z))


def write_package(directory: Path, reference: Reference) -> Path:
    """A directory that is a package as far as monitoring reads one: manifest + reference."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(MANIFEST_SCHEMA_VERSION, "0.1.0", "2026-11-29T00:00:00+00:00",
                        reference.model, reference.version, "f" * 64, reference.task, {}, {},
                        {}, {}, "double", {})
    (directory / "manifest.json").write_text(manifest.to_json())
    (directory / "reference.json").write_text(reference.to_json())
    return directory


def sketch_reference(frame: pd.DataFrame, *, model: str = "credit", version: int = 1
                     ) -> Reference:
    """A regression-like reference of ``frame`` whose prediction is :func:`risk`."""
    inputs: dict[str, Any] = {}
    for name, kind in INPUTS:
        if kind in ("integer", "float"):
            inputs[name] = NumberSketch.from_values(frame[name].to_numpy(dtype=float))
        elif kind in ("text", "boolean"):
            inputs[name] = CategorySketch.from_values(_text(v) for v in frame[name])
        else:
            from mlstrata.monitor.reference import PresenceSketch

            inputs[name] = PresenceSketch(len(frame), 0)
    score = NumberSketch.from_values(risk(frame))
    return Reference(model, version, "regression", "risk", None, len(frame), inputs,
                     PredictionReference(len(frame), None, score, "value"), None)


def fitted_reference(train: pd.DataFrame, labels: pd.Series, validation: pd.DataFrame,
                     validation_labels: pd.Series, *, gates: Sequence[str] = ()
                     ) -> tuple[Reference, Any]:
    """A binary classifier (one-hot + logistic regression) and its reference, as
    ``mlstrata package`` builds it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlstrata.config import GateConfig

    numbers = [n for n, k in INPUTS if k in ("integer", "float")]
    texts = ["region", "purpose"]
    prepare = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
        ("t", OneHotEncoder(handle_unknown="ignore"), texts)])
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=1000))
    pipeline.fit(train[[name for name, _ in INPUTS]], labels)
    reference = build_reference("credit", 1, "binary", "default", INPUTS, train, pipeline,
                                (validation, validation_labels), "roc_auc",
                                GateConfig(metrics=list(gates)))
    return reference, pipeline


class LogWriter:
    """Writes prediction and feedback lines into a log directory, as the documented format
    says: ``<root>/<model>/v<version>/<day>/<host>-<pid>-<seq>.jsonl``."""

    def __init__(self, root: Path, model: str = "credit", version: int = 1,
                 format_version: int = 1) -> None:
        self.root, self.model, self.version = root, model, version
        root.mkdir(parents=True, exist_ok=True)
        (root / "FORMAT.json").write_text(json.dumps({"format_version": format_version}))
        self._seq = 0

    def predictions(self, frame: pd.DataFrame, start: datetime, every: timedelta, *,
                    prediction: Callable[[pd.DataFrame], Iterable[Any]],
                    probabilities: Callable[[pd.DataFrame], Sequence[Mapping[str, float]]]
                    | None = None, request_prefix: str = "r",
                    warnings: Callable[[int], list[dict[str, str]]] | None = None) -> list[str]:
        """Log each row as a one-record request at ``start + i * every``; the request ids."""
        answers = list(prediction(frame))
        probs = list(probabilities(frame)) if probabilities is not None else None
        lines: dict[str, list[str]] = {}
        ids = []
        for i, record in enumerate(frame.to_dict(orient="records")):
            moment = start + i * every
            request_id = f"{request_prefix}{i}"
            ids.append(request_id)
            line = {"format": 1, "kind": "prediction", "request_id": request_id, "record": 0,
                    "time": stamp(moment), "model": self.model, "version": self.version,
                    "package": "a" * 64, "source": "rest", "key": f"k-{request_prefix}{i}",
                    "inputs": {k: _plain(v) for k, v in record.items()},
                    "prediction": _plain(answers[i]),
                    "probabilities": probs[i] if probs is not None else None,
                    "latency_ms": 0.4 + (i % 10) / 10,
                    "warnings": warnings(i) if warnings is not None else []}
            lines.setdefault(moment.strftime("%Y-%m-%d"), []).append(json.dumps(line))
        for day, day_lines in lines.items():
            self._write(self.root / self.model / f"v{self.version}" / day, day_lines)
        return ids

    def feedback(self, labels: Mapping[str, Any], moment: datetime) -> None:
        """Log the true label of each request id (record null: every record)."""
        lines = [json.dumps({"format": 1, "kind": "feedback", "time": stamp(moment),
                             "model": self.model, "request_id": request_id, "record": None,
                             "key": None, "label": _plain(label)})
                 for request_id, label in labels.items()]
        self._write(self.root / self.model / "feedback" / moment.strftime("%Y-%m-%d"), lines)

    def _write(self, directory: Path, lines: list[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        (directory / f"testhost-1-{self._seq}.jsonl").write_text("\n".join(lines) + "\n")


def stamp(moment: datetime) -> str:
    """A log line's time: ISO 8601 UTC with microseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reference_dict(reference: Reference) -> dict[str, Any]:
    """The reference as JSON data."""
    return json.loads(reference.to_json())


def _text(value: Any) -> str | None:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _plain(value: Any) -> Any:
    """A value as JSON has it (numpy scalars unwrapped, NaN as null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = ["INPUTS", "START", "LogWriter", "applications", "fitted_reference",
           "reference_dict", "risk", "sketch_reference", "stamp", "write_package"]
