"""Model-as-dependency: a model package as a pip-installable wheel with a tiny ``predict`` API.

``mlstrata package credit.model --wheel`` turns ``packages/credit.model-1/`` into
``dist/credit_model-1-py3-none-any.whl``. After ``pip install`` it, an application calls::

    from credit_model import predict, predict_batch
    predict({"age": 41, "income": 52000.0, ...})  # {"prediction": 0, "probabilities": {...}}

The wheel holds:

- ``credit_model/__init__.py`` — the API (``predict``, ``predict_batch``, ``predict_columns``,
  ``model_info``, ``signature``, ``__version__``); the model loads lazily, once per process,
  after every file's sha256 is checked;
- ``credit_model/model/`` — ``model.onnx``, ``signature.json``, ``contract.yaml`` and a
  ``manifest.json`` restricted to exactly these files (the package's own manifest also lists the
  native and MLflow files, which a wheel does not carry);
- ``credit_model/_mlstrata/`` — the lean runtime (``mlstrata/runtime/*.py`` and
  ``mlstrata/errors.py``) vendored as source, so the wheel's only dependencies are the runtime's:
  numpy and onnxruntime. No mlstrata, scikit-learn, pandas or MLflow is needed to call it.

The wheel is written with the standard library, atomically (nothing is left half-written) and
reproducibly: fixed timestamps and file order, so the same package gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import keyword
import re
import string
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from .. import errors as _errors
from .. import runtime as _runtime
from .._atomic import atomic_path
from ..errors import MlstrataError
from ..reports import Report, html_page, paragraph, table
from ..runtime.joins import JOINS_DIR
from ..runtime.manifest import MANIFEST_FILE, Manifest, verify_package
from ..runtime.signature import SIGNATURE_FILE

__all__ = ["RUNTIME_REQUIREMENTS", "WheelError", "WheelResult", "build_wheel", "import_name",
           "write_wheel_archive"]

RUNTIME_REQUIREMENTS = ("numpy>=1.26", "onnxruntime>=1.18")
"""What the vendored runtime imports beyond the standard library: the wheel's only dependencies."""

_REQUIRED = ("model.onnx", SIGNATURE_FILE)
_OPTIONAL = ("contract.yaml",)
_MODEL_DIR = "model"
_VENDOR_DIR = "_mlstrata"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16


class WheelError(MlstrataError):
    """A wheel cannot be built: the model's name makes no Python package, or dist is unwritable."""


@dataclass(frozen=True)
class WheelResult(Report):
    """A built wheel: where it is, the package it was built from, and what it installs."""

    path: Path
    package: Path
    manifest: Manifest

    @property
    def import_name(self) -> str:
        """The Python package the wheel installs (``credit_model``)."""
        return import_name(self.manifest.model_name)

    def to_dict(self) -> dict[str, Any]:
        """Paths, import name, model, size and dependencies, JSON-ready."""
        return {"wheel": str(self.path), "package": str(self.package),
                "import": self.import_name,
                "model": f"{self.manifest.model_name}@{self.manifest.model_version}",
                "size": self.path.stat().st_size, "requires": list(RUNTIME_REQUIREMENTS)}

    def render_terminal(self, console: Console) -> None:
        """Print where the wheel is and how to use it."""
        console.print(f"wheel:    {self.path}", highlight=False, soft_wrap=True)
        console.print(f"package:  {self.package}", highlight=False, soft_wrap=True)
        console.print(f"size:     {self.path.stat().st_size / 1e3:.1f} kB, requires "
                      f"{', '.join(RUNTIME_REQUIREMENTS)}", highlight=False)
        console.print(f"install:  pip install {self.path}", highlight=False, soft_wrap=True)
        console.print(f"use:      from {self.import_name} import predict, predict_batch",
                      highlight=False)

    def to_html(self) -> str:
        """A one-page summary of the wheel."""
        return html_page(f"Wheel {self.path.name}", [
            ("Wheel", [table([self.to_dict()])]),
            ("Use", [paragraph(f"from {self.import_name} import predict, predict_batch")])])


def import_name(model_name: str) -> str:
    """The Python package a model's wheel installs: the name in lower case, ``_`` for the rest.

    A name that is no Python identifier (a leading digit, a keyword) gets a ``model_`` prefix.

    >>> import_name("credit.model")
    'credit_model'
    >>> import_name("2024-Churn")
    'model_2024_churn'
    """
    name = _distribution(model_name).replace("-", "_")
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"model_{name}"


def build_wheel(package_dir: Path, dist: Path) -> Path:
    """Write ``dist/<model>-<version>-py3-none-any.whl`` for the package in ``package_dir``.

    The package is verified first (every file's sha256); a corrupted package, a directory that
    is no package or a ``dist`` that cannot be written raises an :class:`MlstrataError` and
    leaves no file behind. An existing wheel of the same version is replaced.
    """
    manifest = verify_package(package_dir)
    names = _names(manifest)
    shipped = _shipped_files(package_dir, manifest)
    wheel_manifest = _wheel_manifest(package_dir, manifest, shipped)
    entries = dict(_package_entries(names.package, manifest, shipped, wheel_manifest))
    target = dist / f"{names.stem}-py3-none-any.whl"
    try:
        with atomic_path(target) as tmp:
            _write_zip(tmp, entries, names)
    except OSError as exc:
        raise WheelError(f"{dist}: cannot write the wheel there ({exc.strerror or exc}); pass a "
                         "writable directory with --dist") from exc
    return target


@dataclass(frozen=True)
class _Names:
    model_name: str
    distribution: str
    version: str
    package: str

    @property
    def stem(self) -> str:
        """``<distribution>-<version>`` as wheel file names spell it (PEP 427)."""
        return f"{self.distribution.replace('-', '_')}-{self.version}"


def _distribution(model_name: str) -> str:
    """The model name normalised as PEP 503 does (lower case, runs of other characters → -)."""
    return re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")


def _names(manifest: Manifest) -> _Names:
    distribution = _distribution(manifest.model_name)
    if not distribution:
        raise WheelError(f"model name {manifest.model_name!r} has no letter or digit to name a "
                         "Python distribution; register the model under another name")
    return _Names(manifest.model_name, distribution, str(manifest.model_version),
                  import_name(manifest.model_name))


def _shipped_files(package_dir: Path, manifest: Manifest) -> dict[str, bytes]:
    """The bytes of the model files the wheel carries, checked against the manifest once more."""
    missing = [name for name in _REQUIRED if name not in manifest.files]
    if missing:
        raise WheelError(f"{package_dir / MANIFEST_FILE}: the package has no {missing[0]}; only "
                         "an ONNX package can be served from a wheel, rebuild it with "
                         "'mlstrata package MODEL'")
    shipped: dict[str, bytes] = {}
    joins = (n for n in manifest.files if n.startswith(f"{JOINS_DIR}/"))
    for name in (*_REQUIRED, *(n for n in _OPTIONAL if n in manifest.files), *joins):
        data = (package_dir / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest.files[name].sha256:
            raise WheelError(f"{package_dir / name}: changed while the wheel was being built; "
                             "build the wheel again")
        shipped[name] = data
    return shipped


def _wheel_manifest(package_dir: Path, manifest: Manifest, shipped: dict[str, bytes]) -> bytes:
    """The package's manifest restricted to the shipped files; lineage and parity kept as is."""
    source = (package_dir / MANIFEST_FILE).read_bytes()
    omitted = sorted(set(manifest.files) - set(shipped))
    wheel = replace(
        manifest, files={name: manifest.files[name] for name in sorted(shipped)},
        extra={**manifest.extra, "wheel": {
            "package_manifest_sha256": hashlib.sha256(source).hexdigest(), "omitted": omitted}})
    return wheel.to_json().encode("utf-8")


def _package_entries(package: str, manifest: Manifest, shipped: dict[str, bytes],
                     wheel_manifest: bytes) -> Iterator[tuple[str, bytes]]:
    """Archive name → bytes of everything under the import package, in a fixed order."""
    yield f"{package}/__init__.py", _api_module(manifest, package).encode("utf-8")
    yield f"{package}/py.typed", b""
    for name, data in sorted(shipped.items()):
        yield f"{package}/{_MODEL_DIR}/{name}", data
    yield f"{package}/{_MODEL_DIR}/{MANIFEST_FILE}", wheel_manifest
    for name, data in _vendored_sources():
        yield f"{package}/{_VENDOR_DIR}/{name}", data


def _vendored_sources() -> Iterator[tuple[str, bytes]]:
    """The lean runtime's source files as installed, relative to the ``mlstrata`` package."""
    yield "__init__.py", b""
    yield "errors.py", Path(_errors.__file__).read_bytes()
    runtime_dir = Path(_runtime.__file__).parent
    for path in sorted(runtime_dir.glob("*.py")):
        yield f"runtime/{path.name}", path.read_bytes()


def _write_zip(path: Path, entries: dict[str, bytes], names: _Names) -> None:
    """Write the wheel: package files, then METADATA, top_level.txt, WHEEL and RECORD last."""
    info_dir = f"{names.stem}.dist-info"
    write_wheel_archive(path, {**entries,
                               f"{info_dir}/METADATA": _metadata(names).encode("utf-8"),
                               f"{info_dir}/top_level.txt": f"{names.package}\n".encode()},
                        info_dir)


def write_wheel_archive(path: Path, files: Mapping[str, bytes], info_dir: str) -> None:
    """Write a pure-Python wheel of ``files`` (package files and ``info_dir``'s metadata) with
    its WHEEL file and RECORD, byte for byte the same for the same files (fixed dates, modes
    and order): every wheel mlstrata builds is reproducible."""
    entries = {**files, f"{info_dir}/WHEEL": _WHEEL.encode("utf-8")}
    record_name = f"{info_dir}/RECORD"
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n"
                     for name, data in entries.items())
    entries[record_name] = f"{record}{record_name},,\n".encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = _FILE_MODE
            info.create_system = 3
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def _record_hash(data: bytes) -> str:
    """``sha256=<urlsafe base64 digest without padding>`` as RECORD files spell it."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode('ascii')}"


def _metadata(names: _Names) -> str:
    requires = "".join(f"Requires-Dist: {req}\n" for req in RUNTIME_REQUIREMENTS)
    return (f"Metadata-Version: 2.1\nName: {names.distribution}\nVersion: {names.version}\n"
            f"Summary: Model {names.model_name} version {names.version} with a predict() API, "
            f"packaged by mlstrata\nRequires-Python: >=3.11\n{requires}")


def _api_module(manifest: Manifest, package: str) -> str:
    return _API.substitute(model_name=json.dumps(manifest.model_name),
                           version=json.dumps(str(manifest.model_version)), package=package)


_WHEEL = """\
Wheel-Version: 1.0
Generator: mlstrata
Root-Is-Purelib: true
Tag: py3-none-any
"""

_API = string.Template('''\
"""Model $model_name version $version as a Python library, packaged by mlstrata.

    from $package import predict, predict_batch
    predict(record)           # {"prediction": ..., "probabilities": {class: p, ...}}
    predict_batch(records)    # one answer per record, in order

Needs numpy and onnxruntime only: the mlstrata runtime is vendored in ``$package._mlstrata``.
The model loads on first use, once per process, after every file's sha256 has been checked
against ``model/manifest.json`` (an altered file raises PackageIntegrityError). A bad record
raises InvalidInputError naming the record and the field.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._mlstrata.errors import MlstrataError
from ._mlstrata.runtime.inputs import InvalidInputError
from ._mlstrata.runtime.manifest import PackageIntegrityError
from ._mlstrata.runtime.model import LoadedModel, load
from ._mlstrata.runtime.signature import Signature

__all__ = [
    "MODEL_DIRECTORY",
    "MODEL_NAME",
    "InvalidInputError",
    "MlstrataError",
    "PackageIntegrityError",
    "__version__",
    "model",
    "model_info",
    "predict",
    "predict_batch",
    "predict_columns",
    "signature",
]

__version__ = $version
MODEL_NAME = $model_name
MODEL_DIRECTORY = Path(__file__).parent / "model"

_lock = threading.Lock()
_loaded: list[LoadedModel] = []


def model() -> LoadedModel:
    """The verified, loaded model: loaded on the first call, then shared by every call."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _loaded.append(load(MODEL_DIRECTORY))
    return _loaded[0]


def predict(record: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction (and class probabilities, for a classifier) for one record, and the
    ``warnings`` ({field, rule, message}) of the warn rules it breaks, when it breaks any."""
    return predict_batch([record])[0]


def predict_batch(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One prediction per record, in order; every record is validated first."""
    return model().predict_records(list(records)).to_records()


def predict_columns(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Predictions for columnar input: one sequence of values per input field."""
    return model().predict_columns(columns).to_records()


def model_info() -> dict[str, Any]:
    """Name, version, task, classes, inputs, lineage and ONNX parity of the packaged model."""
    loaded = model()
    manifest = loaded.manifest
    return {"name": manifest.model_name, "version": manifest.model_version,
            "model_id": manifest.model_id, "task": manifest.task,
            "classes": loaded.signature.classes, "inputs": loaded.signature.input_names,
            "created_at": manifest.created_at, "mlstrata_version": manifest.mlstrata_version,
            "lineage": manifest.lineage, "parity": manifest.parity}


def __getattr__(name: str) -> Signature:
    """``signature``: what the model takes and answers (loads the model on first access)."""
    if name == "signature":
        return model().signature
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
''')
