"""The manifest: round trip, integrity check, refusal of altered or missing files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstrata.runtime.manifest import (
    MANIFEST_FILE,
    MANIFEST_SCHEMA_VERSION,
    Manifest,
    PackageIntegrityError,
    hash_files,
    load_manifest,
    verify_package,
)


def _package(tmp_path: Path) -> Path:
    directory = tmp_path / "pkg"
    (directory / "sub").mkdir(parents=True)
    (directory / "model.onnx").write_bytes(b"\x08\x07onnx-bytes")
    (directory / "sub" / "x.txt").write_text("hello")
    manifest = Manifest(
        schema_version=MANIFEST_SCHEMA_VERSION, mlstrata_version="0.1.0",
        created_at="2026-01-01T00:00:00+00:00", model_name="credit", model_version=2,
        model_id="ab" * 32, task="binary", lineage={"dataset": "cd" * 32},
        files=hash_files(directory), libraries={"onnx": "1.0"},
        parity={"max_abs_diff": 1e-8, "label_mismatches": 0, "rows": 10},
        float_precision="double", opset={"": 17, "ai.onnx.ml": 3})
    (directory / MANIFEST_FILE).write_text(manifest.to_json())
    return directory


def test_round_trip_and_verify(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    manifest = verify_package(directory)
    assert manifest == load_manifest(directory)
    assert set(manifest.files) == {"model.onnx", "sub/x.txt"}
    assert manifest.files["sub/x.txt"].size == 5


def test_one_altered_byte_is_refused_naming_the_file(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    data = bytearray((directory / "model.onnx").read_bytes())
    data[0] ^= 1
    (directory / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageIntegrityError, match=r"model\.onnx: sha256 .* does not match"):
        verify_package(directory)


def test_missing_file_and_missing_manifest(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    (directory / "sub" / "x.txt").unlink()
    with pytest.raises(PackageIntegrityError, match=r"x\.txt: listed in manifest.json but missing"):
        verify_package(directory)
    with pytest.raises(PackageIntegrityError, match="no manifest.json"):
        load_manifest(tmp_path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    data = json.loads((directory / MANIFEST_FILE).read_text())
    data["schema_version"] = MANIFEST_SCHEMA_VERSION + 1
    (directory / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(PackageIntegrityError, match="upgrade mlstrata"):
        load_manifest(directory)


def test_manifest_module_needs_no_ml_libraries() -> None:
    import subprocess
    import sys

    heavy = "('sklearn', 'pandas', 'mlflow', 'onnxruntime')"
    code = ("import sys, mlstrata.runtime.manifest; "
            f"print([m for m in {heavy} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
