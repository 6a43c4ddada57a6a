"""Convert a fitted model pipeline to ONNX and measure how closely ONNX agrees with it.

The graph starts *after* the optional ``dates`` step (date columns are expanded by the runtime's
``expand_dates`` before onnxruntime runs) and covers the rest of the pipeline: preprocessing and
estimator in one graph.

Precision, measured rather than assumed. Converting with float32 inputs makes tree models
disagree with scikit-learn: a scaled feature rounded to float32 lands on the other side of a
split threshold (HistGradientBoosting on 10,000 rows: up to 0.23 in probability; random forest
0.07). So numeric inputs are fed as **double** and every preprocessing operator runs in double
(``SimpleImputer`` gets a double converter: ``IsNaN`` + ``Where``). Tree ensembles keep their
thresholds in double (``nodes_values_as_tensor``, ``ai.onnx.ml`` opset 3, which onnxruntime runs
with double inputs); estimators that scikit-learn itself evaluates on float32 inputs (decision
trees, random forests, extra trees) get the same float32 rounding in front of their trees.
Parity then is about 1e-7 — see :func:`measure_parity`. When a model cannot be converted in
double, float32 is tried and parity decides whether it is acceptable. The double-precision
converters and graph fixes live in :mod:`.double_precision`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MlstrataError
from ..runtime.session import open_session
from .double_precision import concatenate_without_float32, converting, register_converters

__all__ = [
    "ONNX_OPSET",
    "PARITY_BOUND",
    "OnnxConversionError",
    "OnnxExport",
    "Parity",
    "ParityError",
    "measure_parity",
    "onnx_feeds",
    "onnx_problem",
    "split_dates",
    "to_onnx",
]

ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
PARITY_BOUND = 1e-4
_CLASSIFIER_OUTPUTS = ("label", "probabilities")


class OnnxConversionError(MlstrataError):
    """A fitted model cannot be converted to ONNX, or the ONNX graph disagrees with it."""


class ParityError(OnnxConversionError):
    """The ONNX graph's scores differ from the native model's by more than the bound."""


@dataclass(frozen=True)
class OnnxExport:
    """A converted model: the serialized graph and what its inputs and outputs are."""

    model_bytes: bytes
    input_schema: list[dict[str, str]]
    outputs: list[dict[str, Any]]
    opset: dict[str, int]
    float_precision: str


@dataclass(frozen=True)
class Parity:
    """How closely ONNX agrees with the native pipeline on ``rows`` rows.

    ``max_abs_diff_scores`` compares probabilities (classification), predicted values
    (regression) or cluster distances (clustering). For regression the bound scales with the
    target: ``1e-4 * max(1, |prediction|)``, since a float32 output cannot be closer.
    """

    max_abs_diff_scores: float
    label_mismatches: int
    rows: int
    allowed_diff: float = PARITY_BOUND

    @property
    def passed(self) -> bool:
        """True when the scores agree within the bound and no label flipped."""
        return self.max_abs_diff_scores <= self.allowed_diff and self.label_mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        """The parity figures, JSON-ready."""
        return {"max_abs_diff": self.max_abs_diff_scores, "label_mismatches": self.label_mismatches,
                "rows": self.rows, "allowed_diff": self.allowed_diff, "passed": self.passed}

    def require(self, model: str) -> None:
        """Raise :class:`ParityError` unless ONNX agrees with the native model."""
        if not self.passed:
            raise ParityError(
                f"{model}: ONNX differs from the native model by {self.max_abs_diff_scores:.3g} "
                f"(allowed {self.allowed_diff:.3g}) with {self.label_mismatches} flipped labels "
                f"in {self.rows} rows; choose another candidate or set model.require_onnx: false"
            )


def split_dates(pipeline: Any) -> tuple[Any | None, Any]:
    """Split off the leading ``dates`` step: (date expander or None, the rest of the pipeline)."""
    from sklearn.pipeline import Pipeline

    if isinstance(pipeline, Pipeline) and pipeline.steps and pipeline.steps[0][0] == "dates":
        rest = pipeline.steps[1:]
        return pipeline.steps[0][1], rest[0][1] if len(rest) == 1 else Pipeline(rest)
    return None, pipeline


def to_onnx(pipeline: Any, sample: pd.DataFrame, task: str) -> OnnxExport:
    """Convert ``pipeline`` (after its ``dates`` step) to ONNX; ``sample`` gives the input columns.

    Raises :class:`OnnxConversionError` naming the step that has no ONNX converter.
    """
    register_converters()
    expander, model = split_dates(pipeline)
    frame = expander.transform(sample) if expander is not None else sample
    schema = [_input_spec(str(name), frame[name]) for name in frame.columns]
    errors: list[str] = []
    for precision in ("double", "float32"):
        try:
            onnx_model = _convert(model, schema, precision, task)
            _check_loads(onnx_model)
        except Exception as exc:  # noqa: BLE001 - converter failures come in every type
            errors.append(_conversion_message(model, exc))
            continue
        outputs = _rename_outputs(onnx_model, task, model)
        schema = [{**spec, "onnx_type": _onnx_type(spec, precision)} for spec in schema]
        return OnnxExport(onnx_model.SerializeToString(), schema, outputs, dict(ONNX_OPSET),
                          precision)
    raise OnnxConversionError(errors[-1])


def onnx_problem(pipeline: Any, rows: pd.DataFrame, task: str) -> str | None:
    """Why ``pipeline`` cannot be packaged as ONNX (no converter, or parity over the bound on
    ``rows``), or None: the check ``mlstrata train`` runs on its winner before storing it."""
    try:
        export = to_onnx(pipeline, rows.head(20), task)
        measure_parity(pipeline, export.model_bytes, rows, task).require("the model")
    except OnnxConversionError as exc:
        return str(exc)
    return None


def onnx_feeds(frame: pd.DataFrame, input_schema: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The onnxruntime input dictionary for ``frame``: one ``[n, 1]`` array per column.

    Text goes in as strings (a missing value becomes ``""``), everything else as numbers of the
    graph's precision (a missing value becomes NaN).
    """
    feeds: dict[str, Any] = {}
    for spec in input_schema:
        column = frame[spec["name"]]
        if spec["onnx_type"] == "string":
            values = column.astype(object).where(column.notna(), "").astype(str).to_numpy()
        else:
            dtype = np.float64 if spec["onnx_type"] == "double" else np.float32
            values = pd.to_numeric(column.astype(object), errors="coerce").to_numpy(dtype=dtype)
        feeds[spec["name"]] = values.reshape(-1, 1)
    return feeds


def measure_parity(pipeline: Any, onnx_bytes: bytes, frame: pd.DataFrame, task: str) -> Parity:
    """Run onnxruntime and the native pipeline on ``frame`` and compare their outputs."""
    expander, model = split_dates(pipeline)
    expanded = expander.transform(frame) if expander is not None else frame
    session = open_session(onnx_bytes)
    schema = [{"name": i.name, "onnx_type": _ORT_TYPES.get(i.type, "string")}
              for i in session.get_inputs()]
    results = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, onnx_feeds(expanded, schema)), strict=True))
    return _compare(model, expanded, results, task)


_ORT_TYPES = {"tensor(double)": "double", "tensor(float)": "float", "tensor(string)": "string"}


def _compare(model: Any, frame: pd.DataFrame, results: dict[str, Any], task: str) -> Parity:
    rows = len(frame)
    if task == "regression":
        native = np.asarray(model.predict(frame), dtype=np.float64).ravel()
        diff = np.abs(results["value"].astype(np.float64).ravel() - native)
        allowed = PARITY_BOUND * max(1.0, float(np.abs(native).max(initial=0.0)))
        return Parity(float(diff.max(initial=0.0)), 0, rows, allowed)
    scores = model.predict_proba(frame) if task != "clustering" else model.transform(frame)
    key = "probabilities" if task != "clustering" else "scores"
    diff = np.abs(results[key].astype(np.float64) - np.asarray(scores, dtype=np.float64))
    labels = np.asarray(model.predict(frame))
    onnx_labels = results["label"].ravel()
    mismatches = int((onnx_labels.astype(labels.dtype) != labels).sum())
    return Parity(float(diff.max(initial=0.0)), mismatches, rows)


def _input_spec(name: str, column: pd.Series) -> dict[str, str]:
    if pd.api.types.is_bool_dtype(column):
        logical = "boolean"
    elif pd.api.types.is_integer_dtype(column):
        logical = "integer"
    elif pd.api.types.is_numeric_dtype(column):
        logical = "float"
    else:
        logical = "text"
    return {"name": name, "logical_type": logical}


def _onnx_type(spec: Mapping[str, str], precision: str) -> str:
    if spec["logical_type"] == "text":
        return "string"
    return "double" if precision == "double" else "float"


def _convert(model: Any, schema: list[dict[str, str]], precision: str, task: str) -> Any:
    import warnings

    from skl2onnx import to_onnx as skl_to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    number = DoubleTensorType if precision == "double" else FloatTensorType
    types = [(s["name"], StringTensorType([None, 1]) if s["logical_type"] == "text"
              else number([None, 1])) for s in schema]
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if task in ("binary", "multiclass") else None
    with warnings.catch_warnings(), converting(precision):
        warnings.simplefilter("ignore")
        onnx_model = skl_to_onnx(model, initial_types=types, options=options,
                                 target_opset=dict(ONNX_OPSET))
    concatenate_without_float32(onnx_model.graph)
    _restore_input_names(onnx_model.graph, [name for name, _ in types])
    return onnx_model


def _restore_input_names(graph: Any, names: list[str]) -> None:
    """Give the graph inputs the column names again: skl2onnx turns every character that is
    not a letter, digit or underscore into ``_`` (``od280/od315``, ``net income``, ``x.y``),
    while the runtime and parity feed the graph by column name (ONNX takes any name)."""
    for graph_input, name in zip(graph.input, names, strict=True):
        _rename(graph, graph_input.name, name)


def _check_loads(onnx_model: Any) -> None:
    """Fail now, not at serving time, when onnxruntime has no kernel for some operator."""
    open_session(onnx_model.SerializeToString())


def _rename_outputs(onnx_model: Any, task: str, model: Any) -> list[dict[str, Any]]:
    """Give the graph outputs the names the signature uses and describe them."""
    graph_outputs = [o.name for o in onnx_model.graph.output]
    if task == "regression":
        names = ["value"]
    elif task == "clustering":
        names = ["label", "scores"]
    else:
        names = list(_CLASSIFIER_OUTPUTS)
    for old, new in zip(graph_outputs, names, strict=True):
        _rename(onnx_model.graph, old, new)
    if task == "regression":
        return [{"name": "value", "type": "float", "shape": [None, 1]}]
    if task == "clustering":
        return [{"name": "label", "type": "integer", "shape": [None]},
                {"name": "scores", "type": "float", "shape": [None, None],
                 "meaning": "distance to each cluster centre"}]
    classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    return [{"name": "label", "type": _label_type(classes[0]),
             "shape": [None]},
            {"name": "probabilities", "type": "float", "shape": [None, len(classes)],
             "classes": classes}]


def _label_type(label: Any) -> str:
    """The logical type of class labels (a boolean target gives 0/1 labels in ONNX)."""
    if isinstance(label, bool):
        return "boolean"
    return "text" if isinstance(label, str) else "integer"


def _rename(graph: Any, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new


def _conversion_message(model: Any, exc: Exception) -> str:
    culprit = _unconvertible_step(model)
    detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return (f"cannot convert {culprit} to ONNX ({detail}); choose another candidate, or set "
            "model.require_onnx: false in mlstrata.yaml and serve the native model")


def _unconvertible_step(model: Any) -> str:
    """The first estimator or transformer in ``model`` that has no registered ONNX converter."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    for step in _walk(model):
        if type(step) not in sklearn_operator_name_map and not _is_container(step):
            return type(step).__name__
    return f"the pipeline ending in {type(_walk(model)[-1]).__name__}"


def _walk(model: Any) -> list[Any]:
    steps: list[Any] = [model]
    if hasattr(model, "steps"):
        steps += [s for _, s in model.steps for s in _walk(s)]
    elif hasattr(model, "transformers_"):
        steps += [s for _, t, _ in model.transformers_ if t not in ("drop", "passthrough")
                  for s in _walk(t)]
    return steps


def _is_container(step: Any) -> bool:
    return hasattr(step, "steps") or hasattr(step, "transformers_")


# -- converter registration ---------------------------------------------------------------------
