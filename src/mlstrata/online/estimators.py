"""River pipelines for an online model: the preprocessing the contract implies, then the model.

Numbers (booleans as 0/1, date parts) go through ``StandardScaler``, categories through
``OneHotEncoder``, each branch picking its features by type (:mod:`.features` makes numbers
floats and categories text), so a missing value — a key left out — is simply skipped. The
model is picked by name and by the task (classifier or regressor).
Every pipeline is deterministic for a seed and an order of events — the property recovery
relies on (a checkpoint plus the events after it equals the uninterrupted run), so:

- k-NN searches a sliding window exactly (``LazySearch``): River's default engine (SWINN) draws
  random numbers while *predicting* and iterates sets whose order changes after unpickling;
- the one-hot encoder learns its categories, so its output follows their order of first
  appearance (a category set given up front is a Python set of strings, iterated in an order
  that depends on the process's hash seed);
- logistic regression is binary in River: three or more classes train one per class
  (``OneVsRestClassifier``).

Classifiers learn class *indices* (``OnlineSpec.classes`` maps them to labels), so a label's
spelling (``"yes"``, ``True``, ``3``) never reaches River.

>>> MODEL_KINDS
('logistic_regression', 'linear_regression', 'hoeffding_adaptive_tree', \
'adaptive_random_forest', 'knn')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, get_args

from ..config import OnlineModelKind
from ..contract import did_you_mean
from ..errors import ConfigError

if TYPE_CHECKING:
    from .spec import OnlineSpec

__all__ = ["MODEL_KINDS", "build_pipeline", "check_model_kind"]

MODEL_KINDS: tuple[str, ...] = get_args(OnlineModelKind)
_KNN_WINDOW = 1000


def check_model_kind(kind: str, task: str) -> None:
    """Refuse an unknown model, or one that does not fit the task (a ``ConfigError``)."""
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown online model {kind!r}{did_you_mean(kind, MODEL_KINDS)}; "
                          f"choose one of {', '.join(MODEL_KINDS)}")
    wrong = {"classification": "linear_regression", "regression": "logistic_regression"}
    if wrong.get(task) == kind:
        fits = "linear_regression" if task == "regression" else "logistic_regression"
        raise ConfigError(f"model {kind} does not fit a {task} target; use {fits} (or a tree, "
                          "forest or knn)")


def build_pipeline(spec: OnlineSpec) -> Any:
    """A fresh River pipeline for ``spec``: preprocessing from its feature roles, then the model."""
    from river import compose, preprocessing

    branches = []
    if spec.numbers or spec.dates:
        branches.append(compose.SelectType(float) | preprocessing.StandardScaler())
    if spec.categories:
        branches.append(compose.SelectType(str) | preprocessing.OneHotEncoder())
    model = _model(spec)
    if not branches:
        return model
    union = branches[0] if len(branches) == 1 else compose.TransformerUnion(*branches)
    return union | model


def _model(spec: OnlineSpec) -> Any:
    params = dict(spec.params)
    factory = (_CLASSIFIERS if spec.task == "classification" else _REGRESSORS)[spec.model]
    try:
        return factory(params, spec.seed, len(spec.classes))
    except TypeError as exc:
        raise ConfigError(f"online.params.{spec.model} does not fit River's {spec.model} "
                          f"({exc}); fix or remove the parameter") from exc


def _logistic(params: dict[str, Any], seed: int, classes: int) -> Any:
    from river import linear_model, multiclass

    if classes > 2:
        return multiclass.OneVsRestClassifier(linear_model.LogisticRegression(**params))
    return linear_model.LogisticRegression(**params)


def _linear(params: dict[str, Any], seed: int, classes: int) -> Any:
    from river import linear_model

    return linear_model.LinearRegression(**params)


def _tree(regressor: bool) -> Callable[[dict[str, Any], int, int], Any]:
    def make(params: dict[str, Any], seed: int, classes: int) -> Any:
        from river import tree

        kind = tree.HoeffdingAdaptiveTreeRegressor if regressor \
            else tree.HoeffdingAdaptiveTreeClassifier
        return kind(**{"seed": seed, **params})
    return make


def _forest(regressor: bool) -> Callable[[dict[str, Any], int, int], Any]:
    def make(params: dict[str, Any], seed: int, classes: int) -> Any:
        from river import forest

        kind = forest.ARFRegressor if regressor else forest.ARFClassifier
        return kind(**{"seed": seed, **params})
    return make


def _knn(regressor: bool) -> Callable[[dict[str, Any], int, int], Any]:
    def make(params: dict[str, Any], seed: int, classes: int) -> Any:
        from river import neighbors

        window = params.pop("window_size", _KNN_WINDOW)
        kind = neighbors.KNNRegressor if regressor else neighbors.KNNClassifier
        return kind(engine=neighbors.LazySearch(window_size=window), **params)
    return make


_Factory = Callable[[dict[str, Any], int, int], Any]
_CLASSIFIERS: Mapping[str, _Factory] = {
    "logistic_regression": _logistic, "hoeffding_adaptive_tree": _tree(False),
    "adaptive_random_forest": _forest(False), "knn": _knn(False),
}
_REGRESSORS: Mapping[str, _Factory] = {
    "linear_regression": _linear, "hoeffding_adaptive_tree": _tree(True),
    "adaptive_random_forest": _forest(True), "knn": _knn(True),
}
