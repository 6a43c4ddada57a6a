"""``mlstrata deploy docker``: a Docker build context that serves one package.

The context (written whole into ``--out``, or not at all)::

    Dockerfile          two stages on a slim Python base pinned by tag and digest: a builder
                        installs the lean serving wheel into a venv (pinned dependency versions,
                        pip removed); the final stage copies the venv and the package, runs as
                        user 10001, checks the package at build time (``mlstrata-serve
                        --check``), HEALTHCHECK on /v2/health/ready, exec-form ENTRYPOINT
    .dockerignore       only the files the Dockerfile copies reach the daemon
    constraints.txt     the versions of the serving dependencies this mlstrata runs with
    wheels/             mlstrata_serving-<version>-py3-none-any.whl (:mod:`.lean`)
    model/              the package: every file its manifest lists, verified after the copy
    docker-compose.yml  the server and Prometheus scraping its /metrics
    prometheus.yml
    README.md           the docker build / docker run / docker compose lines

Nothing here runs Docker. The Dockerfile's install commands and entry point are plain shell
and environment variables (``MLSTRATA_VENV``, ``MLSTRATA_MODEL``), so the tests run exactly
those commands in a fresh venv and prove the image serves the package's predictions.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

from ..reports import Report, html_page, paragraph, table
from ..runtime.manifest import MANIFEST_FILE, Manifest, verify_package
from .image_ref import parse_image
from .lean import DISTRIBUTION, build_lean_wheel, lean_version, requirements
from .output import DeployError, staged_directory

__all__ = ["BASE_IMAGE", "PROMETHEUS_IMAGE", "SERVER_EXTRAS", "DockerContext", "default_image",
           "render_docker"]

BASE_IMAGE = ("python:3.11.7-slim-bookworm@sha256:"
              "637774748f62b832dc11e7b286e48cd716727ed04b45a0322776c01bc526afc3")
"""The base of both stages: the Python these tests run (3.11.7), Debian bookworm slim, by digest."""

PROMETHEUS_IMAGE = ("prom/prometheus:v3.5.0@sha256:"
                    "63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996")
"""Prometheus 3.5 (long-term support) for the compose file, by digest."""

SERVER_EXTRAS = ("server",)
"""What the image installs of the lean distribution; ``postgres=True`` adds psycopg."""
_TEMPLATES = {"Dockerfile": "Dockerfile.j2", ".dockerignore": "dockerignore.j2",
              "docker-compose.yml": "docker-compose.yml.j2",
              "prometheus.yml": "prometheus.yml.j2", "README.md": "README.md.j2"}


@dataclass(frozen=True)
class DockerContext(Report):
    """A rendered build context: where, for which model, the image name and the commands."""

    out: Path
    package: Path
    manifest: Manifest
    image: str
    extras: tuple[str, ...]
    files: tuple[str, ...]
    size: int

    def commands(self) -> dict[str, str]:
        """The shell lines that build, run and compose the image."""
        return {
            "build": f"docker build -t {self.image} {self.out}",
            "run": f"docker run --rm -p 8080:8080 -p 8081:8081 --read-only --tmpfs /tmp "
                   f"--stop-timeout 35 {self.image}",
            "compose": f"docker compose -f {self.out / 'docker-compose.yml'} up --build"}

    def to_dict(self) -> dict[str, Any]:
        """Paths, model, image, base, files and commands, JSON-ready."""
        return {"out": str(self.out), "package": str(self.package),
                "model": f"{self.manifest.model_name}@{self.manifest.model_version}",
                "image": self.image, "base_image": BASE_IMAGE,
                "installs": f"{DISTRIBUTION}[{','.join(self.extras)}]", "files": list(self.files),
                "size": self.size, "commands": self.commands()}

    def render_terminal(self, console: Console) -> None:
        """Print what was written and how to build and run it."""
        for label, value in (("context", self.out), ("model", self.to_dict()["model"]),
                             ("image", self.image), ("base", BASE_IMAGE)):
            console.print(f"{label + ':':9} {value}", highlight=False, soft_wrap=True)
        console.print(f"{'files:':9} {len(self.files)} ({self.size / 1e6:.1f} MB)",
                      highlight=False)
        for label, line in self.commands().items():
            console.print(f"{label + ':':9} {line}", highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """A one-page summary of the context."""
        rows = [{"step": label, "command": line} for label, line in self.commands().items()]
        return html_page(f"Docker build context {self.out.name}", [
            ("Context", [table([{k: v for k, v in self.to_dict().items()
                                 if k not in ("files", "commands")}])]),
            ("Commands", [table(rows)]),
            ("Files", [paragraph(", ".join(self.files))])])


def default_image(manifest: Manifest) -> str:
    """``<model name as a repository>:<version>``.

    >>> from types import SimpleNamespace
    >>> default_image(SimpleNamespace(model_name="Credit.Model", model_version=3))
    'credit-model:3'
    """
    name = re.sub(r"[^a-z0-9]+", "-", manifest.model_name.lower()).strip("-") or "model"
    return f"{name}:{manifest.model_version}"


def render_docker(package_dir: Path, out: Path, *, force: bool = False,
                  image: str | None = None, postgres: bool = False) -> DockerContext:
    """Write the build context serving the package in ``package_dir`` into ``out``.

    ``image`` is the name the README and the compose file give the image; ``postgres`` also
    installs psycopg so that ``MLSTRATA_LOG`` can be a ``postgresql://`` URL.

    The package is verified first and its copy after; a corrupted package, a package without
    ONNX model, an invalid ``image`` or an ``out`` in the way raises :class:`DeployError`
    (or the runtime's integrity error) and writes nothing.
    """
    manifest = verify_package(package_dir)
    if "model.onnx" not in manifest.files:
        raise DeployError(f"{package_dir}: the package has no model.onnx; only an ONNX package "
                          "can be served, rebuild it with 'mlstrata package MODEL'")
    image = str(parse_image(image, "--tag")) if image else default_image(manifest)
    extras = (*SERVER_EXTRAS, "postgres") if postgres else SERVER_EXTRAS
    with staged_directory(out, force) as stage:
        _copy_package(package_dir, manifest, stage / "model")
        wheel = build_lean_wheel(stage / "wheels")
        (stage / "constraints.txt").write_text(_constraints(extras), encoding="utf-8")
        context = _template_context(manifest, package_dir, image, wheel.name, extras, out)
        environment = _environment()
        for name, template in _TEMPLATES.items():
            text = environment.get_template(template).render(context)
            (stage / name).write_text(text, encoding="utf-8")
        files = tuple(sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*")
                             if p.is_file()))
        size = sum((stage / name).stat().st_size for name in files)
    return DockerContext(out=out, package=package_dir, manifest=manifest, image=image,
                         extras=extras, files=files, size=size)


def _copy_package(package_dir: Path, manifest: Manifest, target: Path) -> None:
    """Copy every file the manifest lists (and the manifest), then verify the copy."""
    for name in (*sorted(manifest.files), MANIFEST_FILE):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package_dir / name, destination)
        destination.chmod(0o644)
    verify_package(target)


def _constraints(extras: tuple[str, ...]) -> str:
    """``name==version`` for every serving requirement installed here: the image gets the
    versions this mlstrata was tested and packaged with."""
    lines = ["# The versions of the serving dependencies of the mlstrata that rendered this "
             "context.\n"]
    for requirement in requirements(*extras):
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        try:
            lines.append(f"{name}=={metadata.version(name)}\n")
        except metadata.PackageNotFoundError:
            continue
    return "".join(lines)


def _template_context(manifest: Manifest, package_dir: Path, image: str, wheel: str,
                      extras: tuple[str, ...], out: Path) -> dict[str, Any]:
    manifest_bytes = (package_dir / MANIFEST_FILE).read_bytes()
    return {
        "model_name": manifest.model_name, "model_version": manifest.model_version,
        "model_id": manifest.model_id, "mlstrata_version": lean_version(),
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "base_image": BASE_IMAGE, "base_image_tag": BASE_IMAGE.partition("@")[0],
        "prometheus_image": PROMETHEUS_IMAGE, "image": image, "wheel": wheel,
        "extras": ",".join(extras), "distribution": DISTRIBUTION, "context": str(out),
        "service": _service(image)}


def _service(image: str) -> str:
    """A compose service and project name from the image's last path component.

    >>> _service("registry.example.com/team/credit.model:1")
    'credit-model'
    """
    last = image.rpartition("/")[2].partition("@")[0].partition(":")[0]
    return re.sub(r"[^a-z0-9_-]+", "-", last.lower()).strip("-_") or "model"


def _environment() -> Any:
    import json

    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mlstrata.deploy", "templates/docker"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    environment.filters["q"] = lambda value: json.dumps(value, ensure_ascii=False)
    return environment
