"""The project configuration, ``mlstrata.yaml``, as pydantic models.

Every key is validated on load; an error names the key, the bad value and what is allowed.

>>> ProjectConfig().data.sealed_test_fraction
0.2
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._yaml import dump_yaml, load_yaml_model
from .errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "AccessLevel",
    "BehaviouralTest",
    "CVConfig",
    "ColumnType",
    "DataConfig",
    "FeatureConfig",
    "GateConfig",
    "GuardConfig",
    "ModelConfig",
    "MonitorConfig",
    "OnlineConfig",
    "OnlineModelKind",
    "PiiAction",
    "PipelineConfig",
    "ProjectConfig",
    "RetrainConfig",
    "SearchConfig",
    "SplitSettings",
    "TuneConfig",
    "load_config",
    "write_default_config",
]

CONFIG_FILE = "mlstrata.yaml"

AccessLevel = Literal["public", "internal", "restricted"]
PiiAction = Literal["keep", "drop", "hash", "mask"]
ColumnType = Literal["text", "integer", "float", "boolean", "date", "timestamp"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Settings of the data stratum."""

    sealed_test_fraction: float = Field(0.2, ge=0.0, le=0.9)
    seed: int = 0
    default_access: AccessLevel = "internal"
    memory_limit: str = Field("1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    threads: int | None = Field(None, ge=1)
    pii: dict[str, PiiAction] = Field(default_factory=dict)
    pii_default: PiiAction = "mask"
    schema_overrides: dict[str, ColumnType] = Field(default_factory=dict, alias="schema")
    checks: list[str] = Field(default_factory=list)


TaskSetting = Literal["auto", "binary", "multiclass", "regression", "clustering"]
Encoding = Literal["onehot", "ordinal", "target"]
Transform = Literal["log", "sqrt", "square", "boxcox"]
DatePart = Literal["year", "month", "day", "dayofweek", "hour", "cyclical"]
EnsembleKind = Literal["voting", "stacking", "bagging"]
_DEFAULT_DATE_PARTS: tuple[DatePart, ...] = ("year", "month", "dayofweek", "cyclical")
_DEFAULT_ENSEMBLES: tuple[EnsembleKind, ...] = ("voting", "stacking")


class FeatureConfig(_Strict):
    """Feature engineering: one preprocessing pipeline, fitted on training rows only."""

    scaling: Literal["standard", "minmax", "robust", "none"] = "standard"
    transforms: dict[str, Transform] = Field(default_factory=dict)
    discretize: dict[str, int] = Field(default_factory=dict)
    encoding: Encoding = "onehot"
    encodings: dict[str, Encoding] = Field(default_factory=dict)
    rare_level_min_frequency: float = Field(0.01, ge=0.0, lt=0.5)
    max_onehot_levels: int = Field(30, ge=2)
    date_parts: list[DatePart] = Field(default_factory=lambda: list(_DEFAULT_DATE_PARTS))
    missing_indicators: bool = True
    select_k_best: int | None = Field(None, ge=1)
    drop: list[str] = Field(default_factory=list)
    keep: list[str] = Field(default_factory=list)
    leakage_threshold: float = Field(0.98, gt=0.5, le=1.0)


class CVConfig(_Strict):
    """Cross-validation of the candidates."""

    folds: int = Field(5, ge=2, le=20)
    strategy: Literal["auto", "kfold", "stratified", "time"] = "auto"


class TuneConfig(_Strict):
    """Optuna tuning of the best candidates."""

    top_k: int = Field(3, ge=0)
    trials: int = Field(20, ge=1)
    timeout_seconds: float = Field(300.0, gt=0)
    storage: str | None = None


class SearchConfig(_Strict):
    """The budgeted AutoML search (``mlstrata automl``; ``train``'s default, see ModelConfig).

    ``time_budget_seconds`` is the wall time of the whole command (search, refit, store, report);
    unset, ``model.time_budget_seconds``, else 60. ``trials`` instead runs exactly that many
    trials and reads no clock, so the same data and seed give the same model (set, it wins over
    the time budget). ``ensemble: false`` keeps the best single model.
    """

    time_budget_seconds: float | None = Field(None, gt=0)
    trials: int | None = Field(None, ge=1)
    ensemble: bool = True


class GateConfig(_Strict):
    """Business gates checked by ``mlstrata evaluate`` on validation data."""

    metrics: list[str] = Field(default_factory=list)
    cost_matrix: dict[str, float] | None = None
    max_latency_ms: float | None = Field(None, gt=0)
    max_package_mb: float | None = Field(None, gt=0)


class BehaviouralTest(_Strict):
    """One behavioural test of the acceptance test (invariance, directional, minimum)."""

    name: str
    kind: Literal["invariance", "directional", "minimum"]
    column: str | None = None
    values: list[Any] = Field(default_factory=list)
    direction: Literal["increasing", "decreasing"] | None = None
    epsilon: float = Field(0.05, ge=0.0)
    cases: list[dict[str, Any]] = Field(default_factory=list)


class ModelConfig(_Strict):
    """Settings of the model stratum.

    ``strategy``: ``search`` runs the budgeted AutoML search (``search``, one absolute time
    budget); ``classic`` the leaderboard → tuning → ensembles stages below; ``auto`` (default)
    runs the search unless ``tune`` or ``ensembles`` is set in mlstrata.yaml (configuring the
    classic stages selects them) or the task is clustering.

    In the classic stages ``time_budget_seconds`` is the wall time ``train`` aims to finish in.
    The candidate leaderboard always runs in full; tuning (also capped by
    ``tune.timeout_seconds``) and the ensembles are fitted into what is left, and an ensemble
    whose estimated cost does not fit is skipped (with a warning). Unset, the budget is
    automatic: after the leaderboard, tuning and ensembles may take 1.5 times as long as the
    leaderboard did — a measure of how costly the data is on this machine.
    """

    task: TaskSetting = "auto"
    metric: str | None = None
    candidates: list[str] | None = None
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cv: CVConfig = Field(default_factory=CVConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    strategy: Literal["auto", "search", "classic"] = "auto"
    ensembles: list[EnsembleKind] = Field(default_factory=lambda: list(_DEFAULT_ENSEMBLES))
    time_budget_seconds: float | None = Field(None, gt=0)
    require_onnx: bool = True
    seed: int = 0
    tracking_uri: str | None = None
    experiment: str | None = None
    registry_name: str | None = None
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    gates: GateConfig = Field(default_factory=GateConfig)
    tests: list[BehaviouralTest] = Field(default_factory=list)


class SplitSettings(_Strict):
    """The train/validation split ``mlstrata run`` records."""

    strategy: Literal["random", "stratified", "time", "group"] | None = None
    val: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = 0
    group: str | None = None


class PipelineConfig(_Strict):
    """What ``mlstrata run`` executes: source → ingest → clean → validate → split → model steps.

    Paths are relative to the project directory.
    """

    source: str | None = None
    name: str | None = None
    target: str | None = None
    key: str | None = None
    time: str | None = None
    recipe: str | None = None
    contract: str | None = None
    split: SplitSettings = Field(default_factory=SplitSettings)
    package: bool = True
    register_model: bool = True


class MonitorConfig(_Strict):
    """Production monitoring: where predictions are logged (and how drift is judged).

    ``log``: a directory for the prediction log's JSON Lines files (relative to the project;
    default ``.mlstrata/predictions``) or a ``postgresql://`` URL (tables
    ``mlstrata_predictions`` and ``mlstrata_feedback``, shared by several replicas).
    """

    log: str | None = None
    # How `mlstrata monitor` judges drift and decay (see mlstrata.monitor.drift and .decay).
    window: str = "1d"
    psi: float = Field(0.2, gt=0)
    wasserstein: float = Field(0.1, gt=0)
    share_change: float = Field(0.05, gt=0, le=1)
    new_level_share: float = Field(0.01, gt=0, le=1)
    missing_change: float = Field(0.05, gt=0, le=1)
    p_value: float = Field(0.01, gt=0, lt=1)
    min_rows: int = Field(100, ge=1)
    min_labels: int = Field(100, ge=1)


OnlineModelKind = Literal["logistic_regression", "linear_regression", "hoeffding_adaptive_tree",
                          "adaptive_random_forest", "knn"]


class GuardConfig(_Strict):
    """The guard of online models against poisoned streams (``online.guard``): off unless
    ``enabled``. ADWIN (``delta``) watches the live model's progressive error; a shadow copy
    learns each event ``shadow_delay`` events late; when, after a change, the live model's
    accuracy over the last ``window`` events falls more than ``margin`` below the shadow's,
    the model is rolled back and the suspect events quarantined."""

    enabled: bool = False
    window: int = Field(150, ge=10)
    margin: float = Field(0.1, gt=0, lt=1)
    shadow_delay: int = Field(2000, ge=1)
    delta: float = Field(0.002, gt=0, lt=1)


class OnlineConfig(_Strict):
    """Defaults of ``mlstrata online create`` and the durability of online models.

    ``model``, ``params`` (per model kind: River's constructor arguments), ``seed``, ``drop``
    (columns left out of the features) and ``keep`` (columns kept although they look like
    identifiers, PII or too many categories) are frozen into each online model when it is
    created, so editing them later never changes a model being recovered. A checkpoint is
    taken every ``checkpoint_events`` learnt events or ``checkpoint_seconds`` seconds, whichever
    comes first.
    """

    model: OnlineModelKind = "logistic_regression"
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    seed: int = 0
    drop: list[str] = Field(default_factory=list)
    keep: list[str] = Field(default_factory=list)
    metric: str | None = None
    checkpoint_events: int = Field(10_000, ge=1)
    checkpoint_seconds: float = Field(300.0, gt=0)
    guard: GuardConfig = Field(default_factory=GuardConfig)


class RetrainConfig(_Strict):
    """``mlstrata retrain``: when a retrain is due and when its challenger replaces the champion.

    Due (any of): the new batch has at least ``min_new_rows`` rows; the champion is older than
    ``max_model_age_days``; the command says ``--trigger drift`` (``mlstrata monitor ... ||
    mlstrata retrain ... --trigger drift``) and ``on_drift`` is set. The challenger trains on
    the newest ``history_batches`` batches (all when unset) and is promoted when it passes the
    gates and the acceptance test and its ``metric`` (default: the model's) beats the champion's
    by more than ``margin`` with ``confidence``, in a paired bootstrap (``bootstrap`` resamples,
    ``seed``) over the sealed rows of ``decide_on``: the newest batch's slice or the whole sealed
    history. ``schedule`` is the cron line ``--print-cron`` and ``--cronjob`` use.
    """

    min_new_rows: int = Field(1, ge=1)
    max_model_age_days: float | None = Field(None, gt=0)
    on_drift: bool = True
    history_batches: int | None = Field(None, ge=1)
    metric: str | None = None
    margin: float = Field(0.0, ge=0)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    bootstrap: int = Field(1000, ge=100)
    seed: int = 0
    decide_on: Literal["newest", "history"] = "newest"
    schedule: str = "0 3 * * *"


class ProjectConfig(_Strict):
    """The whole of ``mlstrata.yaml``."""

    project: str = "mlstrata-project"
    owner: str = Field(default_factory=getpass.getuser)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)


def load_config(path: Path) -> ProjectConfig:
    """Load and validate ``mlstrata.yaml``; a missing file means all defaults."""
    if not path.exists():
        return ProjectConfig()
    return load_yaml_model(path, ProjectConfig, ConfigError)


def write_default_config(path: Path, project: str) -> None:
    """Write a commented starter ``mlstrata.yaml`` (only when none exists)."""
    from ._atomic import write_text

    body = dump_yaml(
        {
            "project": project,
            "owner": getpass.getuser(),
            "data": {
                "sealed_test_fraction": 0.2,
                "seed": 0,
                "default_access": "internal",
                "memory_limit": "1GB",
                "pii": {},
                "pii_default": "mask",
                "schema": {},
                "checks": [],
            },
        }
    )
    header = (
        "# mlstrata project configuration. Keys are validated on every command.\n"
        "# data.pii maps a column to keep | drop | hash | mask; columns found to hold PII and\n"
        "# not listed get data.pii_default. data.schema forces a column's type (text, integer,\n"
        "# float, boolean, date, timestamp). data.checks lists 'module:function' checks.\n"
    )
    write_text(path, header + body)
