"""No prediction leaves the runtime unless it is a finite number.

A model can answer NaN or infinity for a record whose numbers lie far outside what it was trained
on — a naive Bayes' likelihoods of ``1e300`` are zero for every class, a float32 graph overflows
— and the class chosen from NaN probabilities is made up. :func:`require_finite` checks every
float output of a scoring call (one ``np.isfinite`` per output array, microseconds) and raises
:class:`NonFinitePredictionError`, an :class:`~mlstrata.runtime.inputs.InvalidInputError` whose
problems name each such record and the fields that drove it out of range:

- the numbers of the record that lie outside the range the training rows covered (the
  signature's ``training_min``/``training_max``);
- when none does (or the package carries no training ranges), every number the record has, since
  only their combination is left to blame; a record without numbers is named with field ``*``.

The REST and gRPC servers answer it as a 422 / ``INVALID_ARGUMENT`` like any refused value, batch
scoring moves the records to the rejects with the same messages, and the model wheel raises it.

>>> from mlstrata.runtime.signature import InputField, Signature
>>> sig = Signature("m@1", "regression", "y", (InputField("x", "float", training_min=0.0,
...                 training_max=10.0),), (), (), ())
>>> class Answers:  # what LoadedModel.score produced
...     values = np.array([1.0, np.nan])
...     def float_outputs(self): return [self.values.reshape(-1, 1)]
>>> require_finite(sig, {"x": np.array([5.0, 1e300])}, Answers())
Traceback (most recent call last):
mlstrata.runtime.outputs.NonFinitePredictionError: record 1, field 'x': 1e+300 is above the \
training range (0 to 10) and the model answers NaN for this record; send values within the \
training range
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .inputs import Columns, FieldProblem, InvalidInputError, _show
from .signature import InputField, Signature

if TYPE_CHECKING:
    from .model import Predictions

__all__ = ["NonFinitePredictionError", "require_finite"]


class NonFinitePredictionError(InvalidInputError):
    """The model answered NaN or infinity for some records; ``problems`` names them and their
    fields (rows count from 0 within the scored columns). ``predictions`` keeps every record's
    answer, so the finite ones stay usable (a server splits a merged batch back per request)."""

    def __init__(self, problems: Sequence[FieldProblem], predictions: Predictions | None) -> None:
        super().__init__(problems)
        self.predictions = predictions

    @property
    def rows(self) -> list[int]:
        """The records whose prediction is not finite, in order."""
        return sorted({problem.row for problem in self.problems})


def require_finite(signature: Signature, columns: Columns, predictions: Predictions) -> None:
    """Raise :class:`NonFinitePredictionError` when any output of any record is not finite."""
    arrays = predictions.float_outputs()
    if all(np.isfinite(array).all() for array in arrays):
        return
    nan = np.zeros(len(arrays[0]), dtype=bool)
    finite = np.ones(len(arrays[0]), dtype=bool)
    for array in arrays:
        nan |= np.isnan(array).any(axis=1)
        finite &= np.isfinite(array).all(axis=1)
    problems = [problem for row in np.flatnonzero(~finite).tolist()
                for problem in _record_problems(signature, columns, row,
                                                "NaN" if nan[row] else "infinity")]
    raise NonFinitePredictionError(problems, predictions)


def _record_problems(signature: Signature, columns: Columns, row: int,
                     what: str) -> list[FieldProblem]:
    """The fields to blame for record ``row``'s non-finite answer (see the module docstring)."""
    numbers = [(field, float(columns[field.name][row])) for field in signature.inputs
               if field.is_numeric and field.logical_type != "boolean"
               and field.name in columns and not np.isnan(columns[field.name][row])]
    outside = [(field, value) for field, value in numbers if _side(field, value)]
    if outside:
        return [FieldProblem(row, field.name, f"{_show(value)} is {_side(field, value)} the "
                             f"training range ({_range(field)}) and the model answers {what} "
                             "for this record; send values within the training range")
                for field, value in outside]
    if not numbers:
        return [FieldProblem(row, "*", f"the model answers {what} for this record; check its "
                             "values")]
    return [FieldProblem(row, field.name, f"the model answers {what} for this record and none of "
                         f"its numbers is outside the training range, so {_show(value)} is a "
                         "suspect with the others; check the record's numbers"
                         if _has_range(field) else
                         f"the model answers {what} for this record, which has {_show(value)} "
                         "here (the package carries no training range to compare it with); "
                         "check the record's numbers")
            for field, value in numbers]


def _side(field: InputField, value: float) -> str:
    """``"above"``/``"below"`` when ``value`` lies outside the field's training range, else ""."""
    if field.training_max is not None and value > field.training_max:
        return "above"
    if field.training_min is not None and value < field.training_min:
        return "below"
    return ""


def _has_range(field: InputField) -> bool:
    return field.training_min is not None or field.training_max is not None


def _range(field: InputField) -> str:
    low, high = field.training_min, field.training_max
    return (f"{'-inf' if low is None else _show(low)} to "
            f"{'inf' if high is None else _show(high)}")
