"""The model wheel: a valid, reproducible wheel whose API predicts like the runtime, needing
only numpy and onnxruntime — proven in a fresh virtual environment."""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest

import mlstrata
from mlstrata.package.wheel import RUNTIME_REQUIREMENTS, WheelError, build_wheel
from mlstrata.runtime.manifest import PackageIntegrityError, load_manifest
from mlstrata.runtime.model import load

from ..runtime.test_model import _records

_NAME = "credit_model-1-py3-none-any.whl"
_INFO = "credit_model-1.dist-info"
_RUNTIME_IMPORTS = {"numpy", "onnxruntime", "__future__"}


@pytest.fixture(scope="module")
def wheel(credit_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(credit_package, tmp_path_factory.mktemp("dist"))


def _files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _unpacked(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


def _python(python: str | Path, code: str, path: Path | None, cwd: Path) -> Any:
    """Run ``code`` in a clean interpreter (``path`` first on sys.path); return its JSON stdout."""
    prelude = f"import sys; sys.path.insert(0, {str(path)!r})\n" if path else ""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(python), "-I", "-c", prelude + code], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


_PREDICT = """
import json, sys
from credit_model import predict, predict_batch, predict_columns, model_info, signature
records = {records}
columns = {{name: [r[name] for r in records] for name in signature.input_names}}
print(json.dumps({{"one": predict(records[0]), "batch": predict_batch(records),
                   "columns": predict_columns(columns), "info": model_info(),
                   "loaded": sorted(m for m in sys.modules
                                    if m.split(".")[0] in ("mlstrata", "sklearn", "pandas",
                                                           "mlflow"))}}))
"""


def _predict_script(records: list[dict[str, Any]]) -> str:
    return _PREDICT.format(records=repr(records))


def _assert_same(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> None:
    """Same predictions and probabilities within 1e-9 (another numpy may sum differently)."""
    for a, b in zip(left, right, strict=True):
        assert a["prediction"] == b["prediction"]
        assert a["probabilities"].keys() == b["probabilities"].keys()
        for key, p in a["probabilities"].items():
            assert abs(p - b["probabilities"][key]) < 1e-9


def test_wheel_is_named_for_the_model_and_holds_only_the_serving_files(wheel: Path) -> None:
    assert wheel.name == _NAME
    names = set(_files(wheel))
    assert {"credit_model/__init__.py", "credit_model/py.typed",
            "credit_model/model/model.onnx", "credit_model/model/signature.json",
            "credit_model/model/contract.yaml", "credit_model/model/manifest.json",
            "credit_model/_mlstrata/__init__.py", "credit_model/_mlstrata/errors.py",
            "credit_model/_mlstrata/runtime/model.py", f"{_INFO}/RECORD"} <= names
    assert not any(n.endswith((".joblib", ".pkl", "MLmodel", ".pyc")) for n in names)


def test_record_lists_every_file_with_its_urlsafe_sha256_and_size(wheel: Path) -> None:
    files = _files(wheel)
    rows = list(csv.reader(io.StringIO(files[f"{_INFO}/RECORD"].decode())))
    assert [row[0] for row in rows] == list(files)
    assert rows[-1] == [f"{_INFO}/RECORD", "", ""]
    for name, digest, size in rows[:-1]:
        expected = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=")
        assert digest == f"sha256={expected.decode()}" and int(size) == len(files[name]), name


def test_metadata_requires_exactly_numpy_and_onnxruntime(wheel: Path) -> None:
    files = _files(wheel)
    metadata = Parser().parsestr(files[f"{_INFO}/METADATA"].decode())
    assert (metadata["Name"], metadata["Version"]) == ("credit-model", "1")
    assert metadata.get_all("Requires-Dist") == ["numpy>=1.26", "onnxruntime>=1.18"]
    assert list(RUNTIME_REQUIREMENTS) == metadata.get_all("Requires-Dist")
    tags = Parser().parsestr(files[f"{_INFO}/WHEEL"].decode())
    assert (tags["Tag"], tags["Root-Is-Purelib"]) == ("py3-none-any", "true")


def test_the_same_package_gives_the_same_bytes(credit_package: Path, wheel: Path,
                                               tmp_path: Path) -> None:
    again = build_wheel(credit_package, tmp_path / "again")
    assert again.read_bytes() == wheel.read_bytes()
    with zipfile.ZipFile(again) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_wheel_manifest_covers_exactly_the_shipped_files_and_keeps_lineage(
        credit_package: Path, wheel: Path, tmp_path: Path) -> None:
    root = _unpacked(wheel, tmp_path)
    model_dir = root / "credit_model" / "model"
    shipped = load_manifest(model_dir)
    original = load_manifest(credit_package)
    on_disk = {p.name for p in model_dir.iterdir()} - {"manifest.json"}
    assert set(shipped.files) == on_disk == {"model.onnx", "signature.json", "contract.yaml"}
    assert all(shipped.files[n] == original.files[n] for n in on_disk)
    assert (shipped.lineage, shipped.parity, shipped.model_id, shipped.model_name) == (
        original.lineage, original.parity, original.model_id, original.model_name)
    assert "model.joblib" in shipped.extra["wheel"]["omitted"]


def test_vendored_runtime_is_the_installed_one(wheel: Path) -> None:
    files = _files(wheel)
    source = Path(mlstrata.__file__).parent
    assert files["credit_model/_mlstrata/errors.py"] == (source / "errors.py").read_bytes()
    for path in (source / "runtime").glob("*.py"):
        assert files[f"credit_model/_mlstrata/runtime/{path.name}"] == path.read_bytes()
    assert files["credit_model/_mlstrata/__init__.py"] == b""


def test_vendored_code_imports_nothing_beyond_stdlib_numpy_onnxruntime(wheel: Path) -> None:
    """Every relative import resolves inside the wheel; every absolute one is allowed."""
    files = _files(wheel)
    modules = {name[:-3].replace("/", ".").removesuffix(".__init__")
               for name in files if name.endswith(".py")}
    for name, data in files.items():
        if not name.endswith(".py"):
            continue
        package = name[:-3].replace("/", ".").rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(data)):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                assert target in modules, f"{name}: from {'.' * node.level}{node.module}"
            elif isinstance(node, ast.ImportFrom | ast.Import):
                roots = ([node.module] if isinstance(node, ast.ImportFrom)
                         else [alias.name for alias in node.names])
                for root in (str(r).split(".")[0] for r in roots):
                    assert root in sys.stdlib_module_names or root in _RUNTIME_IMPORTS, (
                        f"{name} imports {root}")


def test_unpacked_wheel_predicts_like_the_runtime_without_importing_mlstrata(
        credit_package: Path, wheel: Path, tmp_path: Path) -> None:
    records, _ = _records(credit_package, 20)
    expected = load(credit_package).predict_records(records).to_records()
    root = _unpacked(wheel, tmp_path / "site")
    got = _python(sys.executable, _predict_script(records), root, tmp_path)
    _assert_same(got["batch"], expected)
    _assert_same(got["columns"], expected)
    _assert_same([got["one"]], expected[:1])
    assert got["loaded"] == []
    assert (got["info"]["name"], got["info"]["version"]) == ("credit.model", 1)
    assert got["info"]["classes"] == [0, 1] and got["info"]["parity"]["passed"]


def test_a_bad_record_is_named_by_field(credit_package: Path, wheel: Path,
                                        tmp_path: Path) -> None:
    records, _ = _records(credit_package, 1)
    code = f"""
import json
from credit_model import InvalidInputError, predict
try:
    predict({{**{records[0]!r}, "term_months": 18}})
except InvalidInputError as exc:
    print(json.dumps(str(exc)))
"""
    message = _python(sys.executable, code, _unpacked(wheel, tmp_path / "site"), tmp_path)
    assert message.startswith("record 0, field 'term_months': 18 is not an allowed value")


def test_a_record_the_model_answers_nan_for_is_named_not_predicted(
        uncontracted_packages: tuple[Path, Path], tmp_path: Path) -> None:
    from ..runtime.test_outputs import RECORD

    wheel = build_wheel(uncontracted_packages[1], tmp_path / "dist")
    code = f"""
import json
from credit_model import InvalidInputError, predict, predict_batch
good = predict({RECORD!r})
try:
    predict_batch([{RECORD!r}, {{**{RECORD!r}, "age": 1e300}}])
except InvalidInputError as exc:
    print(json.dumps([good, str(exc), type(exc).__name__]))
"""
    good, message, kind = _python(sys.executable, code, _unpacked(wheel, tmp_path / "site"),
                                  tmp_path)
    assert None not in good["probabilities"].values()
    assert message.startswith("record 1, field 'age': 1e+300 is above the training range (")
    assert kind == "NonFinitePredictionError"


def test_an_altered_model_file_is_refused_at_first_use(credit_package: Path, wheel: Path,
                                                       tmp_path: Path) -> None:
    root = _unpacked(wheel, tmp_path / "site")
    onnx = root / "credit_model" / "model" / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    records, _ = _records(credit_package, 1)
    code = f"""
import json
import credit_model
try:
    credit_model.predict({records[0]!r})
except credit_model.PackageIntegrityError as exc:
    print(json.dumps(str(exc)))
"""
    message = _python(sys.executable, code, root, tmp_path)
    assert "model.onnx: sha256" in message and "does not match the manifest" in message


def test_a_model_name_is_normalised_for_the_wheel(credit_package: Path, tmp_path: Path) -> None:
    package = shutil.copytree(credit_package, tmp_path / "pkg")
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["model_name"] = "Credit Model.v2"
    (package / "manifest.json").write_text(json.dumps(manifest))
    wheel = build_wheel(package, tmp_path / "dist")
    assert wheel.name == "credit_model_v2-1-py3-none-any.whl"
    assert "credit_model_v2/__init__.py" in _files(wheel)


def test_a_directory_that_is_no_package_is_refused_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "not-a-package").mkdir()
    with pytest.raises(PackageIntegrityError, match="no manifest.json; this is not an mlstrata"):
        build_wheel(tmp_path / "not-a-package", tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_a_corrupted_package_is_refused_before_anything_is_written(credit_package: Path,
                                                                   tmp_path: Path) -> None:
    """Even a file the wheel would not carry: a package that fails its audit is not wheeled."""
    package = shutil.copytree(credit_package, tmp_path / "pkg")
    (package / "model.joblib").write_bytes(b"tampered")
    with pytest.raises(PackageIntegrityError, match=r"model.joblib: sha256 \w+ does not match"):
        build_wheel(package, tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_an_unwritable_dist_is_one_line_and_leaves_nothing(credit_package: Path,
                                                           tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    with pytest.raises(WheelError) as caught:
        build_wheel(credit_package, blocker / "dist")
    assert str(caught.value).startswith(f"{blocker / 'dist'}: cannot write the wheel there")
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def _tree_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if not p.is_symlink() and p.is_file())


@pytest.mark.slow
def test_fresh_venv_installs_the_wheel_and_predicts_without_ml_libraries(
        credit_package: Path, wheel: Path, tmp_path: Path) -> None:
    """pip installs the wheel (numpy + onnxruntime from the registry or pip's cache) into a
    new virtual environment without system packages; it predicts like the runtime here."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   capture_output=True, env=env, timeout=600)
    records, _ = _records(credit_package, 20)
    expected = load(credit_package).predict_records(records).to_records()
    got = _python(python, _predict_script(records), None, tmp_path)
    _assert_same(got["batch"], expected)
    _assert_same([got["one"]], expected[:1])
    absent = _python(python, "import importlib.util, json; print(json.dumps([m for m in "
                     "('sklearn', 'pandas', 'mlflow', 'mlstrata', 'duckdb', 'pyarrow') "
                     "if importlib.util.find_spec(m) is not None]))", None, tmp_path)
    assert absent == []
    assert _tree_bytes(venv) < 250e6  # the serving environment the README quotes (~180 MB)


def test_generated_api_passes_the_project_gates(wheel: Path, tmp_path: Path) -> None:
    """The API module is generated from a template: hold it to ruff and strict mypy too."""
    root = _unpacked(wheel, tmp_path / "site")
    tools = Path(sys.executable).parent
    for command in ([tools / "ruff", "check", "--no-cache", "--select", "E,F,I,UP,B",
                     "--line-length", "100", "credit_model/__init__.py"],
                    [tools / "mypy", "--strict", "--ignore-missing-imports", "--no-incremental",
                     "--cache-dir", str(tmp_path / "mypy"), "credit_model"]):
        done = subprocess.run([str(c) for c in command], cwd=root, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
