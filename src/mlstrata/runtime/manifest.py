"""The package manifest: what a model package holds, with the sha256 of every file.

``manifest.json`` is written last and read first. Loading a package audits before it trusts:
:func:`verify_package` recomputes every listed file's sha256 and refuses the package, naming the
file, on the first mismatch — so a pickle (``model.joblib``) is only unpickled after its bytes
are proven to be the packaged ones. Standard library only: it is part of the lean runtime, which
serving processes and model wheels carry.

Flavours: ``flavour`` says what runs the model — ``onnx`` (``model.onnx``, the lean runtime) or
``river`` (a frozen online model, ``mlstrata online snapshot``: a hashed pickle that needs
River). :func:`verify_package` refuses a flavour its caller cannot run, in one line naming it and
what to use instead, before anything is loaded.

Versioning: ``schema_version`` is bumped when a field changes meaning or is removed; a reader
refuses a newer schema than it knows. Adding an optional field does not bump it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlstrataError

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA_VERSION",
    "FileEntry",
    "Manifest",
    "PackageIntegrityError",
    "UnsupportedFlavourError",
    "hash_files",
    "is_package_dir",
    "load_manifest",
    "sha256_file",
    "verify_package",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
ONNX_FLAVOUR = "onnx"
_INSTEAD = {
    "river": ("a River model frozen by 'mlstrata online snapshot', which the lean ONNX runtime "
              "(mlstrata serve, mlstrata-serve, model wheels, precompute, deploy) cannot run; "
              "serve the live model with 'mlstrata serve --online {name}', or score files with "
              "'mlstrata predict'"),
}


class PackageIntegrityError(MlstrataError):
    """A package's manifest is missing or unreadable, or a file does not match its sha256."""


class UnsupportedFlavourError(PackageIntegrityError):
    """A package of a flavour its reader cannot run (a River snapshot given to the ONNX runtime)."""


@dataclass(frozen=True)
class FileEntry:
    """One packaged file: its sha256 and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Everything a loader needs to trust and describe a package (``manifest.json``)."""

    schema_version: int
    mlstrata_version: str
    created_at: str
    model_name: str
    model_version: int
    model_id: str
    task: str
    lineage: dict[str, str]
    files: dict[str, FileEntry]
    libraries: dict[str, str]
    parity: dict[str, Any]
    float_precision: str
    opset: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)
    flavour: str = ONNX_FLAVOUR

    @property
    def log_identity(self) -> tuple[str, int]:
        """The model name and version the prediction log files this package's predictions
        under: its own, or for a River snapshot the online model's (``extra.online.log``), so
        the live service's lines and the snapshot's are one stream to monitor."""
        log = (self.extra.get("online") or {}).get("log") if self.flavour != ONNX_FLAVOUR \
            else None
        if isinstance(log, dict):
            return str(log["model"]), int(log["version"])
        return self.model_name, self.model_version

    def to_json(self) -> str:
        """The manifest as indented, key-sorted JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = MANIFEST_FILE) -> Manifest:
        """Build a manifest from parsed JSON, refusing unknown schemas and missing fields."""
        version = data.get("schema_version")
        if not isinstance(version, int) or version > MANIFEST_SCHEMA_VERSION:
            raise PackageIntegrityError(
                f"{source}: schema_version {version!r} is not one this mlstrata reads (<= "
                f"{MANIFEST_SCHEMA_VERSION}); upgrade mlstrata or rebuild the package")
        try:
            files = {name: FileEntry(**entry) for name, entry in data["files"].items()}
            return cls(**{**data, "files": files})
        except (KeyError, TypeError) as exc:
            raise PackageIntegrityError(
                f"{source}: not a valid manifest ({exc}); rebuild the package") from exc


def hash_files(
    directory: Path, exclude: tuple[str, ...] = (MANIFEST_FILE,)
) -> dict[str, FileEntry]:
    """sha256 and size of every file under ``directory`` (relative POSIX paths, sorted)."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if name not in exclude:
            entries[name] = FileEntry(sha256_file(path), path.stat().st_size)
    return entries


def is_package_dir(path: str | Path) -> bool:
    """True when ``path`` is a directory holding a ``manifest.json`` (a model package)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def load_manifest(directory: Path) -> Manifest:
    """Read ``manifest.json`` from a package directory (no hashes checked: see verify_package)."""
    path = directory / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PackageIntegrityError(f"{directory}: no {MANIFEST_FILE}; this is not an mlstrata "
                                    "package (build one with 'mlstrata package MODEL')") from exc
    except (OSError, ValueError) as exc:
        raise PackageIntegrityError(f"{path}: unreadable ({exc}); rebuild the package") from exc
    if not isinstance(data, dict):
        raise PackageIntegrityError(f"{path}: not a JSON object; rebuild the package")
    return Manifest.from_dict(data, str(path))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_package(directory: Path, flavour: str = ONNX_FLAVOUR) -> Manifest:
    """Load the manifest and recompute every file's sha256; refuse the package on a mismatch,
    or when it is not of ``flavour`` (what the caller can run)."""
    manifest = load_manifest(directory)
    if manifest.flavour != flavour:
        instead = _INSTEAD.get(manifest.flavour, "which this reader cannot run").format(
            name=manifest.model_name)
        raise UnsupportedFlavourError(
            f"{directory}: {manifest.model_name}@{manifest.model_version} is a "
            f"{manifest.flavour} package, not {flavour}: {instead}")
    for name, entry in manifest.files.items():
        path = directory / name
        if not path.is_file():
            raise PackageIntegrityError(f"{path}: listed in {MANIFEST_FILE} but missing; the "
                                        "package is incomplete, rebuild or re-download it")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise PackageIntegrityError(
                f"{path}: sha256 {actual[:12]} does not match the manifest's "
                f"{entry.sha256[:12]}; the file was altered, rebuild or re-download the package")
    return manifest
