"""A credit project with a champion and later batches of synthetic data, for the retrain tests.

:func:`credit_months` cuts synthetic applications (dated over 2021–2023) by date: the first
year trains the champion; later months become batches. :func:`changed_relationship` redraws the
labels of a batch from a new relationship (the interest rate now lowers the risk: the lender
repriced), which the champion cannot know; :func:`corrupted_labels` shuffles them (a broken
label feed). :func:`champion_project` runs ``mlstrata run`` on the first year and promotes the
result to ``champion``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlstrata import api
from mlstrata.data.synth import credit_batches
from mlstrata.package.registry import promote
from mlstrata.workspace import Workspace
from tests import _packaged

GATE = '  gates: {metrics: ["roc_auc >= 0.62"], max_latency_ms: 1000}\n'
CONFIG = (_packaged.CONFIG.replace("{candidate}", "logistic")
          .replace("  ensembles: []\n", "  ensembles: []\n" + GATE)
          + "retrain: {history_batches: 1, bootstrap: 300, confidence: 0.95, margin: 0.0}\n")
"""The serving tests' small, fast project, with a gate and the retrain policy of the tests."""


def credit_months(rows: int = 6000, seed: int = 5) -> pa.Table:
    """``rows`` synthetic applications, oldest first."""
    table = pa.Table.from_batches(list(credit_batches(rows, seed)))
    return table.sort_by("application_date")


def between(table: pa.Table, first: date, end: date) -> pa.Table:
    """The applications dated in ``[first, end)``."""
    dates = table.column("application_date")
    return table.filter(pc.and_(pc.greater_equal(dates, pa.scalar(first, pa.date32())),
                                pc.less(dates, pa.scalar(end, pa.date32()))))


def changed_relationship(table: pa.Table, seed: int = 1) -> pa.Table:
    """The same applications with labels from a new relationship: risk falls with the rate."""
    rate = table.column("interest_rate").to_numpy(zero_copy_only=False)
    z = (rate - np.nanmean(rate)) / np.nanstd(rate)
    p = 1 / (1 + np.exp(-(-2.5 * z - 1.0)))
    labels = np.random.default_rng(seed).binomial(1, p)
    return _with_labels(table, labels)


def corrupted_labels(table: pa.Table, seed: int = 2) -> pa.Table:
    """The same applications with their labels shuffled (a broken label feed)."""
    labels = table.column("default").to_numpy()
    return _with_labels(table, np.random.default_rng(seed).permutation(labels))


def _with_labels(table: pa.Table, labels: np.ndarray) -> pa.Table:
    index = table.schema.get_field_index("default")
    return table.set_column(index, "default", pa.array(labels, pa.int64()))


def write(table: pa.Table, path: Path) -> Path:
    """``table`` as CSV at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)
    return path


def champion_project(root: Path, first_year: pa.Table, config: str = CONFIG) -> Workspace:
    """``mlstrata run`` on ``first_year`` and ``credit@1`` promoted to champion."""
    project = root / "project"
    api.init(project, "retrain-tests")
    (project / "mlstrata.yaml").write_text(config)
    (project / "recipe.yaml").write_text(_packaged.RECIPE)
    write(first_year, project / "data" / "credit.csv")
    report = api.run(workspace=project)
    assert report.passed, report.to_json()
    ws = api.open_workspace(project)
    promote(ws, "credit@1")
    return ws
