"""The model candidates: which estimators mlstrata trains, for which tasks, and how they are tuned.

A :class:`Candidate` is a description, not a model: it names a scikit-learn-API estimator per task,
its default hyper-parameters, its Optuna search space, whether the packaged ONNX file can express
it, and how many rows it can afford (k-NN and SVM scale badly). Estimator libraries are imported
only when a candidate is built, so importing this module stays cheap.

ONNX (measured by ``tests/model/test_candidates.py`` through the packager's own export,
:func:`mlstrata.package.onnx_export.to_onnx`, which converts in double precision where
onnxruntime has the kernels and falls back to float32): every candidate converts with parity
≤ 1e-4 except ``dummy`` (no skl2onnx converter), which has ``onnx=False`` and cannot win while
``require_onnx`` is on; a test fails when a library upgrade makes it convert, so the flag can be
flipped. (``xgboost`` converts exactly only through the packager's double-precision export,
which keeps its float32 thresholds exact and its inputs unrounded before the float32 cast that
XGBoost itself applies.)

SVM classification is ``CalibratedClassifierCV(SVC(), ensemble=False)``: scikit-learn 1.9
deprecates ``SVC(probability=True)``, and the calibrated form converts to ONNX the same way
(skl2onnx still reads the deprecated ``probA_``; filter that ``FutureWarning`` when converting).

>>> sorted(CANDIDATES["ridge"].tasks)
['regression']
>>> default_candidates("regression", rows=100)[:3]
['dummy', 'ridge', 'lasso']
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

__all__ = [
    "CANDIDATES",
    "TASKS",
    "Candidate",
    "check_candidate_names",
    "default_candidates",
    "register_onnx_converters",
    "resolve_candidates",
]

_log = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "regression", "clustering")
"""The element type of the ONNX model's input (see the module docstring for why)."""

_CLASSIFICATION = frozenset({"binary", "multiclass"})
_REGRESSION = frozenset({"regression"})
_SUPERVISED = _CLASSIFICATION | _REGRESSION

SearchSpace = Callable[[Any, str], dict[str, Any]]


@dataclass(frozen=True)
class Candidate:
    """One model family member: the estimator class per task, its defaults and search space.

    ``estimators`` maps a task family (``classification``, ``regression``, ``clustering``) to
    ``"module:Class"``; ``seed_param`` is the constructor argument that takes the seed;
    ``calibrate`` wraps a classifier in ``CalibratedClassifierCV`` to give it probabilities.
    ``extra_params`` are hyper-parameters the estimator takes through ``**kwargs`` and so does
    not list in ``get_params()`` (LightGBM's ``verbose``): defaults and ``model.params`` may set
    them too.
    """

    name: str
    family: str
    tasks: frozenset[str]
    onnx: bool
    max_rows: int | None
    estimators: Mapping[str, str] = field(repr=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, repr=False)
    seed_param: str | None = "random_state"
    space: SearchSpace | None = field(default=None, repr=False)
    calibrate: bool = False
    extra_params: frozenset[str] = frozenset()

    def build(self, task: str, params: Mapping[str, Any], seed: int) -> Any:
        """A fresh, unfitted estimator for ``task`` with ``params`` over the defaults.

        >>> CANDIDATES["tree"].build("binary", {"max_depth": 3}, seed=1).get_params()["max_depth"]
        3
        >>> CANDIDATES["lightgbm"].build("binary", {}, seed=1).get_params()["verbose"]
        -1
        """
        if task not in self.tasks:
            raise ConfigError(
                f"model candidate {self.name!r} does not handle task {task!r}; it handles "
                f"{', '.join(sorted(self.tasks))} — remove it from model.candidates"
            )
        module, _, cls = self.estimators[_family_of(task)].partition(":")
        estimator = getattr(importlib.import_module(module), cls)()
        known = [*estimator.get_params(deep=False), *sorted(self.extra_params)]
        _check_params(self.name, params, known)
        settings = {k: v for k, v in self.defaults.items() if k in known} | dict(params)
        if self.seed_param is not None and self.seed_param in known and (
            self.seed_param not in params
        ):
            settings[self.seed_param] = seed
        estimator.set_params(**settings)
        if self.calibrate and task in _CLASSIFICATION:
            from sklearn.calibration import CalibratedClassifierCV

            return CalibratedClassifierCV(estimator, ensemble=False)
        return estimator

    def search_space(self, trial: Any, task: str) -> dict[str, Any]:
        """Hyper-parameters suggested by an Optuna ``trial`` (empty when nothing is tuned)."""
        return {} if self.space is None else self.space(trial, task)


def _family_of(task: str) -> str:
    return "classification" if task in _CLASSIFICATION else task


def _check_params(name: str, params: Mapping[str, Any], known: Sequence[str]) -> None:
    for param in params:
        if param not in known:
            close = difflib.get_close_matches(param, list(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see the estimator's docs"
            raise ConfigError(
                f"model.params.{name}: unknown hyper-parameter {param!r} for candidate "
                f"{name!r}; {hint}"
            )


def _space_linear(trial: Any, task: str) -> dict[str, Any]:
    if task in _CLASSIFICATION:
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    return {"alpha": trial.suggest_float("alpha", 1e-4, 1e2, log=True)}


def _space_knn(trial: Any, task: str) -> dict[str, Any]:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 50, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
    }


def _space_svm(trial: Any, task: str) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
        "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True),
    }


def _space_tree(trial: Any, task: str) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 16),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True),
    }


def _space_forest(trial: Any, task: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, log=True),
        "max_depth": trial.suggest_int("max_depth", 3, 24),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        "max_features": trial.suggest_float("max_features", 0.2, 1.0),
    }


def _space_hist_gb(trial: Any, task: str) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True),
    }


def _space_lightgbm(trial: Any, task: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 600, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
    }


def _space_xgboost(trial: Any, task: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 600, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
    }


def _space_naive_bayes(trial: Any, task: str) -> dict[str, Any]:
    return {"var_smoothing": trial.suggest_float("var_smoothing", 1e-12, 1e-3, log=True)}


def _space_kmeans(trial: Any, task: str) -> dict[str, Any]:
    return {"n_clusters": trial.suggest_int("n_clusters", 2, 10)}


_FOREST_DEFAULTS = MappingProxyType({"n_estimators": 200, "min_samples_leaf": 5,
                                     "max_leaf_nodes": 2048, "n_jobs": -1})
"""Forests grow their trees on every core: 200 trees, leaves of at least 5 rows, at most 2,048
leaves a tree (tuning keeps that cap), so the model's size does not grow with the row count.
Measured on 100k synthetic credit rows: fully grown (leaves of 2) extra trees made a 672 MB
package whose packaging peaked at 5.5 GB RSS, with CV ROC AUC 0.7720; capped, 106 MB, 1.2 GB and
0.7783."""
_LIGHTGBM_DEFAULTS = MappingProxyType({"verbose": -1, "subsample_freq": 1})
"""Silent; LightGBM's own 100 trees (200 scored lower on the synthetic credit data at 20k and
100k rows); ``subsample_freq`` 1 so a tuned ``subsample`` below 1 really bags rows (LightGBM
ignores ``subsample`` when the frequency is 0, its default)."""
_LIGHTGBM_EXTRA = frozenset({"verbose", "verbosity", "max_bin", "bagging_freq",
                             "force_col_wise", "force_row_wise", "deterministic"})
"""LightGBM parameters its scikit-learn wrapper passes on through ``**kwargs``."""


def _catalogue() -> dict[str, Candidate]:
    sk = "sklearn."
    specs = [
        Candidate("dummy", "baseline", _SUPERVISED, False, None,
                  {"classification": sk + "dummy:DummyClassifier",
                   "regression": sk + "dummy:DummyRegressor"}, seed_param=None),
        Candidate("logistic", "linear", _CLASSIFICATION, True, None,
                  {"classification": sk + "linear_model:LogisticRegression"},
                  {"max_iter": 2000}, space=_space_linear),
        Candidate("ridge", "linear", _REGRESSION, True, None,
                  {"regression": sk + "linear_model:Ridge"}, space=_space_linear),
        Candidate("lasso", "linear", _REGRESSION, True, None,
                  {"regression": sk + "linear_model:Lasso"}, {"max_iter": 5000},
                  space=_space_linear),
        Candidate("linear", "linear", _REGRESSION, True, None,
                  {"regression": sk + "linear_model:LinearRegression"}, seed_param=None),
        Candidate("knn", "neighbors", _SUPERVISED, True, 20_000,
                  {"classification": sk + "neighbors:KNeighborsClassifier",
                   "regression": sk + "neighbors:KNeighborsRegressor"},
                  {"n_neighbors": 15}, seed_param=None, space=_space_knn),
        Candidate("svm", "kernel", _SUPERVISED, True, 5_000,
                  {"classification": sk + "svm:SVC", "regression": sk + "svm:SVR"},
                  space=_space_svm, calibrate=True),
        Candidate("tree", "tree", _SUPERVISED, True, None,
                  {"classification": sk + "tree:DecisionTreeClassifier",
                   "regression": sk + "tree:DecisionTreeRegressor"},
                  {"max_depth": 8, "min_samples_leaf": 5}, space=_space_tree),
        Candidate("random_forest", "bagging", _SUPERVISED, True, None,
                  {"classification": sk + "ensemble:RandomForestClassifier",
                   "regression": sk + "ensemble:RandomForestRegressor"},
                  _FOREST_DEFAULTS, space=_space_forest),
        Candidate("extra_trees", "bagging", _SUPERVISED, True, None,
                  {"classification": sk + "ensemble:ExtraTreesClassifier",
                   "regression": sk + "ensemble:ExtraTreesRegressor"},
                  _FOREST_DEFAULTS, space=_space_forest),
        Candidate("hist_gb", "boosting", _SUPERVISED, True, None,
                  {"classification": sk + "ensemble:HistGradientBoostingClassifier",
                   "regression": sk + "ensemble:HistGradientBoostingRegressor"},
                  space=_space_hist_gb),
        Candidate("lightgbm", "boosting", _SUPERVISED, True, None,
                  {"classification": "lightgbm:LGBMClassifier",
                   "regression": "lightgbm:LGBMRegressor"},
                  _LIGHTGBM_DEFAULTS,
                  space=_space_lightgbm, extra_params=_LIGHTGBM_EXTRA),
        Candidate("xgboost", "boosting", _SUPERVISED, True, None,
                  {"classification": "mlstrata.model._xgboost:LabelledXGBClassifier",
                   "regression": "xgboost:XGBRegressor"},
                  {"n_estimators": 200, "tree_method": "hist"}, space=_space_xgboost),
        Candidate("naive_bayes", "bayes", _CLASSIFICATION, True, None,
                  {"classification": sk + "naive_bayes:GaussianNB"}, seed_param=None,
                  space=_space_naive_bayes),
        Candidate("kmeans", "clustering", frozenset({"clustering"}), True, None,
                  {"clustering": sk + "cluster:KMeans"}, {"n_init": "auto"},
                  space=_space_kmeans),
        Candidate("minibatch_kmeans", "clustering", frozenset({"clustering"}), True, None,
                  {"clustering": sk + "cluster:MiniBatchKMeans"}, {"n_init": "auto"},
                  space=_space_kmeans),
    ]
    return {c.name: c for c in specs}


CANDIDATES: Mapping[str, Candidate] = MappingProxyType(_catalogue())


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"model.task: unknown task {task!r}; use one of {', '.join(TASKS)}")


def _fits(candidate: Candidate, task: str, rows: int) -> bool:
    small_enough = candidate.max_rows is None or rows <= candidate.max_rows
    return task in candidate.tasks and small_enough


def default_candidates(task: str, rows: int) -> list[str]:
    """Every candidate that handles ``task`` and can afford ``rows`` training rows."""
    _check_task(task)
    return [name for name, c in CANDIDATES.items() if _fits(c, task, rows)]


def check_candidate_names(names: Iterable[str], key: str) -> None:
    """Raise a ConfigError naming ``key`` and close matches for a name that is no candidate."""
    for name in names:
        if name not in CANDIDATES:
            close = difflib.get_close_matches(name, list(CANDIDATES), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else (
                f"known: {', '.join(CANDIDATES)}")
            raise ConfigError(f"mlstrata.yaml: {key}: unknown model {name!r}; {hint}")


def resolve_candidates(
    names: Sequence[str] | None, task: str, rows: int, require_onnx: bool
) -> list[Candidate]:
    """The candidates to train: ``names`` from config (or the defaults), checked and filtered.

    Unknown names raise :class:`ConfigError` with close matches. Candidates that do not handle
    the task, cannot afford ``rows`` or (with ``require_onnx``) cannot be exported to ONNX are
    dropped and logged by name; nothing left is an error.
    """
    _check_task(task)
    chosen = list(names) if names is not None else default_candidates(task, rows)
    check_candidate_names(chosen, "model.candidates")
    kept: list[str] = []
    dropped: list[str] = []
    for name in dict.fromkeys(chosen):
        reason = _drop_reason(CANDIDATES[name], task, rows, require_onnx)
        (dropped if reason else kept).append(f"{name} ({reason})" if reason else name)
    if dropped:
        _log.warning("model candidates left out: %s", "; ".join(dropped))
    if not kept:
        raise ConfigError(
            f"model.candidates: none of {', '.join(chosen)} can train here "
            f"({'; '.join(dropped)}); add a candidate that fits or set require_onnx: false"
        )
    return [CANDIDATES[name] for name in kept]


def _drop_reason(candidate: Candidate, task: str, rows: int, require_onnx: bool) -> str:
    if task not in candidate.tasks:
        return f"no {task} task"
    if candidate.max_rows is not None and rows > candidate.max_rows:
        return f"{rows} rows > its limit of {candidate.max_rows}"
    if require_onnx and not candidate.onnx:
        return "cannot be exported to ONNX and require_onnx is true"
    return ""


@functools.cache
def register_onnx_converters() -> None:
    """Teach skl2onnx to convert LightGBM and XGBoost estimators (once per process).

    Running only once matters: the packager wraps these converters for double precision
    afterwards, and a second registration would silently undo that wrapping.

    skl2onnx converts scikit-learn only; onnxmltools holds the converters for the other two
    libraries and this wires them in, so a whole pipeline converts with one ``to_onnx`` call.
    """
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    from ._xgboost import LabelledXGBClassifier

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for model, alias, shapes, converter, options in [
        (LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
         convert_lightgbm, classifier_options),
        (LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
         convert_lightgbm, {"split": None}),
        (XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
         convert_xgboost, classifier_options),
        (LabelledXGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
         convert_xgboost, classifier_options),
        (XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
         convert_xgboost, None),
    ]:
        update_registered_converter(model, alias, shapes, converter, options=options)
