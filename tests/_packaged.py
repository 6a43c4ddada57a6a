"""Real model packages built the way users build them, shared by the serving-pattern tests.

:func:`build_credit_package`: ``mlstrata run`` on 1,500 synthetic credit applications with a
small, fast configuration (logistic regression only, 2 folds, no tuning or ensembles): the package
has numeric, text, date and derived inputs, a strict contract (categories, ranges, a pattern) and
a registered version, like the demo's, in a few seconds.

:func:`build_uncontracted_packages`: the same table ingested and trained without ``mlstrata
run``, so no contract was ever inferred — text, float, integer and date inputs, all nullable —
with a Gaussian naive Bayes, which answers NaN for a record with an extreme number (``1e300``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from mlstrata import api

Relabel = Callable[[pa.Table], pa.Array]
"""The target column a test trains on instead of ``default``'s 0/1, computed from the table."""

CONFIG = """\
project: serve-tests
data: {sealed_test_fraction: 0.2, seed: 0, pii: {email: drop, phone: drop}}
model:
  seed: 0
  candidates: [{candidate}]
  cv: {folds: 2}
  tune: {top_k: 0}
  ensembles: []
pipeline:
  source: data/credit.csv
  name: credit
  target: default
  key: application_id
  time: application_date
  recipe: recipe.yaml
  contract: contracts/credit.yaml
  split: {strategy: stratified, val: 0.2, seed: 0}
"""

RECIPE = """\
steps:
  - filter: {sql: "regexp_full_match(postal_code, '[0-9]{5}')"}
  - impute: {columns: [income, age, employment_years], strategy: median}
"""


def build_credit_package(root: Path, candidate: str = "logistic", rows: int = 1500, *,
                         relabel: Relabel | None = None, ensembles: str = "[]") -> Path:
    """Run the pipeline in a new project under ``root``; return the package directory.

    ``candidate`` is the model families trained, comma-separated (benchmarks use ``hist_gb``, a
    heavier model); ``relabel`` replaces the 0/1 target by labels as real tables have them.
    """
    project = root / "project"
    api.init(project, "serve-tests")
    config = CONFIG.replace("{candidate}", candidate).replace("ensembles: []",
                                                              f"ensembles: {ensembles}")
    (project / "mlstrata.yaml").write_text(config)
    (project / "recipe.yaml").write_text(RECIPE)
    source = api.synth_credit(project / "data" / "credit.csv", rows=rows, seed=3)
    if relabel is not None:
        table = pacsv.read_csv(source)
        target = table.schema.get_field_index("default")
        pacsv.write_csv(table.set_column(target, "default", relabel(table)), source)
    api.run(workspace=project)
    return next((project / "packages").glob("*-1"))


UNCONTRACTED_CONFIG = """\
project: uncontracted
data: {sealed_test_fraction: 0.2, seed: 0, pii: {email: drop, phone: drop, postal_code: keep}}
model: {seed: 0, candidates: [naive_bayes], cv: {folds: 2}, tune: {top_k: 0}, ensembles: []}
"""

TYPES_ONLY_CONTRACT = """\
version: 1
dataset: credit
columns:
  age: {type: integer}
  income: {type: float}
  employment_years: {type: integer}
  loan_amount: {type: integer}
  term_months: {type: integer}
  interest_rate: {type: float}
  debt_to_income: {type: float}
  num_credit_lines: {type: integer}
  previous_defaults: {type: integer}
  home_ownership: {type: text}
  purpose: {type: text}
  region: {type: text}
  application_date: {type: date}
"""


def build_uncontracted_packages(root: Path, rows: int = 1500) -> tuple[Path, Path]:
    """Ingest → train → package with no contract inferred; two packages of the one model.

    The first has no contract at all, so its signature takes the training ranges as its rules;
    the second was packaged with a hand-written contract of types only (no ranges), so an extreme
    number reaches the model — which answers NaN for it.
    """
    from mlstrata.model.train import train
    from mlstrata.package.builder import build_package

    project = root / "project"
    api.init(project, "uncontracted")
    (project / "mlstrata.yaml").write_text(UNCONTRACTED_CONFIG)
    api.synth_credit(project / "data" / "credit.csv", rows=rows, seed=3)
    api.ingest(project / "data" / "credit.csv", "credit", target="default",
               key="application_id", workspace=project)
    ws = api.open_workspace(project)
    model = train(ws, "credit").model
    bounded = build_package(ws, model.ref, project / "packages" / "bounded", zip_=False).path
    (project / "contracts").mkdir(exist_ok=True)
    (project / "contracts" / "credit.yaml").write_text(TYPES_ONLY_CONTRACT)
    unbounded = build_package(ws, model.ref, project / "packages" / "types-only",
                              zip_=False).path
    return bounded, unbounded
