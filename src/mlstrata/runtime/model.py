"""A loaded model package: verified, validated input, onnxruntime scoring.

:func:`load` audits the package before trusting it (every file's sha256 against
``manifest.json``), reads its signature and opens the ONNX graph. :class:`LoadedModel` is what
every serving pattern calls — the REST/gRPC server, the model wheel, batch scoring:

- :meth:`LoadedModel.predict_records` takes JSON-like records, validates them against the
  signature and raises :class:`~mlstrata.runtime.inputs.InvalidInputError` naming the record and
  field of every bad value; values that break only ``warn`` rules are scored and their warnings
  come back with the predictions (``Predictions.warnings``), unless the model was loaded
  ``strict`` (``mlstrata serve --strict``), which refuses them too;
- :meth:`LoadedModel.score` takes typed columns that have already been checked (batch scoring
  checks per row and drops the rejected ones) and runs the graph.

Both check what the graph answered: a record the model answers NaN or infinity for raises
:class:`~mlstrata.runtime.outputs.NonFinitePredictionError` naming the record and the fields that
drove it out of range (:mod:`mlstrata.runtime.outputs`).

Dates are expanded into the numeric parts the graph was trained on by
:func:`mlstrata.runtime.dates.expand_dates`, as the training pipeline did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .dates import date_part_keys, expand_dates
from .inputs import (
    Columns,
    RecordWarnings,
    columns_from_lists,
    columns_from_records,
    record_warnings,
    require_valid,
    text_missing,
)
from .joins import JoinTable, enrich_lists, enrich_records, load_joins
from .manifest import Manifest, verify_package
from .outputs import require_finite
from .session import open_session
from .signature import SIGNATURE_FILE, Signature, class_key

__all__ = ["Checked", "LoadedModel", "Predictions", "load"]

MODEL_FILE = "model.onnx"
_DATE_MEMO_SIZE = 4096
_DISTINCT_DATES_FROM = 1024
"""Rows from which finding the distinct dates first pays (a few requests batched together are
faster expanded row by row: measured 270 vs 334 µs a call for 4 records)."""


@dataclass(frozen=True)
class Checked:
    """Records checked against the signature: typed ``columns`` to score, and the ``warnings``
    of each record (None when no record broke a warn rule)."""

    columns: Columns
    warnings: RecordWarnings | None = None


@dataclass(frozen=True)
class Predictions:
    """What the graph answered for n records.

    ``labels``: class (or cluster) per record; ``probabilities``: ``[n, classes]`` for classifiers
    in ``classes`` order; ``values``: the prediction of a regressor; ``scores``: distances to each
    cluster centre for clustering; ``record_warnings``: the contract warnings of each record
    (None: none), read through :attr:`warnings`.
    """

    labels: np.ndarray[Any, Any] | None = None
    probabilities: np.ndarray[Any, Any] | None = None
    classes: tuple[Any, ...] = ()
    values: np.ndarray[Any, Any] | None = None
    scores: np.ndarray[Any, Any] | None = None
    record_warnings: RecordWarnings | None = None

    @property
    def warnings(self) -> RecordWarnings:
        """One tuple of :class:`~mlstrata.runtime.inputs.ContractWarning` (field, rule, message)
        per record, empty for a record that broke no warn rule: ``warnings[i]``.

        >>> Predictions(values=np.array([1.0, 2.0])).warnings
        ((), ())
        """
        if self.record_warnings is None:
            return ((),) * len(self)
        return self.record_warnings

    @property
    def warning_count(self) -> int:
        """How many warnings the records carry in all."""
        return sum(map(len, self.record_warnings or ()))

    def with_warnings(self, warnings: RecordWarnings | None) -> Predictions:
        """These predictions carrying ``warnings`` (one tuple per record, or None)."""
        if warnings is None and self.record_warnings is None:
            return self
        return dataclasses.replace(self, record_warnings=warnings)

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

        warnings = self.record_warnings
        if warnings is not None:
            kept = warnings[rows] if isinstance(rows, slice) else tuple(
                warnings[i] for i in np.arange(len(warnings))[rows].tolist())
            warnings = kept if any(kept) else None
        return Predictions(part(self.labels), part(self.probabilities), self.classes,
                           part(self.values), part(self.scores), warnings)

    def float_outputs(self) -> list[np.ndarray[Any, Any]]:
        """The numeric outputs (probabilities, values, scores), each ``[n, k]``: what must be
        finite."""
        return [array.reshape(len(array), -1) for array in
                (self.probabilities, self.values, self.scores) if array is not None]

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per record: ``prediction`` (+ ``probabilities`` for classifiers,
        + ``warnings`` — a list of ``{field, rule, message}`` — only for a record that has some).

        >>> from mlstrata.runtime.inputs import ContractWarning
        >>> warning = ContractWarning("lines", "max", "14 is above the maximum 13")
        >>> Predictions(values=np.array([0.5, 0.7]), record_warnings=((), (warning,))).to_records()
        [{'prediction': 0.5}, {'prediction': 0.7, 'warnings': [{'field': 'lines', 'rule': 'max', \
'message': '14 is above the maximum 13'}]}]
        """
        out: list[dict[str, Any]] = [{"prediction": p} for p in self.predictions]
        if self.probabilities is not None:
            names = [class_key(c) for c in self.classes]
            for record, row in zip(out, self.probabilities.tolist(), strict=True):
                record["probabilities"] = dict(zip(names, row, strict=True))
        if self.record_warnings is not None:
            for record, found in zip(out, self.record_warnings, strict=True):
                if found:
                    record["warnings"] = [warning.to_dict() for warning in found]
        return out

    def warning_list(self) -> list[dict[str, Any]]:
        """Every warning as ``{"record": i, "field", "rule", "message"}``, in record order (the
        form of protocols whose predictions are plain values: MLflow's, OIP's)."""
        return [{"record": row, **warning.to_dict()}
                for row, found in enumerate(self.record_warnings or ()) for warning in found]


class LoadedModel:
    """A verified model package ready to score (see the module docstring)."""

    def __init__(self, directory: Path, manifest: Manifest, signature: Signature,
                 session: Any, *, strict: bool = False) -> None:
        self.directory = directory
        self.manifest = manifest
        self.signature = signature
        self.strict = strict
        self._session = session
        self._output_names = [o.name for o in session.get_outputs()]
        self._date_sources = _date_sources(signature)
        self._date_memo: dict[tuple[str, np.datetime64], dict[str, np.ndarray[Any, Any]]] = {}
        self._joins = load_joins(directory)

    @property
    def joins(self) -> tuple[JoinTable, ...]:
        """The package's join tables (``joins/NN.json``) in recipe order; empty for most models."""
        return self._joins

    @property
    def name(self) -> str:
        """The registered model name (e.g. ``credit.model``)."""
        return self.manifest.model_name

    @property
    def version(self) -> int:
        """The model version the package was built from."""
        return self.manifest.model_version

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Predictions:
        """Validate JSON-like records against the signature and score them (with warnings)."""
        checked = self.check_records(records)
        return self.score(checked.columns).with_warnings(checked.warnings)

    def predict_columns(self, lists: Mapping[str, Sequence[Any]], *,
                        text_source: bool = False) -> Predictions:
        """Validate one sequence of values per input field and score them (with warnings)."""
        checked = self.check_columns(lists, text_source=text_source)
        return self.score(checked.columns).with_warnings(checked.warnings)

    def check_records(self, records: Sequence[Mapping[str, Any]]) -> Checked:
        """Typed columns of valid records and their warnings; :class:`InvalidInputError` names
        every value that breaks an error rule (every rule when the model is ``strict``).
        Joined fields a record lacks are filled from the package's join tables first."""
        records = enrich_records(self._joins, records)
        columns, problems = columns_from_records(self.signature, records, strict=self.strict)
        return Checked(columns, record_warnings(require_valid(problems), len(records)))

    def check_columns(self, lists: Mapping[str, Sequence[Any]], *,
                      text_source: bool = False) -> Checked:
        """Typed columns of valid field lists and their warnings; :class:`InvalidInputError`
        names every value that breaks an error rule."""
        lists = enrich_lists(self._joins, lists)
        columns, problems = columns_from_lists(self.signature, lists, text_source=text_source,
                                               strict=self.strict)
        rows = len(next(iter(columns.values()))) if columns else 0
        return Checked(columns, record_warnings(require_valid(problems), rows))

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


def load(directory: Path | str, *, threads: int | None = None,
         strict: bool = False) -> LoadedModel:
    """Verify and load the model package in ``directory``.

    Raises :class:`~mlstrata.runtime.manifest.PackageIntegrityError` when a file does not match its
    sha256, :class:`~mlstrata.runtime.signature.SignatureError` for a bad signature. ``threads``
    caps onnxruntime's intra-op threads (1 suits a server answering single records); ``strict``
    refuses values that break warn rules too.
    """
    path = Path(directory)
    manifest = verify_package(path)
    signature = Signature.from_file(path / SIGNATURE_FILE)
    return LoadedModel(path, manifest, signature, open_session(path / MODEL_FILE, threads),
                       strict=strict)


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
