"""``mlstrata deploy serverless``: a package as an AWS Lambda, Google Cloud Functions or Azure
Functions bundle.

A bundle is one entry-point file (``lambda_function.py``, ``main.py``, ``function_app.py``) that
hands every request to :mod:`mlstrata.serve.functions` — so it answers exactly like
``mlstrata serve`` — plus the lean serving distribution (base requirements only: no uvicorn, no
gRPC) and its Linux wheels for the platform's Python, architecture and C library (``pip install
--target --platform --only-binary=:all:``), and the package itself in ``model/`` (verified by its
manifest when the function starts).

- ``aws-lambda``: ``function.zip`` (files at the root, as Lambda unpacks it into ``/var/task``);
- ``gcp-functions``: ``function/`` for ``gcloud functions deploy --source``;
- ``azure-functions``: ``function/`` in the Python v2 layout (``function_app.py``, ``host.json``,
  dependencies in ``.python_packages/lib/site-packages``) for ``func azure functionapp publish
  --no-build``.

The size is measured (files and the deterministic zip) before anything is written to ``--out``
and checked against each platform's published limits (:data:`PLATFORMS`, with their sources);
over a limit the command refuses in one line naming the limit, the size, the biggest parts and
the fallback (a container image). Safe to strip, and stripped: console scripts (``bin/``),
numpy's test suites, and onnxruntime's offline model tools (``transformers``, ``quantization``,
``tools``: never imported by an inference session). When an interpreter of the target version
runs on this machine (same architecture), modules are byte-compiled ahead (a read-only
``/var/task`` cannot cache them) and the cold start — import, model load, first answer, from the
bundle alone — is measured.

Lambda's python3.11 and older runtimes run on Amazon Linux 2 (glibc 2.26); onnxruntime 1.17 and
newer ship manylinux_2_28 wheels only, and 1.16 scores differently. So Lambda bundles default
to python3.12 (Amazon Linux 2023); an older ``--python`` is refused with that reason.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import platform as host_platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..reports.base import Report
from .output import DeployError, check_output, staged_directory

__all__ = ["PLATFORMS", "Limit", "Platform", "ServerlessResult", "build_serverless",
           "interpreter_for", "platform_tags", "write_zip"]

MiB = 1024 * 1024
_LAMBDA_LIMITS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
_LAMBDA_RUNTIMES = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
_GCF_QUOTAS = "https://cloud.google.com/functions/quotas"
_AZURE_LIMITS = "https://learn.microsoft.com/azure/azure-functions/functions-scale#service-limits"


@dataclass(frozen=True)
class Limit:
    """A platform's published size limit on the ``zipped`` or ``unzipped`` bundle."""

    name: str
    measure: str  # "zipped" | "unzipped"
    bytes: int
    source: str


@dataclass(frozen=True)
class Platform:
    """What a serverless target needs: Pythons, C library per Python, architectures, limits."""

    name: str
    pythons: tuple[str, ...]
    default_python: str
    arches: tuple[str, ...]
    limits: tuple[Limit, ...]
    fallback: str
    site: str  # where dependencies go inside the bundle
    glibc: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)  # python -> why not

    def runtime(self, python: str) -> str:
        """The platform's runtime identifier for ``python``."""
        if self.name == "aws-lambda":
            return f"python{python}"
        if self.name == "gcp-functions":
            return "python" + python.replace(".", "")
        return python


PLATFORMS: dict[str, Platform] = {
    "aws-lambda": Platform(
        "aws-lambda", ("3.10", "3.11", "3.12", "3.13"), "3.12", ("x86_64", "arm64"),
        # 50 MB zipped for a direct upload (S3 beyond), 250 MB unzipped including layers:
        # https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
        # (the API's CodeSizeZipped/CodeSizeUnzipped: 52428800 and 262144000 bytes).
        (Limit("Lambda direct upload (zipped)", "zipped", 50 * MiB, _LAMBDA_LIMITS),
         Limit("Lambda unzipped, including layers", "unzipped", 250 * MiB, _LAMBDA_LIMITS)),
        "a container image (mlstrata deploy docker; Lambda runs images up to 10 GB)", "",
        # python3.10/3.11: Amazon Linux 2 (glibc 2.26); 3.12+: Amazon Linux 2023 (glibc 2.34):
        # https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
        glibc={"3.10": (2, 26), "3.11": (2, 26), "3.12": (2, 34), "3.13": (2, 34)},
        refused={python: f"Lambda's python{python} runtime runs Amazon Linux 2 (glibc 2.26) "
                         "and onnxruntime 1.17+ ships only manylinux_2_28 wheels (1.16, the "
                         "last that installs there, scores differently): use --python 3.12 or "
                         f"3.13 (Amazon Linux 2023; see {_LAMBDA_RUNTIMES})"
                 for python in ("3.10", "3.11")}),
    "gcp-functions": Platform(
        "gcp-functions", ("3.10", "3.11", "3.12", "3.13"), "3.11", ("x86_64",),
        # 100 MB compressed sources, 500 MB uncompressed sources plus modules (the 1st gen
        # quota; 2nd gen builds the same source with Cloud Build):
        # https://cloud.google.com/functions/quotas
        (Limit("Cloud Functions sources (compressed)", "zipped", 100 * MiB, _GCF_QUOTAS),
         Limit("Cloud Functions sources plus modules (uncompressed)", "unzipped", 500 * MiB,
               _GCF_QUOTAS)),
        "a container on Cloud Run (mlstrata deploy docker)", "",
        # The python3xx runtimes run on Ubuntu 22.04 (glibc 2.35).
        glibc={python: (2, 35) for python in ("3.10", "3.11", "3.12", "3.13")}),
    "azure-functions": Platform(
        "azure-functions", ("3.10", "3.11", "3.12"), "3.11", ("x86_64",),
        # Consumption plan: 5 GB of storage per app (functions-limits):
        # https://learn.microsoft.com/azure/azure-functions/functions-scale#service-limits
        (Limit("Azure Functions Consumption plan storage", "unzipped", 5 * 1024 * MiB,
               _AZURE_LIMITS),),
        "a container (mlstrata deploy docker; Azure Functions and Container Apps run images)",
        ".python_packages/lib/site-packages",
        # The Linux Python images are Debian 11 or newer (glibc 2.31).
        glibc={python: (2, 31) for python in ("3.10", "3.11", "3.12")}),
}

# Paths (relative to the dependencies) that no inference ever imports.
_STRIPPED = ("bin", "onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class ServerlessResult(Report):
    """A written bundle: where, for which runtime, how big against the limits, how fast."""

    target: str
    runtime: str
    arch: str
    artifact: Path
    package: Path
    model: str
    unzipped: int
    zipped: int
    limits: tuple[Limit, ...]
    parts: list[tuple[str, int]]
    cold_start: float | None
    cold_start_note: str
    commands: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Every number of the bundle, JSON-ready."""
        return {
            "target": self.target, "runtime": self.runtime, "arch": self.arch,
            "artifact": str(self.artifact), "package": str(self.package), "model": self.model,
            "unzipped_bytes": self.unzipped, "zipped_bytes": self.zipped,
            "limits": [{"name": limit.name, "measure": limit.measure, "bytes": limit.bytes,
                        "size": self._size(limit), "source": limit.source}
                       for limit in self.limits],
            "biggest": [{"path": path, "bytes": size} for path, size in self.parts],
            "cold_start_seconds": self.cold_start, "cold_start_note": self.cold_start_note,
            "commands": self.commands}

    def _size(self, limit: Limit) -> int:
        return self.zipped if limit.measure == "zipped" else self.unzipped

    def render_terminal(self, console: Any) -> None:
        """The artifact, its sizes against each limit, the cold start and the deploy lines."""
        say = console.print
        say(f"{self.target} bundle: {self.artifact}", highlight=False, soft_wrap=True)
        say(f"model:    {self.model} ({self.package})", highlight=False, soft_wrap=True)
        say(f"runtime:  {self.runtime} on {self.arch}", highlight=False)
        for limit in self.limits:
            size = self._size(limit)
            say(f"size:     {_mb(size)} {limit.measure} of {_mb(limit.bytes)} "
                f"({limit.name}, {100 * size / limit.bytes:.0f}%)", highlight=False)
        say("biggest:  " + ", ".join(f"{path} {_mb(size)}" for path, size in self.parts[:4]),
            highlight=False, soft_wrap=True)
        cold = (f"{self.cold_start:.2f} s ({self.cold_start_note})" if self.cold_start
                is not None else self.cold_start_note)
        say(f"cold start: {cold}", highlight=False, soft_wrap=True)
        for command in self.commands:
            say(f"  {command}", highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """A one-page summary of the bundle."""
        from ..reports.html import html_page, paragraph, table

        data = self.to_dict()
        return html_page(f"Serverless bundle for {self.target}", [
            ("Bundle", [table([{key: data[key] for key in (
                "target", "runtime", "arch", "artifact", "model", "unzipped_bytes",
                "zipped_bytes", "cold_start_seconds")}])]),
            ("Limits", [table(data["limits"])]),
            ("Deploy", [paragraph(command) for command in self.commands])])


def build_serverless(package: Path, target: str, out: Path, *, python: str | None = None,
                     arch: str = "x86_64", force: bool = False,
                     limits: Sequence[Limit] | None = None, lean_wheel: Path | None = None,
                     measure: bool = True) -> ServerlessResult:
    """Write the ``target`` bundle of ``package`` into ``out`` (see the module docstring).

    ``limits`` replaces the platform's published limits (tests use tiny ones); ``lean_wheel``
    is a lean serving wheel already built (else one is built). Nothing is written to ``out``
    unless the bundle is complete and within every limit.
    """
    from ..runtime.manifest import verify_package

    platform, python = _checked_options(target, python, arch)
    check_output(out, force)
    verify_package(package)  # an altered package is refused here, not at the first cold start
    with tempfile.TemporaryDirectory(prefix="mlstrata-serverless-") as work:
        root = Path(work)
        wheel = lean_wheel if lean_wheel is not None else _lean_wheel(root / "dist")
        tree = root / "function"
        site = tree / platform.site
        _pip_install(wheel, site, platform, python, arch)
        _strip(site)
        shutil.copytree(package, tree / "model")
        _write_entry(tree, platform, python)
        compiled = _compile(tree, python, arch)
        archive = root / "function.zip"
        write_zip(tree, archive)
        unzipped, zipped = _tree_size(tree), archive.stat().st_size
        parts = _biggest(tree, site)
        checked = tuple(limits) if limits is not None else platform.limits
        _check_limits(platform, checked, unzipped, zipped, parts)
        cold, note = (_cold_start(tree, site, python, arch) if measure
                      else (None, "not measured"))
        if compiled is None and cold is not None:
            note += "; modules not byte-compiled ahead"
        with staged_directory(out, force) as staging:
            if platform.name == "aws-lambda":
                shutil.copy2(archive, staging / "function.zip")
                artifact = out / "function.zip"
            else:
                shutil.copytree(tree, staging / "function", symlinks=True)
                artifact = out / "function"
            commands = _commands(platform, python, arch, out, package)
            (staging / "README.md").write_text(_readme(platform, python, arch, commands))
    return ServerlessResult(platform.name, platform.runtime(python), arch, artifact,
                            package, _model_name(package), unzipped, zipped, checked, parts,
                            cold, note, commands)


def _checked_options(target: str, python: str | None, arch: str) -> tuple[Platform, str]:
    platform = PLATFORMS.get(target)
    if platform is None:
        near = difflib.get_close_matches(target, PLATFORMS, n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise DeployError(f"--target {target!r} is not a serverless platform; {hint}use one of "
                          f"{', '.join(PLATFORMS)}")
    if arch not in platform.arches:
        raise DeployError(f"--arch {arch!r} is not available on {target}; use "
                          f"{' or '.join(platform.arches)}")
    python = python or platform.default_python
    if python in platform.refused:
        raise DeployError(f"--python {python} for {target}: {platform.refused[python]}")
    if python not in platform.pythons:
        raise DeployError(f"--python {python!r} is not a {target} Python runtime; use one of "
                          f"{', '.join(platform.pythons)}")
    return platform, python


def _lean_wheel(dist: Path) -> Path:
    from .lean import build_lean_wheel

    return build_lean_wheel(dist)


def platform_tags(platform: Platform, python: str, arch: str) -> list[str]:
    """pip ``--platform`` tags of every manylinux wheel the platform's C library runs.

    >>> platform_tags(PLATFORMS["aws-lambda"], "3.12", "arm64")[:2]
    ['manylinux_2_34_aarch64', 'manylinux_2_33_aarch64']
    """
    machine = "aarch64" if arch == "arm64" else "x86_64"
    major, minor = platform.glibc[python]
    return [f"manylinux_{major}_{glibc}_{machine}" for glibc in range(minor, 16, -1)] + [
        f"manylinux2014_{machine}"]


def _pip_install(wheel: Path, site: Path, platform: Platform, python: str, arch: str) -> None:
    """The lean wheel and its base requirements, as the platform's Linux wheels."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
               "--disable-pip-version-check", "--target", str(site), "--implementation", "cp",
               "--python-version", python, "--only-binary=:all:"]
    for tag in platform_tags(platform, python, arch):
        command += ["--platform", tag]
    done = subprocess.run([*command, str(wheel)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
        reason = errors[-1][len("ERROR:"):].strip() if errors else done.stderr.strip()[-300:]
        major, minor = platform.glibc[python]
        raise DeployError(f"pip cannot install the lean runtime for {platform.name} "
                          f"{platform.runtime(python)} {arch} (glibc {major}.{minor}): {reason}")


def _strip(site: Path) -> None:
    """Remove what inference never imports (see the module docstring)."""
    for relative in _STRIPPED:
        shutil.rmtree(site / relative, ignore_errors=True)
    for tests in sorted((site / "numpy").rglob("tests")) if (site / "numpy").is_dir() else ():
        if tests.is_dir():
            shutil.rmtree(tests, ignore_errors=True)


_ENTRIES = {
    "aws-lambda": ("lambda_function.py", '''\
"""AWS Lambda entry point (written by mlstrata deploy serverless): lambda_function.handler.

Answers API Gateway (REST and HTTP APIs) and Function URL events exactly like mlstrata serve.
"""

from pathlib import Path

from mlstrata.serve.functions import aws_handler, invoker

invoker(Path(__file__).with_name("model"))  # load the model in Lambda's init phase

handler = aws_handler
'''),
    "gcp-functions": ("main.py", '''\
"""Google Cloud Functions entry point (written by mlstrata deploy serverless): --entry-point handle.

Answers every path exactly like mlstrata serve.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # this bundle's own copies come first

from mlstrata.serve.functions import gcp_handler, invoker  # noqa: E402

invoker(Path(__file__).with_name("model"))  # load the model when the instance starts


def handle(request):
    """The HTTP function."""
    return gcp_handler(request)
'''),
    "azure-functions": ("function_app.py", '''\
"""Azure Functions entry point, Python v2 model (written by mlstrata deploy serverless).

Answers every path exactly like mlstrata serve (host.json sets no route prefix). Callers need
the function key (x-functions-key); set MLSTRATA_API_KEY for mlstrata's own bearer key too.
"""

from pathlib import Path

import azure.functions as func

from mlstrata.serve.functions import azure_main, invoker

invoker(Path(__file__).with_name("model"))  # load the model when the worker starts

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="{*path}", methods=["GET", "POST"])
def mlstrata(req: func.HttpRequest) -> func.HttpResponse:
    """The HTTP function."""
    return azure_main(req)
'''),
}

_AZURE_HOST = """\
{
  "version": "2.0",
  "extensions": {"http": {"routePrefix": ""}},
  "extensionBundle": {
    "id": "Microsoft.Azure.Functions.ExtensionBundle",
    "version": "[4.*, 5.0.0)"
  }
}
"""


def _write_entry(tree: Path, platform: Platform, python: str) -> None:
    name, text = _ENTRIES[platform.name]
    (tree / name).write_text(text)
    if platform.name == "gcp-functions":
        (tree / "requirements.txt").write_text(
            "# Everything else is vendored in this directory (Linux wheels for "
            f"{platform.runtime(python)}).\nfunctions-framework>=3,<4\n")
        (tree / ".gcloudignore").write_text("# Upload everything: the vendored dependencies "
                                            "and the model are the function.\n.gcloudignore\n")
    elif platform.name == "azure-functions":
        (tree / "host.json").write_text(_AZURE_HOST)
        (tree / "requirements.txt").write_text(
            "# Dependencies are in .python_packages (publish with --no-build).\n"
            "azure-functions\n")
        (tree / ".funcignore").write_text("README.md\n")


def interpreter_for(python: str, arch: str) -> str | None:
    """A Python ``python`` on this machine able to run the bundle (same OS and CPU), or None."""
    machine = "aarch64" if arch == "arm64" else "x86_64"
    if sys.platform != "linux" or host_platform.machine() != machine:
        return None
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{python}"),
                  *map(str, sorted(pyenv.glob(f"versions/{python}.*/bin/python{python}")))]
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run([candidate, "-S", "-c", "import sys; print(sys.version[:5])"],
                                  capture_output=True, text=True, timeout=30, check=False)
            if done.returncode == 0 and done.stdout.startswith(f"{python}."):
                return candidate
    return None


def _compile(tree: Path, python: str, arch: str) -> str | None:
    """Byte-compile the bundle with a Python of the target version (unchecked hashes: the
    sources never change under a deployed function); the interpreter used, or None."""
    interpreter = interpreter_for(python, arch)
    if interpreter is None:
        return None
    done = subprocess.run([interpreter, "-S", "-m", "compileall", "-q", "-j", "0",
                           "--invalidation-mode", "unchecked-hash", str(tree)],
                          capture_output=True, text=True, check=False)
    return interpreter if done.returncode == 0 else None


def write_zip(tree: Path, archive: Path) -> None:
    """Zip ``tree`` deterministically: sorted paths, a fixed date, 0644/0755 modes."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        for path in sorted(tree.rglob("*")):
            if path.is_dir() or path.is_symlink():
                continue
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), _ZIP_TIME)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes(), compresslevel=9)


def _tree_size(tree: Path) -> int:
    return sum(path.stat().st_size for path in tree.rglob("*") if path.is_file())


def _biggest(tree: Path, site: Path) -> list[tuple[str, int]]:
    """The bundle's top-level parts (each dependency, the model) by size, biggest first."""
    parts = [(path.relative_to(tree).as_posix(), _tree_size(path) if path.is_dir()
              else path.stat().st_size) for path in site.iterdir()]
    parts.append(("model", _tree_size(tree / "model")))
    return sorted(parts, key=lambda part: -part[1])


def _check_limits(platform: Platform, limits: Sequence[Limit], unzipped: int, zipped: int,
                  parts: list[tuple[str, int]]) -> None:
    for limit in limits:
        size = zipped if limit.measure == "zipped" else unzipped
        if size > limit.bytes:
            biggest = ", ".join(f"{path} {_mb(part)}" for path, part in parts[:3])
            raise DeployError(f"the {platform.name} bundle is {_mb(size)} {limit.measure}, over "
                              f"the {limit.name} limit of {_mb(limit.bytes)} (biggest: "
                              f"{biggest}); ship {platform.fallback} instead")


_COLD_START = """\
import time, sys
began = time.perf_counter()
from pathlib import Path
from mlstrata.serve.functions import HttpCall, invoker
answer = invoker(Path(sys.argv[1]))(HttpCall("GET", "/v2/health/ready"))
elapsed = time.perf_counter() - began
import mlstrata
print(elapsed, answer.status, mlstrata.__file__)
"""


def _cold_start(tree: Path, site: Path, python: str, arch: str) -> tuple[float | None, str]:
    """Seconds to import the handler and load the model from the bundle alone (no site
    packages), and what was measured."""
    interpreter = interpreter_for(python, arch)
    if interpreter is None:
        return None, f"not measured: no Python {python} for {arch} on this machine"
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{site}{os.pathsep}{tree}",
                   "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([interpreter, "-S", "-c", _COLD_START, str(tree / "model")],
                          capture_output=True, text=True, env=environment, check=False,
                          timeout=120)
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 3 or fields[1] != "200":
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise DeployError(f"the bundle does not start on Python {python} here: {tail[0]}")
    return float(fields[0]), "import + model load + first answer, from the bundle alone"


def _model_name(package: Path) -> str:
    with contextlib.suppress(Exception):
        from ..runtime.manifest import load_manifest

        manifest = load_manifest(package)
        return f"{manifest.model_name}@{manifest.model_version}"
    return package.name


def _function_name(package: Path) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", _model_name(package).split("@")[0]).strip("-")[:50]


def _commands(platform: Platform, python: str, arch: str, out: Path,
              package: Path) -> list[str]:
    name = _function_name(package) or "mlstrata-model"
    runtime = platform.runtime(python)
    if platform.name == "aws-lambda":
        return [f"aws lambda create-function --function-name {name} --runtime {runtime} "
                f"--architectures {arch} --handler lambda_function.handler --memory-size 1024 "
                f"--timeout 30 --zip-file fileb://{out}/function.zip "
                "--role arn:aws:iam::ACCOUNT_ID:role/LAMBDA_ROLE",
                f"aws lambda create-function-url-config --function-name {name} "
                "--auth-type AWS_IAM"]
    if platform.name == "gcp-functions":
        return [f"gcloud functions deploy {name} --gen2 --runtime {runtime} --region REGION "
                f"--source {out}/function --entry-point handle --trigger-http --memory 1Gi"]
    return [f"az functionapp create --name APP --resource-group GROUP --storage-account STORAGE "
            f"--consumption-plan-location REGION --os-type Linux --runtime python "
            f"--runtime-version {python} --functions-version 4",
            f"cd {out}/function && func azure functionapp publish APP --no-build"]


def _readme(platform: Platform, python: str, arch: str, commands: list[str]) -> str:
    lines = [f"# {platform.name} bundle ({platform.runtime(python)}, {arch})", "",
             "Written by `mlstrata deploy serverless`. It answers exactly like `mlstrata serve` "
             "(POST /v1/predict, /invocations, /v2/models/NAME/infer, health checks).", "",
             "Environment: MLSTRATA_API_KEY (requests need `Authorization: Bearer KEY`), "
             "MLSTRATA_STRICT=1 (warn rules refuse too).", "", "```sh", *commands, "```", ""]
    return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / MiB:.1f} MB"
