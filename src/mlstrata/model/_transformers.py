"""Small scikit-learn transformers the feature pipeline needs, each with an ONNX converter.

scikit-learn has no ONNX-convertible way to take a log, flag missing numbers, or fill missing
text the way a serving request spells it, so these few live here. Each follows the estimator API
(parameters in ``__init__``, learned state in ``fit`` ending in ``_``) and
:func:`register_onnx_converters` teaches skl2onnx to convert them. Conventions the ONNX graph
relies on: numbers arrive as float (or double) tensors with NaN for missing; text arrives as
string tensors with an empty string for missing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import PowerTransformer
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import DataError
from ..runtime.dates import date_feature_names, expand_dates

__all__ = [
    "AsFloat",
    "CategoryLevels",
    "CheckedPowerTransformer",
    "DateExpander",
    "MathTransform",
    "MissingFlags",
    "NumericImputer",
    "SelectAtMostK",
    "anova_f",
    "pearson_f",
    "register_onnx_converters",
]

MISSING_LEVEL = "(missing)"
OTHER_LEVEL = "(other)"
_FUNCS = ("log", "sqrt", "square")
_registered = False


def _as_float(X: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A 2-d float64 array: booleans become 0/1, None and pandas NA become NaN."""
    if hasattr(X, "to_numpy"):
        return np.asarray(X.to_numpy(dtype=np.float64, na_value=np.nan))
    array = np.asarray(X)
    if array.dtype == object:
        array = np.where(np.array([v is None for v in array.ravel()]).reshape(array.shape),
                         np.nan, array)
    return np.asarray(array, dtype=np.float64)


class AsFloat(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Cast columns to float64 (booleans → 0/1, None → NaN); a Cast to the graph's numeric
    type in ONNX, which also mends converters (KBinsDiscretizer's) that emit float32 where
    they declare double."""

    def fit(self, X: Any, y: Any = None) -> AsFloat:
        """Remember the input columns."""
        validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        return self

    def transform(self, X: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
        """``X`` as a float64 array."""
        check_is_fitted(self, "n_features_in_")
        validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        return _as_float(X)


class NumericImputer(SimpleImputer):  # type: ignore[misc]
    """``SimpleImputer`` for numbers whose ONNX form works in double precision too
    (onnxruntime's ``Imputer`` operator takes float32 only)."""


class MathTransform(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """An element-wise transform: ``log`` (log1p of values clipped at 0), ``sqrt`` (of values
    clipped at 0) or ``square``. NaN stays NaN.

    >>> MathTransform("log").fit_transform(np.array([[-1.0], [0.0], [np.e - 1]])).ravel().tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(self, func: str = "log") -> None:
        self.func = func

    def fit(self, X: Any, y: Any = None) -> MathTransform:
        """Check ``func`` and remember the input columns."""
        if self.func not in _FUNCS:
            raise ValueError(f"func must be one of {_FUNCS}, got {self.func!r}")
        validate_data(self, X, ensure_all_finite="allow-nan", reset=True)
        return self

    def transform(self, X: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Apply ``func`` element-wise."""
        check_is_fitted(self, "n_features_in_")
        values = np.asarray(validate_data(self, X, ensure_all_finite="allow-nan", reset=False),
                            dtype=np.float64)
        if self.func == "square":
            return np.asarray(values * values)
        clipped = np.maximum(values, 0.0)
        return np.asarray(np.log1p(clipped) if self.func == "log" else np.sqrt(clipped))


class CategoryLevels(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Text as the levels an encoder should see: missing values (None, NaN, "") become
    ``(missing)``; levels seen in less than ``min_frequency`` of the training rows, beyond the
    ``max_levels - 1`` most frequent ones, or never seen in training become ``(other)``.

    Grouping the rare and unseen levels here (rather than with ``OneHotEncoder``'s
    ``min_frequency``, which skl2onnx cannot convert for one column, and whose ONNX form fails
    on an unseen level) gives an encoder a closed set of levels in both scikit-learn and ONNX.

    >>> X = np.array([["a"], ["a"], ["b"], [None], [""]], dtype=object)
    >>> CategoryLevels(min_frequency=0.3).fit(X).transform(X).ravel().tolist()
    ['a', 'a', '(other)', '(missing)', '(missing)']
    """

    def __init__(self, min_frequency: float = 0.0, max_levels: int | None = None) -> None:
        self.min_frequency = min_frequency
        self.max_levels = max_levels

    def fit(self, X: Any, y: Any = None) -> CategoryLevels:
        """Learn, per column, the levels kept as they are."""
        text = _text(validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True))
        self.levels_ = [self._kept(text[:, j]) for j in range(text.shape[1])]
        return self

    def transform(self, X: Any) -> np.ndarray[Any, np.dtype[np.object_]]:
        """Strings, with missing, rare and unseen levels replaced."""
        check_is_fitted(self, "levels_")
        text = _text(validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False))
        for j, levels in enumerate(self.levels_):
            kept = set(levels)  # hashing: np.isin sorts object arrays, far slower
            text[:, j] = [v if v in kept else OTHER_LEVEL for v in text[:, j]]
        return text

    def _kept(self, column: np.ndarray[Any, Any]) -> list[str]:
        values, counts = np.unique(column.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")
        kept = [v for v in values[order][counts[order] >= self.min_frequency * len(column)]]
        grouped = len(kept) < len(values) or len(kept) > (self.max_levels or len(kept))
        if self.max_levels is not None and grouped:
            kept = kept[: self.max_levels - 1]  # leave room for (other)
        return sorted(str(v) for v in kept)


def _text(array: Any) -> np.ndarray[Any, np.dtype[np.object_]]:
    """A 2-d object array of strings with every missing value spelled ``(missing)``."""
    flat = [MISSING_LEVEL if _is_missing_text(v) else str(v) for v in np.asarray(array).ravel()]
    return np.array(flat, dtype=object).reshape(np.shape(array))


def _is_missing_text(value: Any) -> bool:
    if value is None or (isinstance(value, str) and value == ""):
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas NA: its truth value is undefined
        return True


class MissingFlags(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """0/1 flags for the columns that had missing values in training (a column without
    missing values gets no flag, so nothing constant is added).

    >>> MissingFlags().fit_transform(np.array([[1.0, np.nan], [2.0, 3.0]])).tolist()
    [[1.0], [0.0]]
    """

    def fit(self, X: Any, y: Any = None) -> MissingFlags:
        """Find the columns with missing values."""
        validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        self.columns_ = np.flatnonzero(np.isnan(_as_float(X)).any(axis=0))
        return self

    def transform(self, X: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The flags of the fitted columns."""
        check_is_fitted(self, "columns_")
        validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        return np.isnan(_as_float(X)[:, self.columns_]).astype(np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        """``{column}__missing`` for each flagged column."""
        check_is_fitted(self, "columns_")
        names = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            names = np.asarray(input_features)
        if names is None:
            names = np.array([f"x{i}" for i in range(self.n_features_in_)])
        return np.array([f"{names[i]}__missing" for i in self.columns_], dtype=object)


class CheckedPowerTransformer(PowerTransformer):  # type: ignore[misc]
    """``PowerTransformer`` whose Box-Cox fit names the columns that are not strictly positive.

    ``columns`` are the names the error message uses (the pipeline has lost them by then).
    """

    def __init__(self, method: str = "box-cox", *, standardize: bool = True, copy: bool = True,
                 columns: tuple[str, ...] = ()) -> None:
        super().__init__(method=method, standardize=standardize, copy=copy)
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> CheckedPowerTransformer:
        """Check positivity (Box-Cox), then fit."""
        self._check_positive(X)
        super().fit(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Check positivity (Box-Cox), then fit and transform."""
        self._check_positive(X)
        return super().fit_transform(X, y)

    def _check_positive(self, X: Any) -> None:
        if self.method != "box-cox":
            return
        minima = np.nanmin(_as_float(X), axis=0)
        bad = [self.columns[i] if i < len(self.columns) else f"column {i}"
               for i in np.flatnonzero(minima <= 0)]
        if bad:
            raise DataError(f"model.features.transforms: boxcox needs strictly positive values "
                            f"but {', '.join(map(repr, bad))} has values <= 0 in the training "
                            "rows; use 'log' (log1p of values clipped at 0) for it instead")


class SelectAtMostK(SelectKBest):  # type: ignore[misc]
    """``SelectKBest`` that keeps every feature, silently, when there are fewer than ``k``.

    The number of features after one-hot encoding is only known once fitted, so ``k`` is an
    upper bound rather than an exact count.
    """

    def _check_params(self, X: Any, y: Any) -> None:
        """Any ``k`` is acceptable; ``SelectKBest`` then keeps min(k, n_features)."""


def anova_f(X: Any, y: Any) -> tuple[Any, Any]:
    """ANOVA F scores (classification); constant features score NaN without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (UserWarning, RuntimeWarning))
        return f_classif(X, y)  # type: ignore[no-any-return]


def pearson_f(X: Any, y: Any) -> tuple[Any, Any]:
    """Correlation F scores (regression); constant features score NaN without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (UserWarning, RuntimeWarning))
        return f_regression(X, y)  # type: ignore[no-any-return]


def register_onnx_converters() -> None:
    """Teach skl2onnx to convert this module's transformers (idempotent).

    Call before ``skl2onnx.to_onnx`` / ``convert_sklearn`` on a pipeline from
    :func:`mlstrata.model.features.make_pipeline`.
    """
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.feature_selection import (
        convert_sklearn_feature_selection,
    )
    from skl2onnx.shape_calculators.feature_selection import calculate_sklearn_select

    from . import _onnx_converters as conv

    for model, alias, shape, convert in (
        (AsFloat, "MlstrataAsFloat", conv.same_shape, conv.convert_identity),
        (MathTransform, "MlstrataMathTransform", conv.same_shape, conv.convert_math),
        (CategoryLevels, "MlstrataCategoryLevels", conv.same_shape, conv.convert_levels),
        (NumericImputer, "MlstrataNumericImputer", conv.same_shape, conv.convert_imputer),
        (MissingFlags, "MlstrataMissingFlags", conv.flags_shape, conv.convert_missing_flags),
        (CheckedPowerTransformer, "MlstrataPowerTransformer", conv.same_shape,
         conv.convert_box_cox),
        (SelectAtMostK, "MlstrataSelectAtMostK", calculate_sklearn_select,
         convert_sklearn_feature_selection),
    ):
        update_registered_converter(model, alias, shape, convert, overwrite=True)
    _registered = True


class DateExpander(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Replace each date column of a DataFrame by its numeric parts; pass the others through.

    The first step of a fitted pipeline. The ONNX export leaves it out because the serving
    runtime runs the same :func:`mlstrata.runtime.dates.expand_dates` before onnxruntime, so the
    graph's inputs are the parts (``{column}_{part}``, see ``date_feature_names``).
    """

    def __init__(self, columns: tuple[str, ...] = (),
                 parts: tuple[str, ...] = ("year", "month", "dayofweek", "cyclical")) -> None:
        self.columns = columns
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DateExpander:
        """Check that ``X`` is a DataFrame holding the date columns."""
        self._check_frame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> Any:
        """A DataFrame with each date column replaced, in place, by its parts."""
        import pandas as pd

        check_is_fitted(self, "feature_names_in_")
        self._check_frame(X)
        pieces: dict[str, Any] = {}
        for name in X.columns:
            if name not in self.columns:
                pieces[name] = X[name]
                continue
            parts = expand_dates(_datetimes(X[name]), list(self.parts))
            for key, values in zip(date_feature_names(name, list(self.parts)), parts.values(),
                                   strict=True):
                pieces[key] = values
        return pd.DataFrame(pieces, index=X.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        """The input columns with each date column replaced by its part names."""
        check_is_fitted(self, "feature_names_in_")
        names: list[str] = []
        for name in self.feature_names_in_:
            names += date_feature_names(name, list(self.parts)) if name in self.columns else [name]
        return np.array(names, dtype=object)

    def _check_frame(self, X: Any) -> None:
        if not hasattr(X, "columns"):
            raise TypeError("DateExpander needs a pandas DataFrame with named columns, "
                            f"got {type(X).__name__}")
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise DataError(f"date column(s) {missing} are missing from the input; "
                            "the pipeline was fitted with them")


def _datetimes(series: Any) -> Any:
    """A column's values for ``expand_dates``; timezone-aware timestamps converted to UTC."""
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy()
