"""A loaded model package: verified, validated input, onnxruntime scoring.

:func:`load` audits the package before trusting it (every file's sha256 against
``manifest.json``), reads its signature and opens the ONNX graph. :class:`LoadedModel` is what
every serving pattern calls — the REST/gRPC server, the model wheel, batch scoring:

- :meth:`LoadedModel.predict_records` takes JSON-like records, validates them against the
  signature and raises :class:`~mlstrata.runtime.inputs.InvalidInputError` naming the record and
  field of every bad value;
- :meth:`LoadedModel.score` takes typed columns that have already been checked (batch scoring
  checks per row and drops the rejected ones) and runs the graph.

Both check what the graph answered: a record the model answers NaN or infinity for raises
:class:`~mlstrata.runtime.outputs.NonFinitePredictionError` naming the record and the fields that
drove it out of range (:mod:`mlstrata.runtime.outputs`).

Dates are expanded into the numeric parts the graph was trained on by
:func:`mlstrata.runtime.dates.expand_dates`, as the training pipeline did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dates import date_part_keys, expand_dates
from .inputs import (
    Columns,
    columns_from_lists,
    columns_from_records,
    require_valid,
    text_missing,
)
from .manifest import Manifest, verify_package
from .outputs import require_finite
from .session import open_session
from .signature import SIGNATURE_FILE, Signature, class_key

__all__ = ["LoadedModel", "Predictions", "load"]

MODEL_FILE = "model.onnx"
_DATE_MEMO_SIZE = 4096
_DISTINCT_DATES_FROM = 1024
"""Rows from which finding the distinct dates first pays (a few requests batched together are
faster expanded row by row: measured 270 vs 334 µs a call for 4 records)."""


@dataclass(frozen=True)
class Predictions:
    """What the graph answered for n records.

    ``labels``: class (or cluster) per record; ``probabilities``: ``[n, classes]`` for classifiers
    in ``classes`` order; ``values``: the prediction of a regressor; ``scores``: distances to each
    cluster centre for clustering.
    """

    labels: np.ndarray[Any, Any] | None = None
    probabilities: np.ndarray[Any, Any] | None = None
    classes: tuple[Any, ...] = ()
    values: np.ndarray[Any, Any] | None = None
    scores: np.ndarray[Any, Any] | None = None

    def __len__(self) -> int:
        for array in (self.labels, self.values):
            if array is not None:
                return len(array)
        return 0

    @property
    def predictions(self) -> list[Any]:
        """One plain Python prediction per record (label, or value for regression)."""
        array = self.values if self.values is not None else self.labels
        return [] if array is None else array.tolist()

    def rows(self, start: int, stop: int) -> Predictions:
        """The predictions of records ``start`` to ``stop`` (a batch split back per request)."""
        return self.take(slice(start, stop))

    def take(self, rows: slice | np.ndarray[Any, Any]) -> Predictions:
        """The predictions of the records ``rows`` selects (a slice, indices or a mask)."""
        def part(array: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any] | None:
            return None if array is None else array[rows]

        return Predictions(part(self.labels), part(self.probabilities), self.classes,
                           part(self.values), part(self.scores))

    def float_outputs(self) -> list[np.ndarray[Any, Any]]:
        """The numeric outputs (probabilities, values, scores), each ``[n, k]``: what must be
        finite."""
        return [array.reshape(len(array), -1) for array in
                (self.probabilities, self.values, self.scores) if array is not None]

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per record: ``prediction`` (+ ``probabilities`` for classifiers)."""
        out: list[dict[str, Any]] = [{"prediction": p} for p in self.predictions]
        if self.probabilities is not None:
            names = [class_key(c) for c in self.classes]
            for record, row in zip(out, self.probabilities.tolist(), strict=True):
                record["probabilities"] = dict(zip(names, row, strict=True))
        return out


class LoadedModel:
    """A verified model package ready to score (see the module docstring)."""

    def __init__(self, directory: Path, manifest: Manifest, signature: Signature,
                 session: Any) -> None:
        self.directory = directory
        self.manifest = manifest
        self.signature = signature
        self._session = session
        self._output_names = [o.name for o in session.get_outputs()]
        self._date_sources = _date_sources(signature)
        self._date_memo: dict[tuple[str, np.datetime64], dict[str, np.ndarray[Any, Any]]] = {}

    @property
    def name(self) -> str:
        """The registered model name (e.g. ``credit.model``)."""
        return self.manifest.model_name

    @property
    def version(self) -> int:
        """The model version the package was built from."""
        return self.manifest.model_version

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Predictions:
        """Validate JSON-like records against the signature and score them."""
        return self.score(self.check_records(records))

    def predict_columns(self, lists: Mapping[str, Sequence[Any]], *,
                        text_source: bool = False) -> Predictions:
        """Validate one sequence of values per input field and score them."""
        return self.score(self.check_columns(lists, text_source=text_source))

    def check_records(self, records: Sequence[Mapping[str, Any]]) -> Columns:
        """Typed columns of valid records; :class:`InvalidInputError` names every bad value."""
        columns, problems = columns_from_records(self.signature, records)
        require_valid(problems)
        return columns

    def check_columns(self, lists: Mapping[str, Sequence[Any]], *,
                      text_source: bool = False) -> Columns:
        """Typed columns of valid field lists; :class:`InvalidInputError` names every bad value."""
        columns, problems = columns_from_lists(self.signature, lists, text_source=text_source)
        require_valid(problems)
        return columns

    def score(self, columns: Columns) -> Predictions:
        """Run the graph on typed, already checked columns.

        :class:`~mlstrata.runtime.outputs.NonFinitePredictionError` names every record the model
        answers NaN or infinity for (its ``predictions`` still hold every record's answer).
        """
        results = self._session.run(self._output_names, self._feeds(columns))
        named = dict(zip(self._output_names, results, strict=True))
        classes = tuple(self.signature.classes or ())
        labels = named.get("label")
        predictions = Predictions(
            labels=self.signature.user_labels(labels.ravel()) if labels is not None else None,
            probabilities=named.get("probabilities"), classes=classes,
            values=named["value"].ravel() if "value" in named else None,
            scores=named.get("scores"))
        require_finite(self.signature, columns, predictions)
        return predictions

    def _feeds(self, columns: Columns) -> dict[str, np.ndarray[Any, Any]]:
        expanded: dict[str, dict[str, np.ndarray[Any, Any]]] = {}
        feeds: dict[str, np.ndarray[Any, Any]] = {}
        for name, onnx_type in self.signature.onnx_inputs:
            if name in columns:
                values = columns[name]
            else:
                column, key, parts = self._date_sources[name]
                if column not in expanded:
                    expanded[column] = self._expand(column, columns[column], parts)
                values = expanded[column][key]
            feeds[name] = _as_tensor(values, onnx_type)
        return feeds


    def _expand(self, column: str, values: np.ndarray[Any, Any],
                parts: tuple[str, ...]) -> dict[str, np.ndarray[Any, Any]]:
        """Date parts of ``values``: a large batch's distinct dates are expanded once each, and
        a single date is memoized (batches and live traffic repeat dates)."""
        if len(values) >= _DISTINCT_DATES_FROM:
            distinct, rows = np.unique(values, return_inverse=True)
            return {key: part[rows] for key, part in expand_dates(distinct, parts).items()}
        if len(values) != 1 or np.isnat(values[0]):  # NaT never equals itself: no memo
            return expand_dates(values, parts)
        memo_key = (column, values[0])
        found = self._date_memo.get(memo_key)
        if found is None:
            if len(self._date_memo) >= _DATE_MEMO_SIZE:
                self._date_memo.clear()
            found = self._date_memo[memo_key] = expand_dates(values, parts)
        return found


def load(directory: Path | str, *, threads: int | None = None) -> LoadedModel:
    """Verify and load the model package in ``directory``.

    Raises :class:`~mlstrata.runtime.manifest.PackageIntegrityError` when a file does not match its
    sha256, :class:`~mlstrata.runtime.signature.SignatureError` for a bad signature. ``threads``
    caps onnxruntime's intra-op threads (1 suits a server answering single records).
    """
    path = Path(directory)
    manifest = verify_package(path)
    signature = Signature.from_file(path / SIGNATURE_FILE)
    return LoadedModel(path, manifest, signature, open_session(path / MODEL_FILE, threads))


def _date_sources(signature: Signature) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Graph input name → (date column, part key, the column's parts)."""
    return {f"{spec.column}_{key}": (spec.column, key, spec.parts)
            for spec in signature.dates for key in date_part_keys(spec.parts)}


def _as_tensor(values: np.ndarray[Any, Any], onnx_type: str) -> np.ndarray[Any, Any]:
    """A column as the graph's ``[n, 1]`` input (text: missing → ""; numbers: its precision)."""
    if onnx_type == "string":
        missing = text_missing(values)
        return (np.where(missing, "", values) if missing.any() else values).reshape(-1, 1)
    if onnx_type == "float":
        values = values.astype(np.float32)
    return values.reshape(-1, 1)
