"""Feature engineering: which columns become which features, and the pipeline that makes them.

:func:`plan_features` decides, from the column types, the config (``model.features`` in
mlstrata.yaml) and the leakage guard's findings, what each column becomes and which columns are
left out (with a reason). :func:`make_pipeline` turns a plan into one unfitted scikit-learn
pipeline — date expansion, preprocessing, estimator — that the caller fits on training rows only,
so every statistic (medians, scales, levels, target means, bins) is learned without the
validation or test rows. Everything after the date step converts to ONNX (see
:func:`register_onnx_converters`); the date step is replayed by ``mlstrata.runtime.dates``.

>>> from mlstrata.config import FeatureConfig
>>> from mlstrata.data.types import ColumnInfo
>>> cols = [ColumnInfo("age", "integer", "BIGINT"), ColumnInfo("city", "text", "VARCHAR"),
...         ColumnInfo("opened", "date", "DATE"), ColumnInfo("churn", "boolean", "BOOLEAN")]
>>> plan = plan_features(cols, "churn", FeatureConfig(), task="binary")
>>> plan.numeric, plan.categorical, plan.dates, plan.encodings
(['age'], ['city'], ['opened'], {'city': 'onehot'})
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import FeatureConfig
from ..data.types import ColumnInfo
from ..errors import ConfigError, DataError
from ..runtime.dates import date_feature_names
from ._transformers import (
    AsFloat,
    CategoryLevels,
    CheckedPowerTransformer,
    DateExpander,
    MathTransform,
    MissingFlags,
    NumericImputer,
    SelectAtMostK,
    anova_f,
    pearson_f,
    register_onnx_converters,
)

__all__ = [
    "DateExpander",
    "FeaturePlan",
    "build_preprocessor",
    "make_pipeline",
    "plan_features",
    "register_onnx_converters",
    "too_many_levels",
]

_NUMERIC = ("integer", "float", "boolean")
_DATES = ("date", "timestamp")
_CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class FeaturePlan:
    """What each raw column becomes.

    ``numeric`` (integer, float, boolean), ``categorical`` (text) and ``dates`` are the raw
    columns the pipeline reads; ``encodings`` maps each categorical to onehot/ordinal/target,
    ``transforms`` numeric columns to log/sqrt/square/boxcox, ``bins`` numeric columns to a
    number of quantile bins; ``excluded`` lists ``{column, reason, detail}`` of the columns left
    out. ``onnx`` is False when an option has no ONNX converter (``notes`` says which).
    """

    numeric: list[str]
    categorical: list[str]
    dates: list[str]
    encodings: dict[str, str]
    transforms: dict[str, str]
    excluded: list[dict[str, str]]
    bins: dict[str, int] = field(default_factory=dict)
    date_parts: list[str] = field(default_factory=list)
    task: str | None = None
    onnx: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[str]:
        """The raw feature columns the fitted pipeline expects, in order."""
        return self.numeric + self.categorical + self.dates

    def model_inputs(self) -> list[tuple[str, str]]:
        """``(name, "float" | "string")`` of the preprocessor's inputs: what the ONNX graph
        takes once the runtime has expanded the dates."""
        parts = [n for d in self.dates for n in date_feature_names(d, self.date_parts)]
        return ([(n, "float") for n in self.numeric + parts]
                + [(n, "string") for n in self.categorical])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for reports and model meta."""
        return asdict(self)


def plan_features(
    columns: Sequence[ColumnInfo],
    target: str | None,
    config: FeatureConfig,
    exclusions: Sequence[Mapping[str, Any]] = (),
    *,
    task: str | None = None,
    levels: Mapping[str, int] | None = None,
) -> FeaturePlan:
    """Decide what each column becomes.

    ``exclusions`` are the leakage guard's findings (``leakage.screen_features``); a finding
    excludes its column unless the column is in ``config.keep``. ``levels`` (distinct
    values per text column, counted on training rows) lets a categorical with more than
    ``config.max_onehot_levels`` levels default to target encoding (binary and regression tasks;
    one-hot with the rarest levels grouped otherwise).
    """
    by_name = {c.name: c for c in columns if c.name != target}
    _check_names(config, by_name)
    excluded = _exclusions(by_name, config, exclusions)
    left = [c for c in by_name.values() if c.name not in {e["column"] for e in excluded}]
    if not left:
        raise DataError("no feature column is left after the exclusions "
                        f"{[e['column'] + ': ' + e['reason'] for e in excluded]}; "
                        "list the columns to use in model.features.keep")
    numeric = [c.name for c in left if c.type in _NUMERIC]
    categorical = [c.name for c in left if c.type == "text"]
    _check_kinds(config, by_name)
    encodings = {c: _encoding(c, config, task, levels or {}) for c in categorical}
    notes = [f"{c}: target encoding of a multiclass target has no ONNX converter"
             for c, e in encodings.items() if e == "target" and task == "multiclass"]
    return FeaturePlan(
        numeric=numeric,
        categorical=categorical,
        dates=[c.name for c in left if c.type in _DATES],
        encodings=encodings,
        transforms={c: t for c, t in config.transforms.items() if c in numeric},
        excluded=excluded,
        bins={c: n for c, n in config.discretize.items() if c in numeric},
        date_parts=list(config.date_parts),
        task=task,
        onnx=not notes,
        notes=notes,
    )


def _hint(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f"did you mean {', '.join(close)}?" if close else f"columns are {sorted(choices)}"


def _check_names(config: FeatureConfig, known: Mapping[str, ColumnInfo]) -> None:
    """Every column named in ``model.features`` exists (the target is not a feature)."""
    for key in ("drop", "keep", "transforms", "discretize", "encodings"):
        for name in getattr(config, key):
            if name not in known:
                raise ConfigError(f"mlstrata.yaml: model.features.{key} names '{name}', which is "
                                  f"not a feature column; {_hint(name, list(known))}")


def _check_kinds(config: FeatureConfig, known: Mapping[str, ColumnInfo]) -> None:
    """Transforms and bins apply to numbers, encodings to text."""
    for key, kinds, what in (("transforms", _NUMERIC, "numeric"),
                             ("discretize", _NUMERIC, "numeric"),
                             ("encodings", ("text",), "text")):
        for name in getattr(config, key):
            if known[name].type not in kinds:
                raise ConfigError(f"mlstrata.yaml: model.features.{key}.{name}: '{name}' is "
                                  f"{known[name].type}, but {key} applies to {what} columns only")


def _exclusions(
    known: Mapping[str, ColumnInfo], config: FeatureConfig, findings: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """Columns dropped by config, then findings of the leakage guard not kept by config."""
    out = [{"column": c, "reason": "dropped", "detail": "listed in model.features.drop"}
           for c in config.drop]
    seen = set(config.drop)
    for finding in findings:
        column = str(finding["column"])
        if column in seen or column in config.keep or column not in known:
            continue
        seen.add(column)
        out.append({"column": column, "reason": str(finding["reason"]),
                    "detail": str(finding.get("detail", finding["reason"]))})
    return out


def _encoding(column: str, config: FeatureConfig, task: str | None,
              levels: Mapping[str, int]) -> str:
    """The configured encoding, else the default (target encoding for many levels)."""
    chosen = config.encodings.get(column)
    if chosen == "target" and task not in ("binary", "multiclass", "regression"):
        raise ConfigError(f"mlstrata.yaml: model.features.encodings.{column}: target encoding "
                          "needs a target; use onehot or ordinal for clustering")
    if chosen is not None:
        return chosen
    many = too_many_levels(levels.get(column, 0), config)
    if config.encoding == "onehot" and many and task in ("binary", "regression"):
        return "target"
    if config.encoding == "target" and task not in ("binary", "multiclass", "regression"):
        return "onehot"
    return config.encoding


def too_many_levels(levels: int, config: FeatureConfig) -> bool:
    """Whether a text column with ``levels`` distinct values has too many for a plain one-hot
    encoding (``model.features.max_onehot_levels``): training target-encodes such a column,
    an online model leaves it out."""
    return levels > config.max_onehot_levels


def build_preprocessor(plan: FeaturePlan, config: FeatureConfig) -> Any:
    """The unfitted preprocessing for ``plan``: a ``ColumnTransformer`` over the (date-expanded)
    columns, followed by ``SelectKBest`` when ``config.select_k_best`` is set and there is a
    target. Fit it on training rows only."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    branches = _numeric_branches(plan, config) + _categorical_branches(plan, config)
    columns = ColumnTransformer(branches, remainder="drop", sparse_threshold=0.0,
                                verbose_feature_names_out=False)
    if config.select_k_best is None or plan.task not in (*_CLASSIFICATION, "regression"):
        return columns
    score = anova_f if plan.task in _CLASSIFICATION else pearson_f
    return Pipeline([("columns", columns),
                     ("select", SelectAtMostK(score_func=score, k=config.select_k_best))])


def make_pipeline(plan: FeaturePlan, config: FeatureConfig, estimator: Any) -> Any:
    """One unfitted pipeline taking the raw feature columns: ``dates`` (only when there are
    date columns) → ``features`` → ``model``."""
    from sklearn.pipeline import Pipeline

    steps: list[tuple[str, Any]] = []
    if plan.dates:
        steps.append(("dates", DateExpander(tuple(plan.dates), tuple(plan.date_parts))))
    steps += [("features", build_preprocessor(plan, config)), ("model", estimator)]
    return Pipeline(steps)


def _scaler(config: FeatureConfig) -> list[tuple[str, Any]]:
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    scalers = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
    return [] if config.scaling == "none" else [("scale", scalers[config.scaling]())]


def _numeric_branches(plan: FeaturePlan, config: FeatureConfig) -> list[tuple[str, Any, list[str]]]:
    """Impute the median, then transform and scale, or bin; plus the missing-value flags."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import KBinsDiscretizer

    names = plan.numeric + [n for d in plan.dates for n in date_feature_names(d, plan.date_parts)]
    groups: dict[str, list[str]] = {}
    for name in names:
        kind = f"bins{plan.bins[name]}" if name in plan.bins else plan.transforms.get(name, "")
        groups.setdefault(kind, []).append(name)
    branches = []
    for kind, cols in groups.items():
        steps: list[tuple[str, Any]] = [
            ("float", AsFloat()),
            ("impute", NumericImputer(strategy="median", keep_empty_features=True))]
        if kind.startswith("bins"):
            steps += [("bins", KBinsDiscretizer(n_bins=int(kind[4:]), encode="onehot-dense")),
                      ("cast", AsFloat())]
        elif kind == "boxcox":
            steps.append(("boxcox", CheckedPowerTransformer(columns=tuple(cols))))
        else:
            steps += ([(kind, MathTransform(kind))] if kind else []) + _scaler(config)
        branches.append((f"numeric_{kind or 'plain'}", Pipeline(steps), cols))
    if config.missing_indicators and names:
        branches.append(("missing", MissingFlags(), names))
    return branches


def _categorical_branches(plan: FeaturePlan,
                          config: FeatureConfig) -> list[tuple[str, Any, list[str]]]:
    """Name missing (and, for one-hot, rare and unseen) levels, then one-hot, ordinal or
    target encoding."""
    from sklearn.pipeline import Pipeline

    branches = []
    for encoding in ("onehot", "ordinal", "target"):
        cols = [c for c in plan.categorical if plan.encodings[c] == encoding]
        if cols:
            levels = (CategoryLevels(config.rare_level_min_frequency, config.max_onehot_levels)
                      if encoding == "onehot" else CategoryLevels())
            steps = [("levels", levels), (encoding, _encoder(encoding, plan.task))]
            branches.append((f"text_{encoding}", Pipeline(steps), cols))
    return branches


def _encoder(encoding: str, task: str | None) -> Any:
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    if encoding == "onehot":
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if encoding == "ordinal":
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    # Seeded folds: the encoder's internal cross-fitting shuffles, and unseeded it made two
    # trainings on the same data and seed differ (found by the reproducibility test).
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = (KFold(5, shuffle=True, random_state=0) if task == "regression"
             else StratifiedKFold(5, shuffle=True, random_state=0))
    return TargetEncoder(target_type="continuous" if task == "regression" else "auto", cv=folds)
