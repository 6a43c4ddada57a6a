"""Optional PMML export (``mlstrata package --pmml``) through sklearn2pmml, which runs Java.

PMML is read by many enterprise scoring engines. Not every pipeline can be expressed in it (a
custom transformer, an ensemble sklearn2pmml does not know); then the export says so in one line
and the rest of the package is unaffected.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import MlstrataError

__all__ = ["PmmlExportError", "export_pmml"]


class PmmlExportError(MlstrataError):
    """The pipeline cannot be written as PMML, or sklearn2pmml / Java is not available."""


def export_pmml(pipeline: Any, path: Path, columns: list[str], target: str | None) -> None:
    """Write ``pipeline`` as PMML to ``path`` (needs the sklearn2pmml package and Java >= 11)."""
    try:
        from sklearn2pmml import make_pmml_pipeline, sklearn2pmml
    except ImportError as exc:
        raise PmmlExportError("--pmml needs sklearn2pmml, which is not installed; run "
                              "'pip install sklearn2pmml' (it also needs Java 11+)") from exc
    if shutil.which("java") is None:
        raise PmmlExportError("--pmml needs Java 11+ on PATH (sklearn2pmml runs the JPMML "
                              "converter); install a JRE or drop --pmml")
    printed = io.StringIO()
    try:
        pmml_pipeline = make_pmml_pipeline(pipeline, active_fields=columns,
                                           target_fields=[target] if target else None)
        with contextlib.redirect_stdout(printed):
            sklearn2pmml(pmml_pipeline, str(path))
    except Exception as exc:  # noqa: BLE001 - the Java converter reports any failure type
        detail = _java_reason(printed.getvalue()) or str(exc).strip()[:200] or type(exc).__name__
        raise PmmlExportError(
            f"this model cannot be expressed in PMML ({detail}); package it without --pmml "
            "(ONNX and the native model are unaffected)") from exc


def _java_reason(output: str) -> str:
    """The JPMML exception line (e.g. ``SkLearnException: Scikit-Learn version ... ``)."""
    found = re.search(r"^\S*(?:Exception|Error): (.+)$", output, re.MULTILINE)
    return found.group(1).strip()[:200] if found else ""
