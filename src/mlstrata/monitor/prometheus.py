"""``mlstrata monitor --prometheus FILE``: the verdict as gauges for node-exporter's textfile
collector, so a cron job running ``mlstrata monitor`` feeds the same dashboards as ``/metrics``.

One file per model (node-exporter reads every ``*.prom`` file of its ``--collector.textfile.
directory``); each run replaces it atomically (a temporary file in the same directory, then a
rename: the collector never reads half a file). The gauges describe the last window checked:

- ``mlstrata_monitor_feature_psi{model, feature}`` and ``mlstrata_monitor_feature_drift{model,
  feature}`` (1 when the feature is flagged);
- ``mlstrata_monitor_prediction_psi{model}``, ``mlstrata_monitor_drift{model}`` (1 when any
  feature or the predictions drifted) and ``mlstrata_monitor_decay{model}`` (1 when a live metric
  fails its gate or falls below the validation interval);
- ``mlstrata_monitor_metric{model, metric}`` (a live metric from feedback), the bounds of its
  validation estimate's 95% bootstrap interval ``mlstrata_monitor_metric_validation_low`` and
  ``..._high``, ``mlstrata_monitor_metric_decay`` (1 when it fell outside on the worse side),
  ``mlstrata_monitor_label_coverage{model}``, ``mlstrata_monitor_warning_rate{model}``,
  ``mlstrata_monitor_window_records{model}``;
- ``mlstrata_monitor_last_window_end_timestamp_seconds{model}`` and
  ``mlstrata_monitor_last_run_timestamp_seconds{model}`` (alert when the cron job stops).

The values are rendered by a collector of metric families, not by gauge objects, so that a
``PROMETHEUS_MULTIPROC_DIR`` in the environment cannot send them elsewhere.

>>> from datetime import UTC, datetime
>>> gauges = MonitorGauges("credit.model", run_at=datetime(2026, 12, 2, tzinfo=UTC),
...                        features=(FeatureGauge("income", 0.31, True),), drift=True)
>>> print(render(gauges).decode().splitlines()[2])
mlstrata_monitor_feature_psi{feature="income",model="credit.model"} 0.31
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..errors import MlstrataError

if TYPE_CHECKING:
    from .report import MonitorReport, WindowResult

__all__ = ["FeatureGauge", "MetricGauge", "MonitorGauges", "check_textfile", "gauges_from_report",
           "render", "write_textfile"]


@dataclass(frozen=True)
class FeatureGauge:
    """One input's drift in the last window: its PSI (None when it could not be computed) and
    whether it is flagged."""

    feature: str
    psi: float | None
    drifted: bool


@dataclass(frozen=True)
class MetricGauge:
    """One live metric of the last window judged with feedback, the validation estimate's 95%
    interval, and whether the metric fell outside it on the worse side."""

    metric: str
    value: float | None
    validation_low: float | None = None
    validation_high: float | None = None
    decayed: bool = False


@dataclass(frozen=True)
class MonitorGauges:
    """What ``mlstrata monitor`` concluded about a model, as the textfile holds it."""

    model: str
    run_at: datetime
    features: tuple[FeatureGauge, ...] = ()
    prediction_psi: float | None = None
    drift: bool = False
    decay: bool = False
    metrics: tuple[MetricGauge, ...] = ()
    label_coverage: float | None = None
    warning_rate: float | None = None
    window_records: int | None = None
    window_end: datetime | None = None


def gauges_from_report(report: MonitorReport, run_at: datetime) -> MonitorGauges:
    """The gauges of a check: drift as of its last window, decay and live metrics as of its
    last window with enough feedback to judge (labels arrive late), coverage of the last.

    The gauges describe the latest state, for dashboards and alerts; the exit code of
    ``mlstrata monitor`` says whether any window of the check drifted or decayed.
    """
    if not report.windows:
        return MonitorGauges(report.model, run_at=run_at)
    last = report.windows[-1]
    judged = next((w for w in reversed(report.windows)
                   if w.decay is not None and w.decay.evaluated), None)
    psis = [c.psi for c in last.predictions if c.psi is not None]
    return MonitorGauges(
        report.model, run_at=run_at,
        features=tuple(FeatureGauge(c.name, c.psi, c.flagged) for c in last.columns),
        prediction_psi=max(psis) if psis else None, drift=last.drift,
        decay=judged is not None and judged.decayed, metrics=_metrics(judged),
        label_coverage=last.decay.coverage if last.decay is not None else None,
        warning_rate=last.warning_rate, window_records=last.rows,
        window_end=datetime.fromisoformat(last.end) if last.end else None)


def _metrics(window: WindowResult | None) -> tuple[MetricGauge, ...]:
    """The live metrics of ``window``, each with its validation interval."""
    if window is None or window.decay is None:
        return ()
    return tuple(MetricGauge(m.metric, m.value, m.low, m.high, m.worse)
                 for m in window.decay.metrics)


def render(gauges: MonitorGauges) -> bytes:
    """The Prometheus text format of ``gauges``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(gauges))
    return generate_latest(registry)


def write_textfile(path: Path, gauges: MonitorGauges) -> None:
    """Replace ``path`` (a ``.prom`` file in an existing directory) with ``gauges``, atomically.

    Raises :class:`~mlstrata.errors.MlstrataError` naming the file when it cannot be written.
    """
    check_textfile(path)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(gauges))
    try:
        write_to_textfile(str(path), registry)  # a temporary file beside it, then a rename
    except OSError as exc:
        raise MlstrataError(f"--prometheus {path}: cannot write it ({exc.strerror})") from exc


def check_textfile(path: Path) -> None:
    """Refuse, in one line, a path the textfile collector would ignore or that has no
    directory (checked before a long monitoring run, and again when writing)."""
    if path.suffix != ".prom":
        raise MlstrataError(f"--prometheus {path}: name the file *.prom (node-exporter's textfile "
                            "collector reads only those)")
    if not path.parent.is_dir():
        raise MlstrataError(f"--prometheus {path}: the directory {path.parent} does not exist; "
                            "point it at node-exporter's --collector.textfile.directory")


class _Collector(Collector):
    """The gauge families of one :class:`MonitorGauges`."""

    def __init__(self, gauges: MonitorGauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g, model = self._gauges, self._gauges.model

        def family(name: str, documentation: str, labels: tuple[str, ...],
                   rows: list[tuple[tuple[str, ...], float | None]]) -> GaugeMetricFamily:
            metric = GaugeMetricFamily(name, documentation, labels=["model", *labels])
            for values, value in rows:
                if value is not None:
                    metric.add_metric([model, *values], float(value))
            return metric

        yield family("mlstrata_monitor_feature_psi", "Population stability index of each input "
                     "in the last window, against the training reference.", ("feature",),
                     [((f.feature,), f.psi) for f in g.features])
        yield family("mlstrata_monitor_feature_drift", "1 when the input is flagged as drifted in "
                     "the last window.", ("feature",),
                     [((f.feature,), float(f.drifted)) for f in g.features])
        yield family("mlstrata_monitor_prediction_psi", "Population stability index of the "
                     "predictions in the last window, against the validation predictions.", (),
                     [((), g.prediction_psi)])
        yield family("mlstrata_monitor_drift", "1 when any input or the predictions drifted in "
                     "the last window.", (), [((), float(g.drift))])
        yield family("mlstrata_monitor_decay", "1 when a live metric fails its gate or falls "
                     "below the validation interval.", (), [((), float(g.decay))])
        yield family("mlstrata_monitor_metric", "Live metric of the last window with feedback.",
                     ("metric",), [((m.metric,), m.value) for m in g.metrics])
        yield family("mlstrata_monitor_metric_validation_low", "Lower bound of the metric's "
                     "validation 95% bootstrap interval.", ("metric",),
                     [((m.metric,), m.validation_low) for m in g.metrics])
        yield family("mlstrata_monitor_metric_validation_high", "Upper bound of the metric's "
                     "validation 95% bootstrap interval.", ("metric",),
                     [((m.metric,), m.validation_high) for m in g.metrics])
        yield family("mlstrata_monitor_metric_decay", "1 when the live metric fell outside its "
                     "validation interval on the worse side.",
                     ("metric",), [((m.metric,), float(m.decayed)) for m in g.metrics])
        yield family("mlstrata_monitor_label_coverage", "Share of the last window's predictions "
                     "with feedback (a label).", (), [((), g.label_coverage)])
        yield family("mlstrata_monitor_warning_rate", "Share of the last window's predictions "
                     "scored with a contract warning.", (), [((), g.warning_rate)])
        yield family("mlstrata_monitor_window_records", "Predictions in the last window.", (),
                     [((), g.window_records)])
        yield family("mlstrata_monitor_last_window_end_timestamp_seconds", "End of the last "
                     "window checked (Unix time).", (),
                     [((), g.window_end.timestamp() if g.window_end else None)])
        yield family("mlstrata_monitor_last_run_timestamp_seconds", "When mlstrata monitor wrote "
                     "this file (Unix time).", (), [((), g.run_at.timestamp())])
