"""A real model package built the way users build one, shared by the serving-pattern tests.

``mlstrata run`` on 1,500 synthetic credit applications with a small, fast configuration
(logistic regression only, 2 folds, no tuning or ensembles): the package has numeric, text,
date and derived inputs, a strict contract (categories, ranges, a pattern) and a registered
version, like the demo's, in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

from mlstrata import api

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


def build_credit_package(root: Path, candidate: str = "logistic", rows: int = 1500) -> Path:
    """Run the pipeline in a new project under ``root``; return the package directory.

    ``candidate`` is the one model family trained (benchmarks use ``hist_gb``, a heavier model).
    """
    project = root / "project"
    api.init(project, "serve-tests")
    (project / "mlstrata.yaml").write_text(CONFIG.replace("{candidate}", candidate))
    (project / "recipe.yaml").write_text(RECIPE)
    api.synth_credit(project / "data" / "credit.csv", rows=rows, seed=3)
    api.run(workspace=project)
    return next((project / "packages").glob("*-1"))
