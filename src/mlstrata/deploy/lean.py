"""The lean serving distribution: ``mlstrata-serving``, the runtime and the server without the
training stack.

A serving process needs the lean runtime (numpy + onnxruntime), the ASGI app and its protocol
layers, the prediction log and, for a long-running server, uvicorn and gRPC — nothing of
scikit-learn, pandas, MLflow, DuckDB or pyarrow. :func:`build_lean_wheel` writes
``mlstrata_serving-<version>-py3-none-any.whl`` holding exactly that subset of the ``mlstrata``
import package (copied from the installed mlstrata, so it is the code ``mlstrata serve`` runs)::

    mlstrata/__init__.py     a lean root: __version__ and MlstrataError, no API
    mlstrata/errors.py, mlstrata/_atomic.py, mlstrata/py.typed
    mlstrata/runtime/        load a package (every file's sha256 checked), score records
    mlstrata/predlog/        the prediction log (files or PostgreSQL)
    mlstrata/serve/          the REST app, gRPC, metrics, the entry point

Its requirements: :data:`BASE_REQUIREMENTS` are what the ASGI app imports (a serverless bundle
installs only these); the ``server`` extra (:data:`SERVER_REQUIREMENTS`) adds uvicorn with
uvloop and httptools and gRPC for the long-running server; ``postgres`` adds psycopg for a
``postgresql://`` prediction log, ``docs`` the Swagger UI files of ``GET /docs``. The wheel
installs the console script ``mlstrata-serve`` (= ``python -m mlstrata.serve``), configured by
``MLSTRATA_*`` environment variables (see :mod:`mlstrata.serve.__main__`).

It installs the import package ``mlstrata``: never install it beside the full mlstrata.
The wheel is written with the standard library, atomically and reproducibly (fixed timestamps
and file order: the same mlstrata gives the same bytes).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from .. import errors as _errors
from .._atomic import atomic_path
from ..package.wheel import write_wheel_archive
from .output import DeployError

__all__ = ["BASE_REQUIREMENTS", "DISTRIBUTION", "EXTRAS", "SERVER_REQUIREMENTS",
           "build_lean_wheel", "lean_version", "requirements", "wheel_name"]

DISTRIBUTION = "mlstrata-serving"
"""The distribution's name on an index (its wheel file spells it ``mlstrata_serving``)."""

BASE_REQUIREMENTS = ("numpy>=1.26", "onnxruntime>=1.18", "orjson>=3.9", "prometheus-client>=0.20")
"""What the ASGI app imports beyond the standard library."""

SERVER_REQUIREMENTS = ("uvicorn>=0.30", "uvloop>=0.19; sys_platform != 'win32'",
                       "httptools>=0.6", "grpcio>=1.85.1", "protobuf>=7.35.1")
"""The long-running server: uvicorn (with the uvloop loop and httptools parser it runs) and
gRPC. Not ``uvicorn[standard]``: its reload and websocket libraries are never used."""

EXTRAS: dict[str, tuple[str, ...]] = {
    "server": SERVER_REQUIREMENTS,
    "postgres": ("psycopg[binary]>=3.1",),
    "docs": ("swagger-ui-bundle>=1.1",),
}
"""Optional requirement sets by extra name."""

_ROOT = Path(_errors.__file__).parent
_SUBPACKAGES = ("runtime", "predlog", "serve")
_SUFFIXES = (".py", ".pyi", ".proto")
_TOP_FILES = ("errors.py", "_atomic.py", "py.typed")

_LEAN_INIT = '''\
"""mlstrata-serving: the lean serving subset of mlstrata (runtime, prediction log, server).

Installed from the mlstrata-serving wheel: no training, data or packaging code is here, and
the ``mlstrata`` command is not; ``mlstrata-serve`` (``python -m mlstrata.serve``) runs the
server.
"""

from __future__ import annotations

from .errors import MlstrataError

__version__ = {version!r}

__all__ = ["MlstrataError", "__version__"]
'''

_ENTRY_POINTS = "[console_scripts]\nmlstrata-serve = mlstrata.serve.__main__:main\n"


def lean_version() -> str:
    """The version the lean wheel gets: the installed mlstrata's."""
    try:
        return metadata.version("mlstrata")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        version: str = sys.modules[__name__.partition(".")[0]].__version__
        return version


def wheel_name(version: str | None = None) -> str:
    """The file name of the lean wheel.

    >>> wheel_name("0.1.0")
    'mlstrata_serving-0.1.0-py3-none-any.whl'
    """
    return f"{DISTRIBUTION.replace('-', '_')}-{version or lean_version()}-py3-none-any.whl"


def requirements(*extras: str) -> list[str]:
    """The requirement lines of the base install plus ``extras`` (e.g. ``"server"``).

    >>> requirements()[:2]
    ['numpy>=1.26', 'onnxruntime>=1.18']
    """
    unknown = [name for name in extras if name not in EXTRAS]
    if unknown:
        raise DeployError(f"unknown extra {unknown[0]!r} of {DISTRIBUTION}; choose from "
                          f"{', '.join(EXTRAS)}")
    return [*BASE_REQUIREMENTS, *(req for name in extras for req in EXTRAS[name])]


def build_lean_wheel(dist: Path) -> Path:
    """Write the lean serving wheel into ``dist`` (created if needed) and return its path.

    An existing wheel of the same version is replaced; nothing half-written is ever left.
    """
    version = lean_version()
    target = Path(dist) / wheel_name(version)
    files = dict(_package_files(version))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            _write_wheel(tmp, files, version)
    except OSError as exc:
        raise DeployError(f"{dist}: cannot write the serving wheel there "
                          f"({exc.strerror or exc}); pass a writable directory") from exc
    return target


def _package_files(version: str) -> Iterator[tuple[str, bytes]]:
    """Archive name → bytes of the lean subset of the ``mlstrata`` import package."""
    yield "mlstrata/__init__.py", _LEAN_INIT.format(version=version).encode("utf-8")
    for name in _TOP_FILES:
        yield f"mlstrata/{name}", (_ROOT / name).read_bytes()
    for sub in _SUBPACKAGES:
        for path in sorted((_ROOT / sub).rglob("*")):
            if path.suffix in _SUFFIXES and "__pycache__" not in path.parts:
                yield f"mlstrata/{path.relative_to(_ROOT).as_posix()}", path.read_bytes()


def _metadata(version: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {DISTRIBUTION}", f"Version: {version}",
             "Summary: The lean serving subset of mlstrata: runtime, prediction log, REST and "
             "gRPC server", "Requires-Python: >=3.11"]
    lines += [f"Requires-Dist: {req}" for req in BASE_REQUIREMENTS]
    for extra, reqs in EXTRAS.items():
        lines.append(f"Provides-Extra: {extra}")
        for req in reqs:
            marker = req.partition(";")[2].strip()
            condition = f"({marker}) and extra == '{extra}'" if marker else f"extra == '{extra}'"
            lines.append(f"Requires-Dist: {req.partition(';')[0].strip()}; {condition}")
    return "\n".join(lines) + "\n"


def _write_wheel(path: Path, entries: dict[str, bytes], version: str) -> None:
    """The zip: package files, then METADATA, entry_points.txt, top_level.txt, WHEEL, RECORD."""
    info = f"{DISTRIBUTION.replace('-', '_')}-{version}.dist-info"
    write_wheel_archive(path, {**entries,
                               f"{info}/METADATA": _metadata(version).encode("utf-8"),
                               f"{info}/entry_points.txt": _ENTRY_POINTS.encode("utf-8"),
                               f"{info}/top_level.txt": b"mlstrata\n"}, info)

