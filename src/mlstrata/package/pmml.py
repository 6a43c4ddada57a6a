"""Optional PMML export (``mlstrata package --pmml``) through sklearn2pmml, which runs Java.

PMML is read by many enterprise scoring engines. The fitted pipeline is first rewritten into
steps the JPMML converter knows (``_pmml_steps.translate``: mlstrata's own transformers become
equivalent fitted scikit-learn / sklearn2pmml steps, nothing is refitted), converted by
sklearn2pmml's Java converter, and then the written ``model.pmml`` is *evaluated* by a real PMML
engine (JPMML-Evaluator through the ``jpmml_evaluator`` package) on the package's parity rows
and compared with the native pipeline's probabilities or predictions: :func:`measure_pmml_parity`.

Inputs of the PMML document are the raw feature columns: numbers as doubles (booleans as 0/1),
text as strings (empty text is missing; unseen levels are scored as ``(other)``), date columns
as PMML ``date`` (``YYYY-MM-DD``) and timestamp columns as ``dateTime``
(``YYYY-MM-DDTHH:MM:SS``, UTC).

When a pipeline cannot be expressed in PMML, or the PMML disagrees with the native model, a
:class:`PmmlExportError` says so in one line and nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MlstrataError

__all__ = ["PMML_PARITY_BOUND", "PmmlExportError", "export_pmml", "measure_pmml_parity"]

PMML_PARITY_BOUND = 1e-6
"""PMML is evaluated in double precision, like scikit-learn: allowed max abs difference of
probabilities (regression: times ``max(1, |prediction|)``)."""

_WITHOUT = "package it without --pmml (ONNX and the native model are unaffected)"
# The Java converter reports every failed conversion to https://telemetry.jpmml.org and has no
# switch to turn that off; a proxy on 127.0.0.1 (port 9, discard) keeps it on this machine.
_NO_TELEMETRY = [f"-D{scheme}.{key}={value}" for scheme in ("http", "https")
                 for key, value in (("proxyHost", "127.0.0.1"), ("proxyPort", "9"))]


class PmmlExportError(MlstrataError):
    """The pipeline cannot be written as PMML, or sklearn2pmml / Java is not available."""


def export_pmml(pipeline: Any, path: Path, columns: Sequence[str], target: str | None,
                date_types: Mapping[str, str] | None = None) -> None:
    """Write fitted ``pipeline`` as PMML to ``path`` (needs sklearn2pmml and Java 11+).

    ``columns`` are the raw input columns in order, ``date_types`` maps date columns to
    ``date`` or ``timestamp`` (the PMML ``date`` or ``dateTime`` data type; default timestamp).
    """
    if target is None:
        raise PmmlExportError("PMML export covers classification and regression models; this "
                              f"model has no target (clustering); {_WITHOUT}")
    sklearn2pmml = _converter()
    from sklearn2pmml.pipeline import PMMLPipeline

    from ._pmml_steps import translate

    steps = translate(pipeline, dict(date_types or {}))
    pmml_pipeline = PMMLPipeline(steps)
    pmml_pipeline.active_fields = np.asarray(list(columns))
    pmml_pipeline.target_fields = np.asarray([target])
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            sklearn2pmml(pmml_pipeline, str(path), java_opts=_NO_TELEMETRY)
    except Exception as exc:  # noqa: BLE001 - the Java converter reports any failure type
        detail = _java_reason(printed.getvalue()) or str(exc).strip()[:200] or type(exc).__name__
        raise PmmlExportError(f"this model cannot be expressed in PMML ({detail}); "
                              f"{_WITHOUT}") from exc


def measure_pmml_parity(path: Path, pipeline: Any, frame: Any, task: str, target: str | None,
                        date_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Evaluate ``path`` with JPMML-Evaluator on ``frame`` and compare with ``pipeline``.

    Returns ``{max_abs_diff, label_mismatches, rows, allowed_diff, passed, evaluator}``; raises
    :class:`PmmlExportError` when the PMML document disagrees with the native model.
    """
    evaluator = _evaluator(path)
    results = evaluator.evaluateAll(_pmml_inputs(frame, dict(date_types or {})))
    if "errors" in results.columns and results["errors"].notna().any():
        first = str(results["errors"].dropna().iloc[0])[:200]
        raise PmmlExportError(f"the PMML engine could not score the parity rows ({first}); "
                              f"{_WITHOUT}")
    parity = _compare(pipeline, frame, results, task, target or "")
    if not parity["passed"]:
        raise PmmlExportError(
            f"model.pmml differs from the native model by {parity['max_abs_diff']:.3g} (allowed "
            f"{parity['allowed_diff']:.3g}) with {parity['label_mismatches']} flipped labels in "
            f"{parity['rows']} rows; {_WITHOUT}")
    return parity


def _converter() -> Any:
    """``sklearn2pmml.sklearn2pmml``, after checking that the package and Java are there."""
    try:
        from sklearn2pmml import sklearn2pmml
    except ImportError as exc:
        raise PmmlExportError("--pmml needs sklearn2pmml, which is not installed; run "
                              "'pip install mlstrata[pmml]' (it also needs Java 11+)") from exc
    if shutil.which("java") is None:
        raise PmmlExportError("--pmml needs Java 11+ on PATH (sklearn2pmml runs the JPMML "
                              "converter); install a JRE or drop --pmml")
    return sklearn2pmml


def _evaluator(path: Path) -> Any:
    """A verified JPMML-Evaluator for ``path`` (JVM in this process, through JPype)."""
    try:
        from jpmml_evaluator import make_evaluator  # type: ignore[import-untyped]
    except ImportError as exc:
        raise PmmlExportError("--pmml measures parity with jpmml_evaluator, which is not "
                              "installed; run 'pip install mlstrata[pmml]'") from exc
    try:
        return make_evaluator(str(path), backend="jpype").verify()
    except Exception as exc:  # noqa: BLE001 - Java exceptions arrive as many types
        raise PmmlExportError(f"the PMML engine cannot load the written model.pmml "
                              f"({str(exc).strip()[:200]}); {_WITHOUT}") from exc


def _pmml_inputs(frame: Any, date_types: Mapping[str, str]) -> Any:
    """``frame`` as the PMML document reads it: ISO dates, booleans as 0/1, NA as missing."""
    from ..runtime.dates import parse_date

    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if name in date_types:
            unit = "D" if date_types[name] == "date" else "s"
            out[name] = [None if np.isnat(stamp := parse_date(v)) else
                         str(stamp.astype(f"datetime64[{unit}]")) for v in column.tolist()]
        elif column.dtype == bool or str(column.dtype) == "boolean":
            out[name] = column.astype("float64")
        elif column.dtype == object or str(column.dtype) in ("str", "string"):
            out[name] = [None if v is None or v != v else v for v in column.tolist()]
    return out


def _compare(pipeline: Any, frame: Any, results: Any, task: str, target: str) -> dict[str, Any]:
    rows = len(frame)
    if task == "regression":
        native = np.asarray(pipeline.predict(frame), dtype=np.float64).ravel()
        pmml = results[target].to_numpy(dtype=np.float64)
        allowed = PMML_PARITY_BOUND * max(1.0, float(np.abs(native).max(initial=0.0)))
        return _figures(np.abs(pmml - native), 0, rows, allowed)
    columns = {_label(c[len("probability("):-1]): c for c in results.columns
               if c.startswith("probability(")}
    native_p = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    pmml_p = results[[columns[_label(c)] for c in pipeline.classes_]].to_numpy(dtype=np.float64)
    labels = np.asarray(pipeline.predict(frame))
    pmml_labels = results[target].to_numpy()
    mismatches = int(sum(_label(a) != _label(b) for a, b in zip(pmml_labels, labels, strict=True)))
    return _figures(np.abs(pmml_p - native_p), mismatches, rows, PMML_PARITY_BOUND)


def _label(value: Any) -> str:
    """A class label as both sides spell it (PMML writes booleans as ``true``/``false``)."""
    return str(value).lower()


def _figures(diff: Any, mismatches: int, rows: int, allowed: float) -> dict[str, Any]:
    from importlib import metadata

    worst = float(np.nanmax(diff, initial=0.0)) if not np.isnan(diff).any() else float("inf")
    return {"max_abs_diff": worst, "label_mismatches": mismatches, "rows": rows,
            "allowed_diff": allowed, "passed": worst <= allowed and mismatches == 0,
            "evaluator": f"jpmml_evaluator {metadata.version('jpmml_evaluator')}"}


def _java_reason(output: str) -> str:
    """The JPMML exception line (e.g. ``SkLearnException: Scikit-Learn version ... ``)."""
    found = re.search(r"^\S*(?:Exception|Error): (.+)$", output, re.MULTILINE)
    return found.group(1).strip()[:200] if found else ""
