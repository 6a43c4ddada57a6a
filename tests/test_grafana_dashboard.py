"""examples/grafana-mlstrata.json: well-formed, every query valid PromQL (promtool), and every
metric it plots one that ``GET /metrics`` or ``mlstrata monitor --prometheus`` writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlstrata.monitor.prometheus import FeatureGauge, MetricGauge, MonitorGauges, render
from mlstrata.serve.metrics import ServeMetrics

DASHBOARD = Path(__file__).parent.parent / "examples" / "grafana-mlstrata.json"
_METRIC = re.compile(r"\bmlstrata_[a-z0-9_]+\b")
# Grafana's variables, as a panel would expand them
_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "6h", "$job": ".*",
              "$route": ".*", "$model": ".*"}


def queries() -> list[tuple[str, str]]:
    """Every panel's queries as (panel title, expression)."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    return [(panel["title"], target["expr"]) for panel in panels for target in panel["targets"]]


def exposed_names(text: str) -> set[str]:
    """The sample names an exposition's families can have (histograms: _bucket, _sum, _count)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} \
                if kind == "histogram" else {name}
    return names


def test_every_plotted_metric_is_one_mlstrata_writes() -> None:
    served = exposed_names(ServeMetrics().exposition().decode())
    monitored = exposed_names(render(MonitorGauges(
        "m", run_at=datetime.now(UTC), features=(FeatureGauge("x", 0.1, False),),
        metrics=(MetricGauge("auc", 0.8, 0.7, 0.9),))).decode())
    assert "mlstrata_requests_total" in served and "mlstrata_monitor_decay" in monitored
    plotted: dict[str, str] = {}
    for title, expr in queries():
        for name in _METRIC.findall(expr):
            plotted.setdefault(name, title)
    unknown = {name: title for name, title in plotted.items() if name not in served | monitored}
    assert unknown == {}
    # and the dashboard shows each family: requests, refusals, warnings, predictions, log, drift
    for family in ("mlstrata_request_duration_seconds_bucket", "mlstrata_refusals_total",
                   "mlstrata_warnings_total", "mlstrata_prediction_probability_bucket",
                   "mlstrata_predicted_class_total", "mlstrata_prediction_log_dropped_total",
                   "mlstrata_model_info", "mlstrata_monitor_feature_psi",
                   "mlstrata_monitor_decay"):
        assert family in plotted, family


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus'; .ci/run installs it)")
    rules: list[dict[str, Any]] = []
    for index, (_, expr) in enumerate(queries()):
        for variable in sorted(_VARIABLES, key=len, reverse=True):
            expr = expr.replace(variable, _VARIABLES[variable])
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
