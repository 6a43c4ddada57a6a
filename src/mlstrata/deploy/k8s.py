"""Kubernetes manifests for a package: a kustomize base, a production overlay, KServe, a CronJob.

``render_k8s`` writes, from the Jinja2 templates in ``templates/k8s/``::

    base/                 kustomization.yaml, serviceaccount.yaml, deployment.yaml, service.yaml,
                          hpa.yaml (unless a fixed --replicas), pdb.yaml, cronjob.yaml (--cronjob)
    overlays/production/  kustomization.yaml (namespace, image pin) + the per-environment values
                          (resources, autoscaler bounds) as strategic-merge patches
    kserve/               kustomization.yaml, serviceaccount.yaml, inferenceservice.yaml (--kserve)
    README.md             the kubectl lines, the Secret to create

The pods follow the image's conventions (:mod:`mlstrata.deploy`): the package at
``/opt/mlstrata/model``, user 10001, a read-only root filesystem with emptyDir volumes at ``/tmp``
and ``/var/lib/mlstrata``, REST on 8080 and gRPC on 8081, probes on the Open Inference Protocol
health routes. The API key is read from a Secret this directory never holds. Every option is
checked before the package is read, and every rendered file is parsed back as YAML before the
directory is written (whole, by :func:`.output.staged_directory`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from ..reports.base import Report
from ..reports.html import html_page, paragraph, table
from ..runtime.manifest import Manifest, verify_package
from .image_ref import ImageReference, parse_image
from .output import DeployError, staged_directory

__all__ = ["BatchJob", "K8sOptions", "K8sResult", "check_schedule", "render_k8s"]

UID = 10001
HTTP_PORT = 8080
GRPC_PORT = 8081
MODEL_DIR = "/opt/mlstrata/model"
STATE_DIR = "/var/lib/mlstrata"
DATA_DIR = "/data"
API_KEY_KEY = "api-key"
# KServe's deploymentMode annotation per --kserve-mode: the names every KServe release knows
# (newer ones read them as Standard and Knative).
KSERVE_MODES = {"raw": "RawDeployment", "serverless": "Serverless"}
_NAME_MAX = 46  # "<name>-batch" is a CronJob name: at most 52 characters
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUANTITY = re.compile(r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
                       r"|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?/,-]+")
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


@dataclass(frozen=True)
class K8sOptions:
    """What ``mlstrata deploy k8s`` renders; ``None`` means the default described per field."""

    image: str
    name: str | None = None  # default: the model's name as a DNS label
    namespace: str = "mlstrata"
    replicas: int | None = None  # a fixed count and no autoscaler
    min_replicas: int | None = None  # autoscaler bounds; default 2 and 5
    max_replicas: int | None = None
    cpu_target: int = 70
    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    cpu_limit: str | None = "1"
    memory_limit: str = "512Mi"
    workers: int = 1
    threads: int = 1
    grpc: bool = True
    api_key: bool = True
    api_key_secret: str | None = None  # default "<name>-api-key"
    log: str | None = None
    kserve: bool = False
    kserve_mode: str = "raw"  # raw: KServe makes a Deployment + HPA; serverless: Knative
    kserve_concurrency: int = 8  # serverless: requests in flight per pod the autoscaler targets
    cronjob: str | None = None
    batch_image: str | None = None
    batch_input: str | None = None
    batch_output: str | None = None
    batch_keys: tuple[str, ...] = ()
    batch_claim: str | None = None
    time_zone: str = "Etc/UTC"
    grace_seconds: int = 40  # the preStop drain + the server's own 30 s to finish requests
    drain_seconds: int = 5
    tmp_size: str = "256Mi"
    state_size: str = "1Gi"


@dataclass(frozen=True)
class BatchJob:
    """The CronJob's resolved settings."""

    name: str
    schedule: str
    time_zone: str
    image: str
    pull_policy: str
    command: list[str]
    copy_command: list[str]
    claim: str | None
    env_secret: str
    data_dir: str = DATA_DIR
    deadline_seconds: int = 6 * 3600


@dataclass
class K8sResult(Report):
    """A rendered manifest directory: where it is, what it holds, how to apply it."""

    out: Path
    files: list[str]
    model: str
    package_sha256: str
    image: str
    name: str
    namespace: str
    kserve: bool
    cronjob: str | None
    api_key_secret: str | None
    commands: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything the command decided, JSON-ready."""
        return {"out": str(self.out), "model": self.model, "package_sha256": self.package_sha256,
                "image": self.image, "name": self.name, "namespace": self.namespace,
                "files": self.files, "kserve": self.kserve, "cronjob": self.cronjob,
                "api_key_secret": self.api_key_secret, "commands": self.commands}

    def render_terminal(self, console: Console) -> None:
        """Where the manifests are and the commands that apply them."""
        console.print(f"manifests: {self.out} ({len(self.files)} files)", highlight=False,
                      soft_wrap=True)
        console.print(f"model:     {self.model} (package {self.package_sha256[:12]})",
                      highlight=False)
        console.print(f"image:     {self.image}", highlight=False, soft_wrap=True)
        for command in self.commands:
            console.print(f"  {command}", highlight=False, soft_wrap=True)

    def to_html(self) -> str:
        """A one-page summary."""
        return html_page(f"Kubernetes manifests for {self.model}", [
            ("Manifests", [table([{k: v for k, v in self.to_dict().items()
                                   if not isinstance(v, list)}])]),
            ("Apply", [paragraph(command) for command in self.commands])])


def render_k8s(package_dir: Path, options: K8sOptions, out: Path,
               force: bool = False) -> K8sResult:
    """Render the manifests of the package in ``package_dir`` into ``out`` (see the module).

    Raises :class:`DeployError` for a bad option, before reading the package; nothing is
    written then, nor when ``out`` holds files and ``force`` is false.
    """
    image = parse_image(options.image)
    _check_options(options)
    manifest = verify_package(package_dir)
    context = _Context(options, image, manifest, _sha256(package_dir / "manifest.json"))
    files = _render_files(context)
    with staged_directory(out, force) as staging:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return K8sResult(out=out, files=sorted(files), model=context.model_ref,
                     package_sha256=context.package_sha256, image=context.image,
                     name=context.name, namespace=options.namespace, kserve=options.kserve,
                     cronjob=options.cronjob, api_key_secret=context.options.api_key_secret,
                     commands=context.commands(out))


def default_name(model_name: str) -> str:
    """A Kubernetes name (a DNS label) for a model.

    >>> default_name("credit.model")
    'credit-model'
    >>> default_name("2024_Churn")
    'm-2024-churn'
    """
    name = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") or "model"
    if not name[0].isalpha():
        name = f"m-{name}"
    return name[:_NAME_MAX].rstrip("-")


def _check_options(o: K8sOptions) -> None:
    if o.name is not None:
        _check_label("--name", o.name, _NAME_MAX)
    _check_label("--namespace", o.namespace, 63)
    if o.api_key_secret is not None:
        _check_label("--api-key-secret", o.api_key_secret, 253)
    if o.replicas is not None:
        if o.min_replicas is not None or o.max_replicas is not None:
            raise DeployError("--replicas fixes the count without an autoscaler; pass either "
                              "--replicas or --min-replicas/--max-replicas, not both")
        _check_at_least("--replicas", o.replicas, 1)
    low, high = o.min_replicas or 2, o.max_replicas or 5
    _check_at_least("--min-replicas", low, 1)
    if high < low:
        raise DeployError(f"--max-replicas {high} is below --min-replicas {low}; pass a "
                          f"maximum of at least {low}")
    if not 1 <= o.cpu_target <= 100:
        raise DeployError(f"--cpu-target {o.cpu_target} is not a percentage of the CPU request;"
                          " pass 1 to 100 (e.g. 70)")
    _check_at_least("--workers", o.workers, 1)
    _check_at_least("--threads", o.threads, 1)
    if o.kserve_mode not in KSERVE_MODES:
        raise DeployError(f"--kserve-mode {o.kserve_mode!r} is not one of "
                          f"{', '.join(KSERVE_MODES)}")
    _check_at_least("--kserve-concurrency", o.kserve_concurrency, 1)
    for option, value in (("--cpu-request", o.cpu_request), ("--memory-request",
                          o.memory_request), ("--cpu-limit", o.cpu_limit),
                          ("--memory-limit", o.memory_limit)):
        if value is not None and not _QUANTITY.fullmatch(value):
            raise DeployError(f"{option} {value!r} is not a Kubernetes quantity; pass e.g. "
                              f"{'500m or 1' if 'cpu' in option else '512Mi or 1Gi'}")
    if o.log is not None and "://" not in o.log and not o.log.startswith(f"{STATE_DIR}/"):
        raise DeployError(f"--log {o.log} is not writable in the pod (read-only root "
                          f"filesystem); pass a directory under {STATE_DIR}/ (e.g. "
                          f"{STATE_DIR}/predictions) or a postgresql:// URL")
    _check_batch(o)


def _check_label(option: str, value: str, limit: int) -> None:
    if len(value) > limit or not _DNS_LABEL.fullmatch(value):
        raise DeployError(f"{option} {value!r} is not a Kubernetes name: at most {limit} "
                          "lowercase letters, digits and '-', starting with a letter and not "
                          "ending with '-' (e.g. credit-model)")


def _check_at_least(option: str, value: int, low: int) -> None:
    if value < low:
        raise DeployError(f"{option} {value} is below {low}; pass {low} or more")


def _check_batch(o: K8sOptions) -> None:
    batch = {"--batch-image": o.batch_image, "--input": o.batch_input,
             "--output": o.batch_output}
    if o.cronjob is None:
        given = [option for option, value in batch.items() if value is not None]
        if given or o.batch_claim or o.batch_keys:
            raise DeployError(f"{(given or ['--batch-claim/--batch-key'])[0]} belongs to the "
                              "batch CronJob; add --cronjob SCHEDULE (e.g. '0 2 * * *')")
        return
    check_schedule(o.cronjob)
    missing = [option for option, value in batch.items() if not value]
    if missing:
        raise DeployError(f"--cronjob needs {', '.join(missing)}: the image with the full "
                          "mlstrata that runs `mlstrata predict`, and where it reads and writes")
    parse_image(o.batch_image or "", "--batch-image")
    if o.batch_claim is not None:
        _check_label("--batch-claim", o.batch_claim, 253)
    for option, value in (("--input", o.batch_input), ("--output", o.batch_output)):
        _check_batch_path(option, value or "", o.batch_claim)
    try:
        zoneinfo.ZoneInfo(o.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DeployError(f"--time-zone {o.time_zone!r} is not an IANA time zone; pass e.g. "
                          "Etc/UTC or Europe/Paris") from exc


def check_schedule(schedule: str) -> None:
    """Refuse a cron schedule Kubernetes would not take (five fields or a macro such as
    ``@daily``), naming the fix; used for ``--cronjob`` here and by ``retrain``'s CronJob.

    >>> check_schedule("0 3 * * *")
    """
    fields = schedule.split()
    if schedule.strip() in _CRON_MACROS:
        return
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        raise DeployError(f"--cronjob {schedule!r} is not a cron schedule: five fields (minute "
                          "hour day-of-month month day-of-week, e.g. '0 2 * * *') or @daily, "
                          "@hourly, ...; the time zone goes in --time-zone")


def _check_batch_path(option: str, value: str, claim: str | None) -> None:
    if "://" in value:
        return
    if not value.startswith(f"{DATA_DIR}/"):
        raise DeployError(f"{option} {value} is not reachable from the job (read-only root "
                          f"filesystem); pass a path under {DATA_DIR}/ with --batch-claim PVC, "
                          "or a postgresql:// URL")
    if claim is None:
        raise DeployError(f"{option} {value} is a file path: add --batch-claim PVC (a "
                          f"PersistentVolumeClaim mounted at {DATA_DIR}), or pass a "
                          "postgresql:// URL")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Context:
    """What the templates see as ``ctx``."""

    uid = UID
    http_port = HTTP_PORT
    grpc_port = GRPC_PORT
    model_dir = MODEL_DIR
    state_dir = STATE_DIR
    api_key_key = API_KEY_KEY
    startup_seconds = 60

    def __init__(self, options: K8sOptions, image: ImageReference, manifest: Manifest,
                 package_sha256: str) -> None:
        name = options.name or default_name(manifest.model_name)
        fixed = options.replicas is not None
        self.options = dataclasses.replace(
            options, name=name,
            min_replicas=None if fixed else options.min_replicas or 2,
            max_replicas=None if fixed else options.max_replicas or 5,
            api_key_secret=(options.api_key_secret or f"{name}-api-key") if options.api_key
            else None)
        self.name = name
        self.image_ref = image
        self.image = str(image)
        self.pull_policy = "IfNotPresent" if image.pinned else "Always"
        self.manifest = manifest
        self.model_name = manifest.model_name
        self.model_ref = f"{manifest.model_name}@{manifest.model_version}"
        self.package_sha256 = package_sha256
        self.batch = self._batch() if options.cronjob else None
        self.kserve_raw = options.kserve_mode == "raw"
        self.kserve_mode_annotation = KSERVE_MODES.get(options.kserve_mode, "")
        self.base_files = ["serviceaccount.yaml", "deployment.yaml", "service.yaml",
                           *([] if fixed else ["hpa.yaml"]), "pdb.yaml",
                           *(["cronjob.yaml"] if self.batch else [])]

    def labels(self, component: str) -> dict[str, str]:
        """The recommended ``app.kubernetes.io/*`` labels of every object."""
        return {**self.selector(component),
                "app.kubernetes.io/version": str(self.manifest.model_version),
                "app.kubernetes.io/part-of": "mlstrata",
                "app.kubernetes.io/managed-by": "mlstrata"}

    def selector(self, component: str) -> dict[str, str]:
        """The labels that select one component's pods (they never change between versions).
        """
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/instance": self.name,
                "app.kubernetes.io/component": component}

    def package_annotations(self) -> dict[str, str]:
        """Which package the objects run: model, version, id and the manifest's sha256."""
        return {"mlstrata.io/model": self.manifest.model_name,
                "mlstrata.io/model-version": str(self.manifest.model_version),
                "mlstrata.io/model-id": self.manifest.model_id,
                "mlstrata.io/package-sha256": self.package_sha256,
                "mlstrata.io/mlstrata-version": self.manifest.mlstrata_version}

    def commands(self, out: Path) -> list[str]:
        """The lines that ship the manifests."""
        ns = self.options.namespace
        lines = []
        if self.options.api_key_secret:
            lines.append(f"kubectl -n {ns} create secret generic {self.options.api_key_secret}"
                         f" --from-literal={API_KEY_KEY}=\"$(openssl rand -hex 32)\"")
        lines.append(f"kubectl apply -k {out / 'overlays' / 'production'}")
        if self.options.kserve:
            lines.append(f"kubectl apply -k {out / 'kserve'}    # KServe instead")
        return lines

    def _batch(self) -> BatchJob:
        o = self.options
        image = parse_image(o.batch_image or "", "--batch-image")
        package = f"{STATE_DIR}/model"
        keys = [arg for key in o.batch_keys for arg in ("--key", key)]
        return BatchJob(
            name=f"{self.name}-batch", schedule=o.cronjob or "", time_zone=o.time_zone,
            image=str(image), pull_policy="IfNotPresent" if image.pinned else "Always",
            command=["mlstrata", "predict", package, "--input", o.batch_input or "",
                     "--output", o.batch_output or "", *keys, "--json"],
            copy_command=["python", "-c", "import shutil, sys; shutil.copytree(sys.argv[1], "
                          "sys.argv[2], dirs_exist_ok=True)", MODEL_DIR, package],
            claim=o.batch_claim, env_secret=f"{self.name}-batch-env")


def _render_files(context: _Context) -> dict[str, str]:
    """Every file of the directory, rendered and checked to parse as YAML."""
    env = _environment()
    names = [f"base/{name}" for name in ("kustomization.yaml", *context.base_files)]
    names += ["overlays/production/kustomization.yaml",
              "overlays/production/deployment-values.yaml"]
    if context.options.replicas is None:
        names.append("overlays/production/hpa-values.yaml")
    if context.options.kserve:
        names += ["kserve/kustomization.yaml", "kserve/inferenceservice.yaml"]
    files = {name: _tidy(env.get_template(f"{name}.j2").render(ctx=context)) for name in names}
    if context.options.kserve:
        files["kserve/serviceaccount.yaml"] = files["base/serviceaccount.yaml"]
    for name, text in files.items():
        _check_yaml(name, text)
    files["README.md"] = env.get_template("README.md.j2").render(ctx=context)
    return files


def _tidy(text: str) -> str:
    """Without the blank lines the templates' conditionals leave."""
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip()) + "\n"


def _check_yaml(name: str, text: str) -> None:
    """A rendered file must be one YAML mapping with apiVersion and kind (a template bug else).
    """
    document = yaml.safe_load(text)
    if not (isinstance(document, dict) and "apiVersion" in document and "kind" in document):
        raise RuntimeError(f"template {name} rendered no Kubernetes object: {text[:200]!r}")


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlstrata.deploy", "templates/k8s"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    env.filters["q"] = _quote
    return env


def _quote(value: object) -> str:
    """A YAML flow scalar for any string or list of strings (JSON is YAML)."""
    return json.dumps(value, ensure_ascii=False)
