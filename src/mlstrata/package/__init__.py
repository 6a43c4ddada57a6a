"""Packaging: ONNX export with measured parity, the package directory, model card and registry.

Reads ``model`` artifacts from the workspace and writes self-describing package directories that
every serving pattern loads through the runtime. Training is not here.
"""

from __future__ import annotations

__all__: list[str] = []
