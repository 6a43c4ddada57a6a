"""The model stratum: features, candidates, cross-validation, tuning, ensembles, evaluation.

Stages read dataset versions from the workspace and store fitted models as ``model`` artifacts
(a joblib'd scikit-learn pipeline + catalog meta). Packaging and serving are not here.
"""

from __future__ import annotations

__all__: list[str] = []
