"""skl2onnx shape calculators and converters for the transformers in ``_transformers``.

Imported only by :func:`mlstrata.model._transformers.register_onnx_converters`, i.e. when a
pipeline is exported, so that training never loads skl2onnx. Numeric tensors keep the input's
element type (float or double); text is a string tensor with "" for missing.
"""

from __future__ import annotations

from typing import Any

from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    StringTensorType,
    guess_proto_type,
)
from skl2onnx.proto import onnx_proto

__all__ = [
    "convert_box_cox",
    "convert_identity",
    "convert_imputer",
    "convert_math",
    "convert_missing_flags",
    "convert_levels",
    "flags_shape",
    "same_shape",
]

_ML = "ai.onnx.ml"


def _numeric_type(operator: Any) -> type:
    """The output tensor class: the input's when it is float or double, float otherwise."""
    cls = type(operator.inputs[0].type)
    return cls if cls in (FloatTensorType, DoubleTensorType) else FloatTensorType


def same_shape(operator: Any) -> None:
    """One output column per input column; text stays text, numbers stay float/double."""
    raw = operator.raw_operator
    cls = StringTensorType if type(raw).__name__ == "CategoryLevels" else _numeric_type(operator)
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = cls([rows, raw.n_features_in_])


def flags_shape(operator: Any) -> None:
    """One flag column per column that had missing values in training."""
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _numeric_type(operator)([rows, len(operator.raw_operator.columns_)])


def _node(scope: Any, container: Any, op_type: str, inputs: list[str], **attrs: Any) -> str:
    """Add one node with a fresh output name and return that name."""
    out: str = scope.get_unique_variable_name(op_type.lower())
    container.add_node(op_type, inputs, [out], name=scope.get_unique_operator_name(op_type),
                       **attrs)
    return out


def _constant(scope: Any, container: Any, proto: int, values: list[Any]) -> str:
    name: str = scope.get_unique_variable_name("const")
    container.add_initializer(name, proto, [len(values)], values)
    return name


def convert_identity(scope: Any, operator: Any, container: Any) -> None:
    """``AsFloat``: Cast to the declared output type (a no-op when it already is)."""
    container.add_node("Cast", [operator.inputs[0].full_name], [operator.outputs[0].full_name],
                       to=guess_proto_type(operator.outputs[0].type),
                       name=scope.get_unique_operator_name("Cast"))


def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """``NumericImputer``: Where(IsNaN(x), statistics_, x) in the input's precision."""
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    proto = guess_proto_type(operator.outputs[0].type)
    statistics = [float(v) for v in operator.raw_operator.statistics_]
    container.add_node("Where", [_node(scope, container, "IsNaN", [x]),
                                 _constant(scope, container, proto, statistics), x], [out],
                       name=scope.get_unique_operator_name("Where"))


def convert_math(scope: Any, operator: Any, container: Any) -> None:
    """``MathTransform``: Mul(x, x), or Log(Max(x, 0) + 1), or Sqrt(Max(x, 0))."""
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    proto = guess_proto_type(operator.outputs[0].type)
    func = operator.raw_operator.func
    if func == "square":
        container.add_node("Mul", [x, x], [out], name=scope.get_unique_operator_name("Mul"))
        return
    clipped = _node(scope, container, "Max", [x, _constant(scope, container, proto, [0.0])])
    if func == "sqrt":
        container.add_node("Sqrt", [clipped], [out], name=scope.get_unique_operator_name("Sqrt"))
        return
    shifted = _node(scope, container, "Add", [clipped, _constant(scope, container, proto, [1.0])])
    container.add_node("Log", [shifted], [out], name=scope.get_unique_operator_name("Log"))


def convert_levels(scope: Any, operator: Any, container: Any) -> None:
    """``CategoryLevels``: per column, a string LabelEncoder mapping each kept level to itself,
    "" to ``(missing)`` (when that level is kept) and anything else to ``(other)``."""
    from ._transformers import MISSING_LEVEL, OTHER_LEVEL

    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    columns = []
    for j, levels in enumerate(operator.raw_operator.levels_):
        keys = list(levels) + ([""] if MISSING_LEVEL in levels else []) or [OTHER_LEVEL]
        values = list(levels) + ([MISSING_LEVEL] if MISSING_LEVEL in levels else []) or keys
        column = _node(scope, container, "Gather",
                       [x, _constant(scope, container, onnx_proto.TensorProto.INT64, [j])],
                       axis=1)
        columns.append(_node(scope, container, "LabelEncoder", [column], op_domain=_ML,
                             op_version=2, default_string=OTHER_LEVEL,
                             keys_strings=[k.encode("utf-8") for k in keys],
                             values_strings=[v.encode("utf-8") for v in values]))
    container.add_node("Concat", columns, [out], axis=1,
                       name=scope.get_unique_operator_name("Concat"))


def convert_missing_flags(scope: Any, operator: Any, container: Any) -> None:
    """``MissingFlags``: Cast(IsNaN(Gather(x, columns_, axis=1)))."""
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    columns = [int(i) for i in operator.raw_operator.columns_]
    picked = _node(scope, container, "Gather",
                   [x, _constant(scope, container, onnx_proto.TensorProto.INT64, columns)],
                   axis=1)
    flags = _node(scope, container, "IsNaN", [picked])
    container.add_node("Cast", [flags], [out], to=guess_proto_type(operator.outputs[0].type),
                       name=scope.get_unique_operator_name("Cast"))


def convert_box_cox(scope: Any, operator: Any, container: Any) -> None:
    """``CheckedPowerTransformer``: Box-Cox per column, then its standardisation, in the input's
    precision (skl2onnx's own PowerTransformer converter computes in float32 only)."""
    import numpy as np

    raw = operator.raw_operator
    if raw.method != "box-cox":
        from skl2onnx.operator_converters.power_transformer import convert_powertransformer

        convert_powertransformer(scope, operator, container)
        return
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    proto = guess_proto_type(operator.outputs[0].type)
    lambdas = np.asarray(raw.lambdas_, dtype=np.float64)
    safe = np.where(lambdas == 0, 1.0, lambdas).tolist()
    powered = _node(scope, container, "Pow", [x, _constant(scope, container, proto, safe)])
    shifted = _node(scope, container, "Sub", [powered, _constant(scope, container, proto, [1.0])])
    scaled = _node(scope, container, "Div", [shifted, _constant(scope, container, proto, safe)])
    is_zero = _constant(scope, container, onnx_proto.TensorProto.BOOL,
                        (lambdas == 0).tolist())
    logged = _node(scope, container, "Log", [x])
    if not raw.standardize:
        container.add_node("Where", [is_zero, logged, scaled], [out],
                           name=scope.get_unique_operator_name("Where"))
        return
    boxed = _node(scope, container, "Where", [is_zero, logged, scaled])
    centred = _node(scope, container, "Sub",
                    [boxed, _constant(scope, container, proto, raw._scaler.mean_.tolist())])
    container.add_node("Div", [centred, _constant(scope, container, proto,
                                                  raw._scaler.scale_.tolist())], [out],
                       name=scope.get_unique_operator_name("Div"))
