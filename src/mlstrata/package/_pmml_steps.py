"""Rewrite a fitted mlstrata pipeline into steps the JPMML converter knows, without refitting.

JPMML-SkLearn (the Java side of sklearn2pmml) reads a pickled pipeline and knows scikit-learn's
and sklearn2pmml's classes, not mlstrata's own transformers. :func:`translate` walks the fitted
pipeline and replaces each mlstrata step by an equivalent, already-fitted one, copying the
learned state:

- ``DateExpander`` → per date column a ``DateDomain``/``DateTimeDomain`` → days since 1970 (and
  seconds since midnight) → one ``ExpressionTransformer`` per part: the calendar arithmetic of
  ``mlstrata.runtime.dates`` written with ``math.floor`` (a missing date gives missing parts);
- ``AsFloat`` → nothing (PMML numbers are doubles already);
- ``NumericImputer`` → one expression per column filling the fitted statistic;
- ``MathTransform`` → one expression per column (``numpy.log1p`` / ``numpy.sqrt`` of the value
  clipped at 0, or its square);
- ``CheckedPowerTransformer`` → Box-Cox expressions with the fitted lambdas, then its fitted
  ``StandardScaler``;
- ``MissingFlags`` → ``MissingIndicator`` on the flagged columns (dropped when there are none);
- ``CategoryLevels`` → ``CategoricalDomain`` whose valid values are the encoder's categories,
  missing values (None, "", NaN) replaced by ``(missing)`` (or ``(other)`` when training had
  none) and any other value by ``(other)``;
- ``SelectAtMostK`` → a column selection by the indices it kept.

Every derived field gets a unique name (``Alias``): PMML requires it. The column plumbing
(``ColumnTransformer``, nested ``Pipeline``) is rebuilt around the translated steps;
scikit-learn's own fitted steps (scalers, encoders, discretizers, estimators) are kept as they
are. An mlstrata step with no translation raises :class:`~mlstrata.package.pmml.PmmlExportError`
naming it; what the Java converter refuses is reported by ``export_pmml``.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..model._transformers import (
    MISSING_LEVEL,
    OTHER_LEVEL,
    AsFloat,
    CategoryLevels,
    CheckedPowerTransformer,
    DateExpander,
    MathTransform,
    MissingFlags,
    NumericImputer,
    SelectAtMostK,
)
from ..model._xgboost import LabelledXGBClassifier
from ..runtime.dates import date_feature_names, date_part_keys
from .pmml import PmmlExportError

__all__ = ["translate"]

_EPOCH_YEAR = 1970
_MISSING_DATE = datetime.datetime(1800, 1, 1)
"""Stands in for a missing date inside the PMML document (taken as missing again right away)."""
_MISSING_DAY = (_MISSING_DATE - datetime.datetime(_EPOCH_YEAR, 1, 1)).days
_PERIODS = {"month": 12.0, "dow": 7.0, "hour": 24.0}
_ADVICE = "package without --pmml (ONNX and the native model are unaffected)"

# Howard Hinnant's days-to-civil algorithm on the day number since 1970-01-01, in the subset of
# Python that JPMML translates to PMML (assignments, if-else expressions, math.floor).
_CIVIL = """def _civil_{part}(s):
    z = math.floor(s / 86400.0) + 719468
    era = math.floor(z / 146097)
    doe = z - era * 146097
    leap = math.floor(doe / 1460) - math.floor(doe / 36524) + math.floor(doe / 146096)
    yoe = math.floor((doe - leap) / 365)
    doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    mp = math.floor((5 * doy + 2) / 153)
    m = mp + 3 if mp < 10 else mp - 9
    return {result}
"""
_CIVIL_RESULTS = {
    "year": "yoe + era * 400 + (1 if m <= 2 else 0)",
    "month": "m",
    "day": "doy - math.floor((153 * mp + 2) / 5) + 1",
}
_CLOCK = {
    "dayofweek": "(math.floor(X[0] / 86400.0) + 3.0) % 7.0",
    "hour": "math.floor((X[0] - 86400.0 * math.floor(X[0] / 86400.0)) / 3600.0)",
}
_MATH = {
    "log": "numpy.log1p(X[{i}] if X[{i}] > 0.0 else 0.0)",
    "sqrt": "numpy.sqrt(X[{i}] if X[{i}] > 0.0 else 0.0)",
    "square": "X[{i}] * X[{i}]",
}


def translate(pipeline: Any, date_types: Mapping[str, str]) -> list[tuple[str, Any]]:
    """The steps of a ``PMMLPipeline`` equivalent to fitted ``pipeline`` (raw columns in).

    ``date_types`` maps each date column to ``date`` or ``timestamp`` (its PMML data type).
    """
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        raise PmmlExportError(f"a {type(pipeline).__name__} is not an mlstrata model pipeline; "
                              f"{_ADVICE}")
    pipeline = copy.deepcopy(pipeline)  # sklearn2pmml annotates the objects it converts
    *front, (model_name, model) = pipeline.steps
    names = [str(n) for n in pipeline.feature_names_in_]
    steps: list[tuple[str, Any]] = []
    for name, step in front:
        if isinstance(step, DateExpander):
            steps.append(("dates", _dates(step, names, date_types)))
            names = [str(n) for n in step.get_feature_names_out()]
        else:
            steps += _features(name, step, names)
    model = _known_to_jpmml(model)
    _check_estimator(model_name, model)
    return [*steps, (model_name, model)]


def _known_to_jpmml(model: Any) -> Any:
    """``model`` with mlstrata's :class:`LabelledXGBClassifier` (in an ensemble too) turned back
    into the ``XGBClassifier`` JPMML reads, its labels given as ``pmml_classes_`` (sklearn2pmml's
    attribute for a classifier's labels; XGBoost itself knows only 0..n-1)."""
    from xgboost import XGBClassifier

    if isinstance(model, LabelledXGBClassifier):
        labels = model.classes_
        model.__class__ = XGBClassifier
        model.pmml_classes_ = labels
    for member in getattr(model, "estimators_", None) or []:
        _known_to_jpmml(member)
    return model


def _features(name: str, step: Any, names: list[str]) -> list[tuple[str, Any]]:
    """The ``features`` step: a ColumnTransformer, optionally followed by a selection."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(step, ColumnTransformer):
        return [(name, _columns(step, names))]
    if isinstance(step, Pipeline):
        out: list[tuple[str, Any]] = []
        for inner_name, inner in step.steps:
            if isinstance(inner, SelectAtMostK):
                out.append((inner_name, _selection(inner)))
            else:
                out += _features(inner_name, inner, names)
        return out
    raise _unsupported(name, step)


def _columns(step: Any, names: list[str]) -> Any:
    """A fitted ColumnTransformer with each branch translated (columns named by position)."""
    position = {n: i for i, n in enumerate(names)}
    branches: list[tuple[str, Any, list[int]]] = []
    for branch, transformer, columns in step.transformers_:
        if isinstance(transformer, str):
            if transformer == "drop":
                continue
            raise _unsupported(branch, transformer)
        selected_names = _column_names(columns, names)
        if isinstance(transformer, MissingFlags):  # JPMML's MissingIndicator flags all inputs
            selected_names = [selected_names[int(i)] for i in transformer.columns_]
        selected = [position[c] for c in selected_names]
        translated = _branch(branch, transformer, selected_names)
        if translated is not None:
            branches.append((branch, translated, selected))
    return _fitted_column_transformer(branches, names)


def _column_names(columns: Any, names: Sequence[str]) -> list[str]:
    values = list(np.atleast_1d(columns))
    if values and isinstance(values[0], (bool, np.bool_)):
        return [names[i] for i, keep in enumerate(values) if keep]
    return [names[int(v)] if isinstance(v, (int, np.integer)) else str(v) for v in values]


def _branch(name: str, transformer: Any, columns: list[str]) -> Any:
    """The translation of one branch reading ``columns``; None when it produces no columns
    (missing flags of a training set without missing values)."""
    from sklearn.pipeline import Pipeline

    if isinstance(transformer, MissingFlags):
        return _missing_flags(transformer)
    inner = transformer.steps if isinstance(transformer, Pipeline) else [(name, transformer)]
    steps = []
    for k, (step_name, step) in enumerate(inner):
        following = inner[k + 1][1] if k + 1 < len(inner) else None
        label = f"{name}.{step_name}" if isinstance(transformer, Pipeline) else name
        translated = _step(label, step, columns, following)
        if translated is not None:
            steps.append((step_name, translated))
    return _pipeline(steps) if steps else "passthrough"


def _step(name: str, step: Any, columns: list[str], following: Any = None) -> Any:
    """One fitted transformer as a JPMML-known fitted transformer (None: leave it out).

    ``columns`` name its inputs (for the names of derived fields); ``following`` is the next
    step of the same branch: the encoder after ``CategoryLevels``."""
    if isinstance(step, AsFloat):
        return None
    if isinstance(step, NumericImputer):
        return _imputer(step, columns)
    if isinstance(step, CheckedPowerTransformer):
        return _box_cox(step, columns)
    if isinstance(step, MathTransform):
        return _math(step, columns)
    if isinstance(step, CategoryLevels):
        return _levels(step, getattr(following, "categories_", None))
    if type(step).__module__.startswith("mlstrata."):
        raise _unsupported(name, step)
    return step


def _imputer(step: NumericImputer, columns: list[str]) -> Any:
    """One expression per column filling a missing value with the fitted statistic.

    Not a ``SimpleImputer``: JPMML writes that as the input field's missing-value replacement,
    which every other use of the field then sees too, so the missing flags would never fire.
    """
    from sklearn2pmml.preprocessing import ExpressionTransformer

    return _union([(f"imputed({column})", ExpressionTransformer(
        f"{float(value)!r} if pandas.isnull(X[{i}]) else X[{i}]"))
        for i, (column, value) in enumerate(zip(columns, step.statistics_, strict=True))])


def _box_cox(step: CheckedPowerTransformer, columns: list[str]) -> Any:
    """Box-Cox as scipy computes it (``expm1(lambda * log(x)) / lambda``), then the fitted
    standardization. JPMML's own PowerTransformer uses ``(x ** lambda - 1) / lambda``, which
    differs in the last bits, enough to move a value that sits on a tree's split threshold."""
    from sklearn2pmml.preprocessing import ExpressionTransformer

    if step.method != "box-cox":
        raise _unsupported("boxcox", step)
    parts = _union([(f"boxcox({column})", ExpressionTransformer(
        f"numpy.log(X[{i}])" if abs(lam) < 1e-19
        else f"numpy.expm1({float(lam)!r} * numpy.log(X[{i}])) / {float(lam)!r}"))
        for i, (column, lam) in enumerate(zip(columns, step.lambdas_, strict=True))])
    return _pipeline([("boxcox", parts), ("scale", step._scaler)]) if step.standardize else parts


def _math(step: MathTransform, columns: list[str]) -> Any:
    """One expression per column (``columns`` name them: ``log(income)``)."""
    from sklearn2pmml.preprocessing import ExpressionTransformer

    template = _MATH[step.func]
    return _union([(f"{step.func}({column})", ExpressionTransformer(template.format(i=i)))
                   for i, column in enumerate(columns)])


def _levels(step: CategoryLevels, categories: Sequence[Any] | None) -> Any:
    """A categorical domain per column: missing values renamed ``(missing)`` when that is a kept
    level (else ``(other)``), values that are not kept renamed ``(other)``. The valid values are
    the encoder's ``categories`` (the kept levels, plus ``(other)`` when training had any)."""
    from sklearn2pmml.decoration import CategoricalDomain, MultiDomain

    domains = []
    for j, levels in enumerate(step.levels_):
        valid = [str(v) for v in categories[j]] if categories is not None else list(levels)
        missing = MISSING_LEVEL if MISSING_LEVEL in levels else OTHER_LEVEL
        domain = CategoricalDomain(
            missing_values="", missing_value_treatment="as_value",
            missing_value_replacement=missing, invalid_value_treatment="as_value",
            invalid_value_replacement=OTHER_LEVEL, data_values=[valid])
        domains.append(_declare(domain, np.asarray(valid, dtype=object)))
    return domains[0] if len(domains) == 1 else MultiDomain(domains)


def _declare(domain: Any, values: np.ndarray[Any, Any]) -> Any:
    """``domain`` in its fitted state. Its data values are given as parameters (or it has none),
    so fitting on ``values`` only records their type: nothing is learned from data."""
    return domain.fit(values.reshape(-1, 1))


def _missing_flags(step: MissingFlags) -> Any:
    """A ``MissingIndicator`` over the flagged columns only (the branch is given just those)."""
    from sklearn.impute import MissingIndicator

    flagged = len(step.columns_)
    if flagged == 0:
        return None
    indicator = MissingIndicator(features="all", error_on_new=False)
    indicator.features_ = np.arange(flagged, dtype=np.intp)
    indicator.n_features_in_ = flagged
    indicator._n_features = flagged
    indicator._precomputed = False
    return indicator


def _selection(step: SelectAtMostK) -> Any:
    """The columns ``SelectAtMostK`` kept, as a pass-through ColumnTransformer."""
    support = step.get_support()
    kept = [int(i) for i in np.flatnonzero(support)]
    return _fitted_column_transformer([("kept", "passthrough", kept)],
                                      [f"x{i}" for i in range(len(support))])


def _dates(step: DateExpander, names: list[str], date_types: Mapping[str, str]) -> Any:
    """The date expansion: date columns become their parts, other columns pass through, in the
    order ``DateExpander`` gives them."""
    branches: list[tuple[str, Any, list[int]]] = []
    for i, name in enumerate(names):
        if name in step.columns:
            branches.append((name, _date_parts(name, list(step.parts), date_types.get(name)),
                             [i]))
        else:
            branches.append((name, "passthrough", [i]))
    return _fitted_column_transformer(branches, names)


def _date_parts(column: str, parts: list[str], kind: str | None) -> Any:
    """Date ``column`` (PMML ``date`` or ``dateTime`` by ``kind``) → seconds since 1970 → one
    expression per part, named like ``DateExpander``'s output (``opened_month``).

    PMML date functions fail on a missing date, so the domain stands in ``_MISSING_DATE`` for it
    and the seconds turn back into missing there (every part is then missing, as in
    ``expand_dates``). Seconds are days * 86400 + seconds since midnight: PMML's own
    ``dateSecondsSinceYear`` is a 32-bit integer and overflows outside 1901-2038.
    """
    from sklearn2pmml.decoration import DateDomain, DateTimeDomain
    from sklearn2pmml.preprocessing import (
        DaysSinceYearTransformer,
        ExpressionTransformer,
        SecondsSinceMidnightTransformer,
    )

    days = DaysSinceYearTransformer(year=_EPOCH_YEAR)
    missing = f"None if X[0] == {_MISSING_DAY} else X[0] * 86400.0"
    if kind == "date":
        domain = _declare(DateDomain(missing_value_treatment="as_value",
                                     missing_value_replacement=_MISSING_DATE.date()),
                          np.array(["1970-01-01"], "datetime64[D]"))
        seconds = [("domain", domain), ("days", days), ("seconds", ExpressionTransformer(missing))]
    else:
        domain = _declare(DateTimeDomain(missing_value_treatment="as_value",
                                         missing_value_replacement=_MISSING_DATE),
                          np.array(["1970-01-01"], "datetime64[s]"))
        clock = _union([("days", days), ("clock", SecondsSinceMidnightTransformer())])
        seconds = [("domain", domain), ("days_clock", clock),
                   ("seconds", ExpressionTransformer(f"{missing} + X[1]"))]
    expressions = [(name, ExpressionTransformer(_part_expression(key)))
                   for name, key in zip(date_feature_names(column, parts), date_part_keys(parts),
                                        strict=True)]
    return _pipeline([*seconds, ("parts", _union(expressions))])


def _part_expression(key: str) -> Any:
    """The PMML-translatable expression of one date part from seconds since 1970 (``X[0]``)."""
    from sklearn2pmml.util import Expression

    expr, defs = _part_source(key)
    guarded = f"None if pandas.isnull(X[0]) else {expr}"  # PMML's floor rejects missing values
    return Expression(guarded, defs) if defs else guarded


def _part_source(key: str) -> tuple[str, list[str]]:
    """``(expression, function definitions)`` of a date part; cyclical parts take the angle of
    the zero-based month, weekday or hour, as ``expand_dates`` does."""
    cycle, _, fn = key.partition("_")
    if fn:
        expr, defs = _part_source("dayofweek" if cycle == "dow" else cycle)
        zero_based = f"(({expr}) - 1)" if cycle == "month" else f"({expr})"
        return f"numpy.{fn}(2.0 * math.pi * {zero_based} / {_PERIODS[cycle]})", defs
    if key in _CIVIL_RESULTS:
        return f"_civil_{key}(X[0])", [_CIVIL.format(part=key, result=_CIVIL_RESULTS[key])]
    return _CLOCK[key], []


def _union(named: list[tuple[str, Any]]) -> Any:
    """Side-by-side one-column transformers, each output field named by an ``Alias`` (derived
    field names must be unique in the document)."""
    from sklearn.pipeline import FeatureUnion
    from sklearn2pmml.decoration import Alias

    return FeatureUnion([(name, Alias(t, name, prefit=True)) for name, t in named])


def _pipeline(steps: list[tuple[str, Any]]) -> Any:
    from sklearn.pipeline import Pipeline

    return Pipeline(steps)


def _fitted_column_transformer(branches: list[tuple[str, Any, list[int]]],
                               names: Sequence[str]) -> Any:
    """A ColumnTransformer in the fitted state JPMML reads (``transformers_``), not refitted.

    ``names`` are its input columns: JPMML names the PMML input fields after the first step's
    ``feature_names_in_``."""
    from sklearn.compose import ColumnTransformer

    transformer = ColumnTransformer(branches, remainder="drop", sparse_threshold=0.0)
    transformer.transformers_ = list(branches)
    transformer.sparse_output_ = False
    transformer.n_features_in_ = len(names)
    transformer.feature_names_in_ = np.asarray(names, dtype=object)
    return transformer


def _check_estimator(name: str, model: Any) -> None:
    """Refuse estimators JPMML cannot express, naming them (most are checked by the converter)."""
    kind = type(model).__name__
    if type(model).__module__.startswith("mlstrata."):
        raise PmmlExportError(f"step '{name}' ({kind}) has no PMML form; {_ADVICE}, or pick "
                              "another model (logistic, tree, random_forest, hist_gb, lightgbm, "
                              "xgboost)")


def _unsupported(name: str, step: Any) -> PmmlExportError:
    kind = step if isinstance(step, str) else type(step).__name__
    return PmmlExportError(f"step '{name}' ({kind}) has no PMML translation; {_ADVICE}")
