"""onnxruntime sessions as every mlstrata component opens them: CPU provider, errors-only log.

skl2onnx graphs carry initializers onnxruntime does not need (e.g. ``classes_ind``), and its
default log level would print a warning about each on every load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["open_session"]

_ERRORS_ONLY = 3


def open_session(model: bytes | str | Path, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ONNX bytes or a ``.onnx`` file.

    ``threads`` caps the intra-op thread pool (default: onnxruntime's, one per core).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = _ERRORS_ONLY
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
