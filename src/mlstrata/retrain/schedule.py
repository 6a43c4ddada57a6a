"""Running retrains on a schedule: the cron line, and a Kubernetes CronJob manifest.

Both run the same command, ``mlstrata retrain NAME --data SOURCE --trigger schedule`` in the
project directory, at ``retrain.schedule`` (or ``--schedule``). The CronJob mounts the project
(its ``mlstrata.yaml``, ``.mlstrata`` store and registry) from a PersistentVolumeClaim at
``/project``, runs as the same non-root user and with the same locked-down pod as ``mlstrata
deploy k8s`` renders, forbids overlapping runs (``concurrencyPolicy: Forbid``; the retrain lock
refuses one anyway) and never retries a retrain that decided (exit 1 means "kept the champion",
not "try again"). The schedule is checked by the same rule as ``deploy k8s --cronjob``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import _atomic
from ..deploy.k8s import UID, check_schedule
from ..deploy.output import DeployError
from ..errors import ConfigError

__all__ = ["CronJobOptions", "cron_line", "cronjob_manifest", "retrain_command",
           "write_cronjob"]

PROJECT_DIR = "/project"
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class CronJobOptions:
    """The CronJob's image, project volume, namespace and time zone."""

    image: str
    claim: str
    namespace: str = "mlstrata"
    time_zone: str = "Etc/UTC"
    env_secret: str | None = None


def retrain_command(name: str, source: Sequence[str], project: str) -> list[str]:
    """The scheduled command: ``source`` are the source options (``--data FILE`` ...).

    >>> " ".join(retrain_command("credit", ["--data", "data/new.csv"], "/srv/p"))
    'mlstrata retrain credit --data data/new.csv --trigger schedule -w /srv/p'
    """
    return ["mlstrata", "retrain", name, *source, "--trigger", "schedule", "-w", project]


def cron_line(schedule: str, name: str, source: Sequence[str], project: Path) -> str:
    """A crontab line running the retrain at ``schedule``, its output appended to a log.

    >>> cron_line("@daily", "credit", ["--data", "new.csv"], Path("/p")).split(" >> ")[0]
    '@daily cd /p && mlstrata retrain credit --data new.csv --trigger schedule -w /p'
    """
    _check(schedule)
    command = shlex.join(retrain_command(name, source, str(project)))
    log = shlex.quote(str(project / "reports" / f"retrain-{name}.log"))
    return f"{schedule} cd {shlex.quote(str(project))} && {command} >> {log} 2>&1"


def cronjob_manifest(schedule: str, name: str, source: Sequence[str],
                     options: CronJobOptions) -> dict[str, Any]:
    """A ``batch/v1`` CronJob running the retrain in a pod with the project mounted."""
    _check(schedule)
    job = _job_name(name)
    labels = {"app.kubernetes.io/name": job, "app.kubernetes.io/component": "retrain",
              "app.kubernetes.io/managed-by": "mlstrata"}
    container: dict[str, Any] = {
        "name": "retrain", "image": options.image, "imagePullPolicy": "IfNotPresent",
        "command": retrain_command(name, source, PROJECT_DIR), "workingDir": PROJECT_DIR,
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                      "limits": {"cpu": "2", "memory": "4Gi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "privileged": False, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "project", "mountPath": PROJECT_DIR},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    if options.env_secret:
        container["envFrom"] = [{"secretRef": {"name": options.env_secret, "optional": True}}]
    pod = {"restartPolicy": "Never", "automountServiceAccountToken": False,
           "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                               "fsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [container],
           "volumes": [{"name": "project",
                        "persistentVolumeClaim": {"claimName": options.claim}},
                       {"name": "tmp", "emptyDir": {}}]}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": job, "namespace": options.namespace, "labels": labels},
        "spec": {"schedule": schedule, "timeZone": options.time_zone,
                 "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 600,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                 "jobTemplate": {"metadata": {"labels": labels}, "spec": {
                     "backoffLimit": 0, "ttlSecondsAfterFinished": 86400,
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}},
    }


def write_cronjob(path: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as YAML to ``path`` atomically."""
    header = "# mlstrata retrain on a schedule; apply with: kubectl apply -f " + path.name + "\n"
    _atomic.write_text(path, header + yaml.safe_dump(manifest, sort_keys=False))
    return path


def _check(schedule: str) -> None:
    try:
        check_schedule(schedule)
    except DeployError as exc:
        raise ConfigError(str(exc).replace("--cronjob", "retrain.schedule")) from exc


def _job_name(name: str) -> str:
    """``<name>-retrain`` as a DNS label (a CronJob name is at most 52 characters)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:44] or "model"
    if not _DNS_LABEL.fullmatch(label):
        label = f"m-{label}"[:44]
    return f"{label}-retrain"
