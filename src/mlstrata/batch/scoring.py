"""Score Arrow record batches with a loaded model: convert, check, reject, predict.

:func:`score_batches` is the one scoring loop of batch prediction, precompute and the Spark
engine. For each batch it

1. fills the joined columns the batch lacks from the package's join tables (:mod:`.joining`),
   so raw records are enriched as the lean runtime enriches them;
2. converts every model input from its Arrow column to the runtime's typed column (float64 with
   NaN, object with None, datetime64[s] with NaT) with vectorised Arrow casts — text cells such as
   a CSV's are parsed as the signature's type; a column whose cast fails falls back to the
   runtime's per-value conversion, which names each bad value;
3. checks the contract's rules with :func:`mlstrata.runtime.inputs.check_rules` — a text column
   with ``allowed`` values is dictionary-encoded by Arrow first, so that each distinct value is
   decoded and checked once, however many rows repeat it; a ``pattern`` is first matched by
   Arrow's RE2 kernel (:mod:`.patterns`), and the runtime checks only the rows RE2 leaves;
4. scores the valid rows with :meth:`~mlstrata.runtime.model.LoadedModel.score` and returns them
   as :class:`ScoredBatch` ``scored`` (keys, ``prediction``, ``probability_<class>``,
   ``warnings``, ``model``, ``model_version``, ``run_id``), and the invalid rows as given plus
   ``reject_reason``. A row the model answers NaN or infinity for is invalid too: it is rejected
   with the runtime's reason (the fields outside the training range, see
   :mod:`mlstrata.runtime.outputs`), never scored.

Only rules of severity ``error`` make a row invalid. A row that breaks ``warn`` rules (an
observed range, a category set) is scored, and its ``warnings`` text names each one as
``field 'num_credit_lines' (max): 14 is above the maximum 13`` (``; ``-separated; empty when
none). ``ScoredBatch.warned`` counts those rows.

Row numbers in reasons and errors count input rows from 1 across batches.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from ..runtime.inputs import (
    Columns,
    ContractWarning,
    FieldProblem,
    InvalidInputError,
    RecordWarnings,
    check_rules,
    record_warnings,
)
from ..runtime.inputs import columns_from_lists as _runtime_columns
from ..runtime.model import LoadedModel, Predictions
from ..runtime.outputs import NonFinitePredictionError
from ..runtime.signature import InputField, Signature, class_key
from .joining import join_batch
from .patterns import re2_form, surely_matching

__all__ = ["REJECT_REASON", "WARNINGS", "InvalidRowsError", "ScoredBatch", "ScoredDetail",
           "checked_columns", "output_schema", "score_batches"]

REJECT_REASON = "reject_reason"
WARNINGS = "warnings"
OnInvalid = Literal["reject", "fail"]


class InvalidRowsError(InvalidInputError):
    """Input rows break the model's contract (``on_invalid="fail"``); rows count from 1."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__(problems)
        shown = "; ".join(f"row {p.row}, field {p.field!r}: {p.message}"
                          for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        self.args = (f"invalid input: {shown}{more}; fix the rows or pass --on-invalid reject "
                     "to set them aside",)


@dataclass(frozen=True)
class ScoredBatch:
    """One input batch after scoring: the scored rows, the rejected rows, how many came in."""

    scored: pa.Table
    rejects: pa.Table
    rows_in: int
    detail: ScoredDetail | None = None
    """What the prediction log records of the scored rows (see :class:`ScoredDetail`)."""

    @property
    def warned(self) -> int:
        """How many scored rows carry warnings."""
        if self.scored.num_rows == 0:
            return 0
        return int(pc.sum(pc.not_equal(self.scored.column(WARNINGS), "")).as_py() or 0)


@dataclass(frozen=True)
class ScoredDetail:
    """The scored rows as the runtime saw them, for the prediction log: the batch's typed
    ``columns`` (every row), the batch positions of the scored ``rows``, their ``predictions``
    and the ``warned`` problems (warn rules broken, by batch position)."""

    columns: Columns
    rows: np.ndarray[Any, Any]
    predictions: Predictions | None
    warned: list[FieldProblem]


def score_batches(model: LoadedModel, batches: Iterable[pa.RecordBatch], *,
                  keys: Sequence[str] = (), on_invalid: OnInvalid = "reject",
                  run_id: str | None = None) -> Iterator[ScoredBatch]:
    """Score each batch (see the module docstring); lazily, one batch in memory at a time.

    ``keys`` are input columns copied to the output (an id to join predictions back on).
    ``on_invalid="fail"`` raises :class:`InvalidRowsError` (an
    :class:`~mlstrata.runtime.inputs.InvalidInputError`) at the first batch with an invalid row,
    naming the rows by their input number; ``"reject"`` moves them to
    ``rejects``. ``run_id`` labels every output row (a new random id when None).
    """
    if on_invalid not in ("reject", "fail"):
        raise DataError(f"on_invalid must be 'reject' or 'fail', got {on_invalid!r}")
    run = run_id or uuid.uuid4().hex
    first_row = 1
    for batch in batches:
        yield _score_one(model, batch, keys, on_invalid, run, first_row)
        first_row += batch.num_rows


def output_schema(model: LoadedModel, key_fields: Sequence[pa.Field]) -> pa.Schema:
    """The schema of ``ScoredBatch.scored``: keys, prediction, probabilities, warnings, model,
    run id."""
    classes = model.signature.classes or []
    prediction = _prediction_type(model.signature)
    return pa.schema([*key_fields, pa.field("prediction", prediction),
                      *(pa.field(f"probability_{class_key(c)}", pa.float64()) for c in classes),
                      pa.field(WARNINGS, pa.string()),
                      pa.field("model", pa.string()), pa.field("model_version", pa.int64()),
                      pa.field("run_id", pa.string())])


def _score_one(model: LoadedModel, batch: pa.RecordBatch, keys: Sequence[str],
               on_invalid: OnInvalid, run_id: str, first_row: int) -> ScoredBatch:
    signature = model.signature
    joined, unjoined = join_batch(model.joins, batch)
    _require_columns(joined, [*keys, *signature.input_names])
    columns, found = checked_columns(signature, joined)
    found = unjoined + found
    typed = columns
    problems = [p for p in found if p.severity == "error" or model.strict]
    warned = [p for p in found if p.severity == "warn" and not model.strict]
    if problems and on_invalid == "fail":
        _fail(problems, first_row)
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[[p.row for p in problems]] = False
    if problems:
        columns = {name: values[keep] for name, values in columns.items()}
    predictions = None
    if keep.any():
        predictions, unscorable = _predict(model, columns, np.flatnonzero(keep))
        if unscorable and on_invalid == "fail":
            _fail(unscorable, first_row)
        keep[[p.row for p in unscorable]] = False
        problems += unscorable
    kept_keys, rejected = batch.select(list(keys)), batch.slice(0, 0)
    if problems:
        kept_keys, rejected = kept_keys.filter(pa.array(keep)), batch.filter(pa.array(~keep))
    if predictions is not None:
        predictions = predictions.with_warnings(_kept_warnings(warned, np.flatnonzero(keep)))
    scored = _scored_table(model, kept_keys, predictions, run_id)
    return ScoredBatch(scored, _rejects(rejected, _reasons(problems)), batch.num_rows,
                       ScoredDetail(typed, np.flatnonzero(keep), predictions, warned))


def _predict(model: LoadedModel, columns: Columns, rows: np.ndarray[Any, Any]
             ) -> tuple[Predictions | None, list[FieldProblem]]:
    """The predictions of the records the model answers with finite numbers, and the problems
    of the others (``rows``: each column entry's row in the batch)."""
    try:
        return model.score(columns), []
    except NonFinitePredictionError as exc:
        if exc.predictions is None:
            raise
        finite = np.ones(len(rows), dtype=bool)
        finite[exc.rows] = False
        kept = exc.predictions.take(finite) if finite.any() else None
        return kept, [dataclasses.replace(p, row=int(rows[p.row])) for p in exc.problems]


def _fail(problems: Sequence[FieldProblem], first_row: int) -> NoReturn:
    """Raise :class:`InvalidRowsError` naming each bad field once, rows counted from 1."""
    first = {(p.row, p.field): p for p in reversed(problems)}
    raise InvalidRowsError(sorted(
        (dataclasses.replace(p, row=first_row + p.row) for p in first.values()),
        key=lambda p: (p.row, p.field)))


def _kept_warnings(warned: Sequence[FieldProblem],
                   kept: np.ndarray[Any, Any]) -> RecordWarnings | None:
    """The warnings of each scored row (``kept``: their rows in the batch, in order)."""
    position = {row: index for index, row in enumerate(kept.tolist())}
    found = [dataclasses.replace(p, row=position[p.row]) for p in warned if p.row in position]
    return record_warnings(found, len(kept))


def _warning_text(warnings: Sequence[ContractWarning]) -> str:
    """One row's ``warnings`` column: ``field 'x' (max): ...; field 'y' (allowed): ...``."""
    return "; ".join(f"field {w.field!r} ({w.rule}): {w.message}" for w in warnings)


def _rejects(rejected: pa.RecordBatch, reasons: dict[int, str]) -> pa.Table:
    """The rejected input rows as given, plus the reason of each (in row order)."""
    reason_list = [reasons[row] for row in sorted(reasons)]
    return pa.Table.from_batches([rejected]).append_column(
        REJECT_REASON, pa.array(reason_list, type=pa.string()))


def _require_columns(batch: pa.RecordBatch, names: Sequence[str]) -> None:
    present = set(batch.schema.names)
    missing = [name for name in dict.fromkeys(names) if name not in present]
    if missing:
        raise DataError(f"the input has no column {', '.join(repr(m) for m in missing)} that the "
                        f"model needs; its columns are: {', '.join(batch.schema.names)}")


def _reasons(problems: Sequence[FieldProblem]) -> dict[int, str]:
    """Row → ``field 'x': ...; field 'y': ...`` (one message per field, the first found)."""
    by_row: dict[int, dict[str, str]] = defaultdict(dict)
    for problem in problems:
        by_row[problem.row].setdefault(problem.field, problem.message)
    return {row: "; ".join(f"field {name!r}: {message}" for name, message in fields.items())
            for row, fields in by_row.items()}


def _scored_table(model: LoadedModel, kept_keys: pa.RecordBatch,
                  predictions: Predictions | None, run_id: str) -> pa.Table:
    """The output rows: the key columns of the scored rows, then what the model said and the
    rows' contract warnings (``predictions.warnings``)."""
    schema = output_schema(model, list(kept_keys.schema))
    rows = kept_keys.num_rows
    if predictions is None:
        return schema.empty_table()
    values = predictions.values if predictions.values is not None else predictions.labels
    arrays: list[pa.Array] = list(kept_keys.columns)
    arrays.append(pa.array(values, type=schema.field("prediction").type))
    if predictions.probabilities is not None:
        arrays += [pa.array(predictions.probabilities[:, i], type=pa.float64())
                   for i in range(predictions.probabilities.shape[1])]
    arrays.append(pa.array(list(map(_warning_text, predictions.warnings)), type=pa.string()))
    arrays += [pa.repeat(pa.scalar(model.name, pa.string()), rows),
               pa.repeat(pa.scalar(model.version, pa.int64()), rows),
               pa.repeat(pa.scalar(run_id, pa.string()), rows)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _prediction_type(signature: Signature) -> pa.DataType:
    if signature.task == "regression":
        return pa.float64()
    classes = signature.classes or []
    if classes and all(isinstance(c, str) for c in classes):
        return pa.string()
    if classes and all(isinstance(c, bool) for c in classes):
        return pa.bool_()
    if classes and all(isinstance(c, float) for c in classes):
        return pa.float64()
    return pa.int64()


# -- Arrow -> runtime columns -------------------------------------------------------------------


def checked_columns(signature: Signature,
                    batch: pa.RecordBatch) -> tuple[Columns, list[FieldProblem]]:
    """Typed runtime columns for the model's inputs in ``batch``, and every value that is of the
    wrong type or breaks a rule of the contract (in field order, like the runtime's)."""
    columns: Columns = {}
    problems: dict[str, list[FieldProblem]] = {name: [] for name in signature.input_names}
    unchecked = []
    for field in signature.inputs:
        array = batch.column(field.name)
        if _is_text(array.type) and field.logical_type == "text":
            columns[field.name], problems[field.name] = _text_column(signature, field, array)
            continue
        converted = _fast(field, array)
        if converted is None:  # the runtime's conversion checks the rules as it goes
            converted, problems[field.name] = _per_value(signature, field, array)
        else:
            unchecked.append(field.name)
        columns[field.name] = converted
    for problem in check_rules(signature, columns, only=unchecked):
        problems[problem.field].append(problem)
    return columns, [problem for found in problems.values() for problem in found]


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _fast(field: InputField, array: pa.Array) -> np.ndarray[Any, Any] | None:
    """The vectorised conversion, or None when the column needs value-by-value checking."""
    kind = array.type
    if _is_text(kind):
        return _parsed_text(field, array)
    if field.is_numeric and _is_number(kind):
        return _numbers(field, array)
    if field.is_date and (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
        return _stamps(array)
    if pa.types.is_null(kind):
        return _all_missing(field, len(array))
    return None


def _text_column(signature: Signature, field: InputField,
                 array: pa.Array) -> tuple[np.ndarray[Any, Any], list[FieldProblem]]:
    """A text field as an object array (None where missing or blank), checked against its rules.

    With ``allowed`` values, Arrow's dictionary encoding finds the distinct values; each is
    decoded to one Python string shared by its rows and checked once. A ``pattern`` alone is
    matched by Arrow's RE2 kernel when :func:`.patterns.re2_form` allows it; the runtime checks
    the rows RE2 does not match.
    """
    blank = pc.equal(array, "")
    if pc.any(blank).as_py():
        array = pc.if_else(blank, pa.scalar(None, array.type), array)
    anchored = re2_form(field.pattern) if field.pattern is not None else None
    if field.allowed is not None or (field.pattern is not None and anchored is None):
        return _checked_levels(signature, field, array)
    values: np.ndarray[Any, Any] = array.to_numpy(zero_copy_only=False).astype(object,
                                                                               copy=False)
    if anchored is None:  # no rule but nullability
        return values, check_rules(signature, {field.name: values}, only=(field.name,))
    unsure = np.flatnonzero(~surely_matching(array, anchored).to_numpy(zero_copy_only=False))
    found = check_rules(signature, {field.name: values[unsure]}, only=(field.name,))
    return values, [dataclasses.replace(p, row=int(unsure[p.row])) for p in found]


def _checked_levels(signature: Signature, field: InputField,
                    array: pa.Array) -> tuple[np.ndarray[Any, Any], list[FieldProblem]]:
    """A text column decoded and checked once per distinct value (see :func:`_text_column`)."""
    encoded = pc.dictionary_encode(array)
    levels = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    codes = encoded.indices.fill_null(len(levels) - 1).to_numpy(zero_copy_only=False)
    by_level: dict[int, list[FieldProblem]] = defaultdict(list)
    for problem in check_rules(signature, {field.name: levels}, only=(field.name,)):
        by_level[problem.row].append(problem)
    bad_level = np.zeros(len(levels), dtype=bool)
    bad_level[list(by_level)] = True
    problems = [dataclasses.replace(problem, row=int(row))
                for row in np.flatnonzero(bad_level[codes])
                for problem in by_level[int(codes[row])]]
    return levels[codes], problems


def _parsed_text(field: InputField, array: pa.Array) -> np.ndarray[Any, Any] | None:
    """Text cells (a CSV's) of a number or date field parsed with Arrow; None when one fails."""
    trimmed = pc.utf8_trim_whitespace(array)
    cleaned = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    try:
        if field.is_numeric:
            return _numbers(field, pc.cast(cleaned, pa.float64()))
        return _stamps(pc.cast(cleaned, pa.timestamp("s")))
    except pa.ArrowInvalid:
        return None


def _numbers(field: InputField, array: pa.Array) -> np.ndarray[Any, Any] | None:
    values = np.asarray(pc.fill_null(pc.cast(array, pa.float64()), math.nan).to_numpy(),
                        dtype=np.float64)
    finite = values[np.isfinite(values)]
    if field.logical_type == "integer" and not np.all(finite == np.floor(finite)):
        return None
    if field.logical_type == "boolean" and not np.all((finite == 0.0) | (finite == 1.0)):
        return None
    return values


def _stamps(array: pa.Array) -> np.ndarray[Any, Any]:
    if pa.types.is_timestamp(array.type) and array.type.tz is not None:
        array = array.cast(pa.timestamp(array.type.unit))
    seconds = pc.cast(array, pa.timestamp("s"), safe=False)
    return np.asarray(seconds.to_numpy(zero_copy_only=False), dtype="datetime64[s]")


def _all_missing(field: InputField, rows: int) -> np.ndarray[Any, Any]:
    if field.is_numeric:
        return np.full(rows, math.nan)
    if field.is_date:
        return np.full(rows, np.datetime64("NaT"), dtype="datetime64[s]")
    return np.full(rows, None, dtype=object)


def _per_value(signature: Signature, field: InputField,
               array: pa.Array) -> tuple[np.ndarray[Any, Any], list[FieldProblem]]:
    """The runtime's own conversion of one column, value by value, naming every bad value."""
    values = array.to_pylist()
    if pa.types.is_date(array.type) or pa.types.is_timestamp(array.type):
        values = [None if v is None else v.isoformat() for v in values]
    one = dataclasses.replace(signature, inputs=(field,))
    columns, problems = _runtime_columns(one, {field.name: values}, text_source=True)
    return columns[field.name], problems


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind) or pa.types.is_decimal(kind))
