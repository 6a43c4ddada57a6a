"""mlstrata deploy k8s: manifests valid against Kubernetes' and KServe's schemas, a pod a platform
team accepts (probes, non-root, read-only, drained on shutdown, key from a Secret), a kustomize
layout kubectl renders, a CronJob whose commands really score, and bad input refused whole."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from mlstrata.deploy.k8s import K8sOptions, render_k8s
from mlstrata.runtime.model import load

from .._processes import free_port
from ..batch._inputs import KEY, valid_records
from ._schemas import InferenceServiceSchema, kubernetes_errors

IMAGE = "registry.example.com/team/credit-model:1.0"
BATCH_IMAGE = "registry.example.com/team/mlstrata:0.1.0"
FULL = K8sOptions(image=IMAGE, kserve=True, cronjob="0 2 * * *", batch_image=BATCH_IMAGE,
                  batch_input="/data/applications.csv", batch_output="/data/scored.parquet",
                  batch_keys=(KEY,), batch_claim="scoring-data", namespace="credit")
KUBECTL = shutil.which("kubectl")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _load(out: Path, name: str) -> dict[str, Any]:
    [document] = _documents(out / name)
    return document


@pytest.fixture(scope="module")
def rendered(credit_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every optional part: KServe, a CronJob with a volume claim and a key column."""
    out = tmp_path_factory.mktemp("k8s") / "manifests"
    render_k8s(credit_package, FULL, out)
    return out


@pytest.fixture(scope="session")
def isvc_schema(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> InferenceServiceSchema:
    """The CRD's schema, cached as JSON across runs in pytest's cache (when it is on)."""
    cache = getattr(request.config, "cache", None)
    return InferenceServiceSchema(cache.mkdir("mlstrata-kserve-crd") if cache is not None
                                  else tmp_path_factory.mktemp("kserve-crd"))


def _kubernetes_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml")
                  if p.name != "kustomization.yaml" and p.name != "inferenceservice.yaml"
                  and "overlays" not in p.parts)


# --- schemas -------------------------------------------------------------------------------

def test_the_layout(rendered: Path) -> None:
    files = sorted(str(p.relative_to(rendered)) for p in rendered.rglob("*") if p.is_file())
    assert files == [
        "README.md", "base/cronjob.yaml", "base/deployment.yaml", "base/hpa.yaml",
        "base/kustomization.yaml", "base/pdb.yaml", "base/service.yaml",
        "base/serviceaccount.yaml", "kserve/inferenceservice.yaml",
        "kserve/kustomization.yaml", "kserve/serviceaccount.yaml",
        "overlays/production/deployment-values.yaml", "overlays/production/hpa-values.yaml",
        "overlays/production/kustomization.yaml"]
    base = _load(rendered, "base/kustomization.yaml")
    assert sorted(base["resources"]) == sorted(
        p.name for p in (rendered / "base").iterdir() if p.name != "kustomization.yaml")


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_every_kubernetes_manifest_is_valid_in_strict_mode(rendered: Path, version: str) -> None:
    checked = 0
    for name in _kubernetes_files(rendered):
        for document in _documents(rendered / name):
            assert kubernetes_errors(document, version) == [], name
            checked += 1
    assert checked == 7  # 6 in base, the ServiceAccount beside the InferenceService


def test_the_inferenceservice_is_valid_against_kserves_crd(
        rendered: Path, isvc_schema: InferenceServiceSchema) -> None:
    assert isvc_schema.errors(_load(rendered, "kserve/inferenceservice.yaml")) == []


def test_an_unknown_kind_is_a_failure(rendered: Path, tmp_path: Path) -> None:
    """kubernetes-validate's CLI only warns about a kind it has no schema for (exit 0); the
    check here fails it, and the same object with a known kind passes."""
    service = _load(rendered, "base/service.yaml")
    assert kubernetes_errors(service) == []
    typo = {**service, "kind": "Servise"}
    [error] = kubernetes_errors(typo)
    assert error.startswith("unknown kind") and "Servise" in error
    assert kubernetes_errors({**service, "apiVersion": "v2"})[0].startswith("unknown kind")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(typo))
    cli = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k",
                          "1.30.0", str(path)], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "WARN" in cli.stdout  # why the CLI alone is not enough


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = _steps(path)
        node: Any = document
        for step in parents:
            node = node[step]
        node[last] = value
    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = _steps(path)
        node: Any = document
        for step in parents:
            node = node[step]
        del node[last]
    return mutate


def _rename(path: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = _steps(path)
        node: Any = document
        for step in parents:
            node = node[step]
        node[new] = node.pop(last)
    return mutate


def _steps(path: str) -> list[str | int]:
    return [int(step) if step.isdigit() else step for step in path.split(".")]


CONTAINER = "spec.template.spec.containers.0"
JOB_CONTAINER = "spec.jobTemplate.spec.template.spec.containers.0"
BROKEN = {
    # file: [(what, mutation, the field the error names)]
    "base/deployment.yaml": [
        ("wrong type", _set(f"{CONTAINER}.ports.0.containerPort", "8080"), "containerPort"),
        ("missing required", _delete("spec.selector"), "selector"),
        ("misspelled", _rename(f"{CONTAINER}.readinessProbe", "readinesProbe"),
         "readinesProbe"),
        ("misspelled deep", _rename(f"{CONTAINER}.securityContext.readOnlyRootFilesystem",
                                    "readOnlyRootFileSystem"), "readOnlyRootFileSystem")],
    "base/service.yaml": [
        ("wrong type", _set("spec.ports.0.port", "eighty"), "port"),
        ("missing required", _delete("spec.ports.0.port"), "port"),
        ("misspelled", _rename("spec.selector", "selectr"), "selectr")],
    "base/hpa.yaml": [
        ("wrong type", _set("spec.maxReplicas", "five"), "maxReplicas"),
        ("missing required", _delete("spec.maxReplicas"), "maxReplicas"),
        ("misspelled", _rename("spec.metrics.0.resource.target.averageUtilization",
                               "averageUtilisation"), "averageUtilisation")],
    "base/pdb.yaml": [
        ("wrong type", _set("spec.maxUnavailable", {"pods": 1}), "maxUnavailable"),
        ("missing required", _set("spec.selector.matchExpressions", [{"operator": "In"}]),
         "key"),
        ("misspelled", _rename("spec.maxUnavailable", "maxUnavailible"), "maxUnavailible")],
    "base/cronjob.yaml": [
        ("wrong type", _set("spec.schedule", 5), "schedule"),
        ("missing required", _delete("spec.jobTemplate"), "jobTemplate"),
        ("misspelled", _rename(f"{JOB_CONTAINER}.envFrom", "envfrom"), "envfrom")],
    "base/serviceaccount.yaml": [
        ("wrong type", _set("automountServiceAccountToken", "no"), "automountServiceAccountToken"),
        ("misspelled", _rename("automountServiceAccountToken", "automountToken"),
         "automountToken")],
}
CASES = [(name, what, mutate, field) for name, cases in BROKEN.items()
         for what, mutate, field in cases]


@pytest.mark.parametrize(("name", "what", "mutate", "field"), CASES,
                         ids=[f"{n.split('/')[-1]}-{w}" for n, w, _, _ in CASES])
def test_kubernetes_validation_catches_each_kind_of_mistake(
        rendered: Path, name: str, what: str, mutate: Callable[[dict[str, Any]], None],
        field: str) -> None:
    document = copy.deepcopy(_load(rendered, name))
    mutate(document)
    errors = kubernetes_errors(document)
    assert errors, f"{what} in {name} passed validation"
    assert field in errors[0]


ISVC_CONTAINER = "spec.predictor.containers.0"
ISVC_BROKEN = [
    ("wrong type", _set("spec.predictor.minReplicas", "one"), "minReplicas"),
    ("wrong type deep", _set(f"{ISVC_CONTAINER}.ports.0.containerPort", "8080"),
     "containerPort"),
    ("missing required", _delete(f"{ISVC_CONTAINER}.name"), "'name' is a required property"),
    ("missing required spec", _delete("spec.predictor"), "'predictor' is a required property"),
    ("misspelled", _rename("spec.predictor.minReplicas", "minReplica"), "minReplica"),
    ("misspelled deep", _rename(f"{ISVC_CONTAINER}.readinessProbe", "readynessProbe"),
     "readynessProbe"),
    ("misspelled metadata", _rename("metadata.labels", "label"), "label"),
    ("wrong enum", _set("spec.predictor.scaleMetric", "gpu"), "gpu"),
]


@pytest.mark.parametrize(("what", "mutate", "expected"), ISVC_BROKEN,
                         ids=[case[0] for case in ISVC_BROKEN])
def test_inferenceservice_validation_catches_each_kind_of_mistake(
        rendered: Path, isvc_schema: InferenceServiceSchema, what: str,
        mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    document = copy.deepcopy(_load(rendered, "kserve/inferenceservice.yaml"))
    mutate(document)
    errors = isvc_schema.errors(document)
    assert errors, f"{what} passed validation"
    assert any(expected in error for error in errors), errors


def test_the_crd_schema_alone_would_let_a_misspelling_through(
        rendered: Path, isvc_schema: InferenceServiceSchema) -> None:
    """Structural schemas prune unknown fields instead of refusing them, so the CRD's schema
    as written accepts `minReplica`; the strict form refuses it."""
    document = copy.deepcopy(_load(rendered, "kserve/inferenceservice.yaml"))
    _rename("spec.predictor.minReplicas", "minReplica")(document)
    as_written = jsonschema.Draft7Validator(isvc_schema.as_written)
    assert list(as_written.iter_errors(document)) == []
    assert isvc_schema.errors(document) == [
        "spec.predictor: Additional properties are not allowed ('minReplica' was unexpected)"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kustomize) is not installed")
@pytest.mark.parametrize("directory", ["overlays/production", "kserve", "base"])
def test_kustomize_renders_each_entry_point_into_valid_objects(
        rendered: Path, isvc_schema: InferenceServiceSchema, directory: str) -> None:
    result = subprocess.run([str(KUBECTL), "kustomize", str(rendered / directory)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = sorted(doc["kind"] for doc in objects)
    for document in objects:
        if document["kind"] == "InferenceService":
            assert isvc_schema.errors(document) == []
        else:
            assert kubernetes_errors(document) == [], document["kind"]
        assert document["metadata"].get("namespace") == (None if directory == "base"
                                                         else "credit")
    if directory == "kserve":
        assert kinds == ["InferenceService", "ServiceAccount"]
        return
    assert kinds == ["CronJob", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                     "Service", "ServiceAccount"]
    deployment = next(doc for doc in objects if doc["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


# --- what the manifests say ----------------------------------------------------------------

def test_the_server_pod_is_hardened_probed_and_drained(rendered: Path) -> None:
    deployment = _load(rendered, "base/deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001,
                                      "runAsGroup": 10001, "fsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/lib/mlstrata": "state"}
    assert all("emptyDir" in v for v in pod["volumes"])
    probes = {kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
              for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes == {"startupProbe": ("/v2/health/ready", "http"),
                      "readinessProbe": ("/v2/health/ready", "http"),
                      "livenessProbe": ("/v2/health/live", "http")}
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < drain < pod["terminationGracePeriodSeconds"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080,
                                                                           "grpc": 8081}
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def _restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What breaks the Pod Security Standards' `restricted` profile (kubernetes.io/docs/
    concepts/security/pod-security-standards), checked the way the admission controller does."""
    found = []
    pod_security = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(flag)
    for volume in pod.get("volumes", []):
        if not set(volume) - {"name"} <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}")
    for container in pod["containers"] + pod.get("initContainers", []):
        security = container.get("securityContext", {})
        where = container["name"]
        if security.get("privileged") or security.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: privilege escalation")
        capabilities = security.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or set(capabilities.get("add", [])) - {
                "NET_BIND_SERVICE"}:
            found.append(f"{where}: capabilities")
        if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
            found.append(f"{where}: runAsNonRoot")
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            found.append(f"{where}: runAsUser 0")
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccomp")
        if any("hostPort" in port for port in container.get("ports", [])):
            found.append(f"{where}: hostPort")
    return found


def test_every_pod_meets_the_restricted_pod_security_standard(rendered: Path) -> None:
    pods = {
        "Deployment": _load(rendered, "base/deployment.yaml")["spec"]["template"]["spec"],
        "CronJob": _load(rendered, "base/cronjob.yaml")["spec"]["jobTemplate"]["spec"][
            "template"]["spec"],
        "InferenceService": _load(rendered, "kserve/inferenceservice.yaml")["spec"][
            "predictor"],
    }
    assert {kind: _restricted_violations(pod) for kind, pod in pods.items()} == {
        kind: [] for kind in pods}
    broken = copy.deepcopy(pods["CronJob"])
    del broken["initContainers"][0]["securityContext"]["capabilities"]
    broken["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    del broken["containers"][0]["securityContext"]["seccompProfile"]
    assert _restricted_violations(broken) == ["predict: seccomp", "package: capabilities"]


def test_the_api_key_comes_from_a_secret_never_written(rendered: Path) -> None:
    [container] = _load(rendered, "base/deployment.yaml")["spec"]["template"]["spec"][
        "containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLSTRATA_API_KEY"] == {"name": "MLSTRATA_API_KEY", "valueFrom": {
        "secretKeyRef": {"name": "credit-model-api-key", "key": "api-key"}}}
    assert {name: e.get("value") for name, e in env.items() if name != "MLSTRATA_API_KEY"} == {
        "MLSTRATA_MODEL": "/opt/mlstrata/model", "MLSTRATA_HOST": "0.0.0.0",
        "MLSTRATA_PORT": "8080", "MLSTRATA_GRPC_PORT": "8081", "MLSTRATA_WORKERS": "1",
        "MLSTRATA_THREADS": "1"}
    kinds = {doc["kind"] for path in rendered.rglob("*.yaml") for doc in _documents(path)}
    assert "Secret" not in kinds
    readme = (rendered / "README.md").read_text()
    assert ("kubectl -n credit create secret generic credit-model-api-key "
            "\\\n    --from-literal=api-key=") in readme
    assert "kubectl apply -k overlays/production" in readme
    assert "kubectl apply -k kserve" in readme


def test_labels_selectors_and_package_annotations(rendered: Path,
                                                  credit_package: Path) -> None:
    deployment = _load(rendered, "base/deployment.yaml")
    service = _load(rendered, "base/service.yaml")
    pdb = _load(rendered, "base/pdb.yaml")
    hpa = _load(rendered, "base/hpa.yaml")
    cronjob = _load(rendered, "base/cronjob.yaml")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    batch_labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
                     pdb["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
        assert not selector.items() <= batch_labels.items()  # batch pods get no traffic
    assert pod_labels["app.kubernetes.io/name"] == "credit-model"
    assert pod_labels["app.kubernetes.io/version"] == "1"
    assert {"app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
            "app.kubernetes.io/instance", "app.kubernetes.io/component"} <= set(pod_labels)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert pdb["spec"]["maxUnavailable"] == 1
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert {k: annotations[k] for k in ("prometheus.io/scrape", "prometheus.io/port",
                                        "prometheus.io/path")} == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics"}
    sha = hashlib.sha256((credit_package / "manifest.json").read_bytes()).hexdigest()
    manifest = json.loads((credit_package / "manifest.json").read_text())
    for document in (deployment, cronjob, _load(rendered, "kserve/inferenceservice.yaml")):
        assert document["metadata"]["annotations"]["mlstrata.io/package-sha256"] == sha
        assert document["metadata"]["annotations"]["mlstrata.io/model-version"] == str(
            manifest["model_version"])
    assert annotations["mlstrata.io/package-sha256"] == sha
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "http": (8080, "http"), "grpc": (8081, "grpc")}


def test_the_inferenceservice_follows_kserves_conventions(rendered: Path) -> None:
    isvc = _load(rendered, "kserve/inferenceservice.yaml")
    predictor = isvc["spec"]["predictor"]
    [container] = predictor["containers"]
    assert container["name"] == "kserve-container" and container["image"] == IMAGE
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["PROTOCOL"] == "v2"  # KServe reads a custom predictor's protocol from PROTOCOL
    assert env["MLSTRATA_GRPC_PORT"] == ""  # Knative allows one port: REST only
    assert env["MLSTRATA_API_KEY"] == {"secretKeyRef": {"name": "credit-model-api-key",
                                                        "key": "api-key"}}
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert "lifecycle" not in container and "startupProbe" not in container
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 5)
    assert predictor["scaleMetric"] == "cpu"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == \
        "true"


def test_the_same_package_and_options_give_the_same_bytes(rendered: Path,
                                                         credit_package: Path,
                                                         tmp_path: Path) -> None:
    """GitOps diffs show only what changed: no timestamps, no absolute paths."""
    again = tmp_path / "again"
    render_k8s(credit_package, FULL, again)
    files = sorted(p.relative_to(rendered) for p in rendered.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (rendered / name).read_bytes() == (again / name).read_bytes(), name
        assert str(rendered) not in (rendered / name).read_text()


# What Knative Serving accepts in a revision's pod with its default features (KServe's
# serverless mode turns the predictor into a Knative Service): knative/serving
# pkg/apis/serving/fieldmask.go and k8s_validation.go, commit 98e5ef9 (2026-08-21).
KNATIVE_POD = {"serviceAccountName", "containers", "volumes", "imagePullSecrets",
               "enableServiceLinks", "automountServiceAccountToken"}
KNATIVE_CONTAINER = {"name", "args", "command", "env", "workingDir", "envFrom", "image",
                     "imagePullPolicy", "livenessProbe", "ports", "readinessProbe", "resources",
                     "securityContext", "startupProbe", "terminationMessagePath",
                     "terminationMessagePolicy", "volumeMounts"}
KNATIVE_SECURITY = {"capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup",
                    "runAsNonRoot", "allowPrivilegeEscalation", "seccompProfile", "privileged"}
KSERVE_COMPONENT = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget",
                    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger",
                    "batcher", "labels", "annotations"}


def test_the_predictor_uses_only_what_knative_accepts(rendered: Path) -> None:
    predictor = _load(rendered, "kserve/inferenceservice.yaml")["spec"]["predictor"]
    assert set(predictor) - KSERVE_COMPONENT <= KNATIVE_POD
    assert predictor["automountServiceAccountToken"] is False  # Knative takes only false
    [container] = predictor["containers"]
    assert set(container) <= KNATIVE_CONTAINER
    assert set(container["securityContext"]) <= KNATIVE_SECURITY
    assert container["securityContext"].get("privileged", False) is False
    assert "add" not in container["securityContext"]["capabilities"]
    [port] = container["ports"]  # one port, named for content negotiation
    assert port["name"] in ("http1", "h2c")
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["containerPort"], None)
    assert {m["mountPath"] for m in container["volumeMounts"]}.isdisjoint(
        {"/", "/dev", "/dev/log"})  # reserved paths
    assert {e["name"] for e in container["env"]}.isdisjoint(
        {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})  # reserved variables
    assert all(set(volume) <= {"name", "emptyDir"} for volume in predictor["volumes"])


def _kserve_admission_errors(isvc: dict[str, Any]) -> list[str]:
    """KServe's validating webhook on what the manifest decides: the name, the blocked
    variables and the autoscaler of the deployment mode (validateInferenceServiceName,
    validateBlockedEnvVars, validateAutoScalingCompExtension in kserve/kserve
    pkg/apis/serving/v1beta1/inference_service_validation.go, commit aaac4e294)."""
    errors = []
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", isvc["metadata"]["name"]):
        errors.append("name")
    predictor = isvc["spec"]["predictor"]
    if any(e["name"] == "PYTHONPATH" for c in predictor["containers"] for e in c["env"]):
        errors.append("PYTHONPATH")
    mode = isvc["metadata"]["annotations"].get("serving.kserve.io/deploymentMode")
    mode = {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode or "", mode)
    if mode == "Standard":  # KServe's own HPA
        metric = predictor.get("scaleMetric", "cpu")
        if metric not in ("cpu", "memory"):
            errors.append(f"[{metric}] is not a supported metric")
        if metric == "cpu" and not 1 <= predictor.get("scaleTarget", 80) <= 100:
            errors.append("the target utilization percentage should be a [1-100] integer")
    elif mode == "Knative":  # Knative's pod autoscaler
        metric = predictor.get("scaleMetric", "concurrency")
        if metric not in ("concurrency", "rps"):
            errors.append(f"[{metric}] is not a supported metric")
        if "deploymentStrategy" in predictor:
            errors.append("deploymentStrategy")
    else:
        errors.append(f"deploymentMode {mode!r}: the cluster's default would decide")
    return errors


def test_both_kserve_modes_pass_kserves_admission(
        rendered: Path, credit_package: Path, tmp_path: Path,
        isvc_schema: InferenceServiceSchema) -> None:
    raw = _load(rendered, "kserve/inferenceservice.yaml")
    assert raw["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert (raw["spec"]["predictor"]["scaleMetric"], raw["spec"]["predictor"]["scaleTarget"]) \
        == ("cpu", 70)
    assert _kserve_admission_errors(raw) == []
    out = tmp_path / "serverless"
    render_k8s(credit_package, dataclasses.replace(FULL, kserve_mode="serverless",
                                                   kserve_concurrency=4), out)
    serverless = _load(out, "kserve/inferenceservice.yaml")
    predictor = serverless["spec"]["predictor"]
    assert serverless["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == \
        "Serverless"
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 4)
    assert _kserve_admission_errors(serverless) == []
    assert isvc_schema.errors(serverless) == []
    # the check tells the modes apart: CPU scaling is refused under Knative
    assert _kserve_admission_errors({**serverless, "spec": {"predictor": {
        **predictor, "scaleMetric": "cpu"}}}) == ["[cpu] is not a supported metric"]


def test_fixed_replicas_no_key_no_grpc(credit_package: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    render_k8s(credit_package, K8sOptions(image="credit:2", replicas=3, api_key=False,
                                          grpc=False, name="scorer", cpu_limit=None), out)
    assert not (out / "base" / "hpa.yaml").exists()
    assert not (out / "overlays" / "production" / "hpa-values.yaml").exists()
    deployment = _load(out, "base/deployment.yaml")
    assert deployment["spec"]["replicas"] == 3
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "MLSTRATA_API_KEY" not in env and env["MLSTRATA_GRPC_PORT"] == ""
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert "cpu" not in container["resources"]["limits"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert [p["name"] for p in _load(out, "base/service.yaml")["spec"]["ports"]] == ["http"]
    assert "create secret" not in (out / "README.md").read_text()
    for name in _kubernetes_files(out):
        for document in _documents(out / name):
            assert kubernetes_errors(document) == [], name
    if KUBECTL is not None:
        production = subprocess.run([KUBECTL, "kustomize", str(out / "overlays/production")],
                                    capture_output=True, text=True, timeout=60, check=True)
        objects = [doc for doc in yaml.safe_load_all(production.stdout) if doc]
        assert all(kubernetes_errors(document) == [] for document in objects)
        [deployment] = [doc for doc in objects if doc["kind"] == "Deployment"]
        assert deployment["spec"]["replicas"] == 3
    latest = tmp_path / "latest"
    render_k8s(credit_package, K8sOptions(image="credit"), latest)
    [container] = _load(latest, "base/deployment.yaml")["spec"]["template"]["spec"][
        "containers"]
    assert container["imagePullPolicy"] == "Always"  # ':latest' moves


# --- the CronJob really scores ---------------------------------------------------------------

def _map(argument: str, paths: dict[str, Path]) -> str:
    for prefix, local in paths.items():
        if argument.startswith(prefix):
            return str(local) + argument[len(prefix):]
    return argument


@pytest.mark.slow
def test_the_cronjob_commands_score_like_the_package(rendered: Path, credit_package: Path,
                                                     tmp_path: Path, cli: Any) -> None:
    """Run the init container's copy and the job's `mlstrata predict` as written, with the
    pod's paths mapped to local ones: the predictions equal the package's."""
    spec = _load(rendered, "base/cronjob.yaml")["spec"]["jobTemplate"]["spec"]["template"][
        "spec"]
    [init] = spec["initContainers"]
    [job] = spec["containers"]
    assert init["image"] == IMAGE and job["image"] == BATCH_IMAGE
    assert {m["mountPath"] for m in job["volumeMounts"]} == {"/tmp", "/var/lib/mlstrata",
                                                             "/data"}
    assert {m["mountPath"] for m in init["volumeMounts"]} >= {"/var/lib/mlstrata"}
    data = tmp_path / "data"
    data.mkdir()
    paths = {"/opt/mlstrata/model": credit_package, "/var/lib/mlstrata": tmp_path / "state",
             "/data": data}
    keys, records = valid_records(credit_package, 50)
    table = pa.table({KEY: keys, **{n: [r[n] for r in records] for n in records[0]}})
    pacsv.write_csv(table, data / "applications.csv")

    command = [_map(arg, paths) for arg in init["command"]]
    assert command[0] == "python"
    subprocess.run([sys.executable, *command[1:]], check=True, timeout=60)
    assert (tmp_path / "state" / "model" / "manifest.json").is_file()

    assert job["command"][0] == "mlstrata"
    result = cli(*[_map(arg, paths) for arg in job["command"][1:]], cwd=tmp_path)
    assert result.code == 0, result.err
    assert json.loads(result.out)["rows_scored"] == 50
    scored = pq.read_table(data / "scored.parquet")
    expected = load(credit_package).predict_records(records)
    assert scored.column(KEY).to_pylist() == keys
    assert scored.column("prediction").to_pylist() == expected.predictions
    assert expected.probabilities is not None
    assert np.array_equal(scored.column("probability_1").to_numpy(),
                          expected.probabilities[:, 1])


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--image", "Registry.example.com/Team/Credit:1"], "--image 'Registry.example.com/Team/"
     "Credit:1' is not a valid image reference: the repository name must be lowercase"),
    (["--image", "credit:1", "--name", "Credit_Model"], "--name 'Credit_Model' is not a "
     "Kubernetes name"),
    (["--image", "credit:1", "--replicas", "2", "--max-replicas", "4"], "--replicas fixes"),
    (["--image", "credit:1", "--min-replicas", "4", "--max-replicas", "2"], "--max-replicas 2"),
    (["--image", "credit:1", "--memory-limit", "512MB"], "--memory-limit '512MB' is not a "
     "Kubernetes quantity"),
    (["--image", "credit:1", "--cronjob", "0 2 * *", "--batch-image", "m:1", "--input",
      "postgresql://db/x", "--output", "postgresql://db/y"], "--cronjob '0 2 * *' is not a "
     "cron schedule"),
    (["--image", "credit:1", "--cronjob", "@daily"], "--cronjob needs --batch-image, --input, "
     "--output"),
    (["--image", "credit:1", "--cronjob", "@daily", "--batch-image", "m:1", "--input",
      "in.csv", "--output", "postgresql://db/y"], "--input in.csv is not reachable"),
    (["--image", "credit:1", "--cronjob", "@daily", "--batch-image", "m:1", "--input",
      "/data/in.csv", "--output", "postgresql://db/y"], "add --batch-claim"),
    (["--image", "credit:1", "--input", "/data/in.csv"], "--input belongs to the batch"),
    (["--image", "credit:1", "--log", "/logs"], "--log /logs is not writable"),
    (["--image", "credit:1", "--kserve", "--kserve-mode", "knative"], "--kserve-mode 'knative' "
     "is not one of raw, serverless"),
])
def test_bad_options_get_one_line_and_write_nothing(credit_package: Path, tmp_path: Path,
                                                    cli: Any, args: list[str],
                                                    message: str) -> None:
    out = tmp_path / "out"
    result = cli("deploy", "k8s", str(credit_package), "--out", str(out), *args)
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_model_is_refused(workspace: Any, tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "out"
    result = cli("deploy", "k8s", "nosuch@champion", "--image", IMAGE, "--out", str(out),
                 cwd=workspace.root)
    assert result.code != 0
    assert len(result.err.strip().splitlines()) == 1 and "nosuch" in result.err
    assert not out.exists()


def test_an_altered_package_is_refused(credit_package: Path, tmp_path: Path,
                                       cli: Any) -> None:
    package = tmp_path / "package"
    shutil.copytree(credit_package, package)
    onnx = package / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 1
    onnx.write_bytes(bytes(data))
    result = cli("deploy", "k8s", str(package), "--image", IMAGE, "--out", str(tmp_path / "o"))
    assert result.code != 0 and len(result.err.strip().splitlines()) == 1
    assert "model.onnx" in result.err
    assert not (tmp_path / "o").exists()


def test_a_workspace_reference_is_resolved(credit_package: Path, tmp_path: Path,
                                           cli: Any) -> None:
    result = cli("deploy", "k8s", "credit.model@1", "--image", IMAGE, "--out",
                 str(tmp_path / "out"), "--json", cwd=credit_package.parent.parent)
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"] == "credit.model@1"
    result = cli("deploy", "k8s", "credit@champion", "--image", IMAGE, "--out",
                 str(tmp_path / "other"), cwd=credit_package.parent.parent)
    assert result.code != 0 and "alias 'champion'" in result.err
    assert not (tmp_path / "other").exists()


def test_a_non_empty_out_needs_force(credit_package: Path, tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.yaml").write_text("keep: me\n")
    result = cli("deploy", "k8s", str(credit_package), "--image", IMAGE, "--out", str(out))
    assert result.code != 0 and len(result.err.strip().splitlines()) == 1
    assert "--force" in result.err
    assert [p.name for p in out.iterdir()] == ["mine.yaml"]
    result = cli("deploy", "k8s", str(credit_package), "--image", IMAGE, "--out", str(out),
                 "--force", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["name"] == "credit-model" and report["image"] == IMAGE
    assert not (out / "mine.yaml").exists()  # replaced whole, never merged
    assert sorted(report["files"]) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


# --- the pod's settings, run for real --------------------------------------------------------

def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()
    except OSError:
        return 0, b""


@pytest.mark.slow
def test_the_server_answers_the_probes_with_the_pods_environment(
        rendered: Path, credit_package: Path) -> None:
    """`mlstrata-serve` started with the Deployment's environment (the package path, ports and
    host mapped to this machine, the Secret's key filled in) answers every probe, the scrape
    path, refuses a request without the key, scores with it, and stops on SIGTERM well within
    the grace period."""
    pod = _load(rendered, "base/deployment.yaml")["spec"]["template"]
    [container] = pod["spec"]["containers"]
    http, grpc = free_port(), free_port()
    local = {"MLSTRATA_MODEL": str(credit_package), "MLSTRATA_HOST": "127.0.0.1",
             "MLSTRATA_PORT": str(http), "MLSTRATA_GRPC_PORT": str(grpc),
             "MLSTRATA_API_KEY": "test-key-from-the-secret"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env) == set(local) | {"MLSTRATA_WORKERS", "MLSTRATA_THREADS"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlstrata.serve"],
        env={**os.environ, **{k: v for k, v in env.items() if v is not None}, **local},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{http}"
        startup = container["startupProbe"]
        assert startup["httpGet"]["port"] == "http" and ports["http"] == 8080
        budget = time.monotonic() + startup["periodSeconds"] * startup["failureThreshold"]
        while _get(base + startup["httpGet"]["path"])[0] != 200:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < budget, "the startup probe's budget ran out"
            time.sleep(0.2)
        for kind in ("readinessProbe", "livenessProbe"):
            assert _get(base + container[kind]["httpGet"]["path"])[0] == 200, kind
        annotations = pod["metadata"]["annotations"]
        status, metrics = _get(base + annotations["prometheus.io/path"])
        assert status == 200 and b"mlstrata_model_info" in metrics
        with socket.create_connection(("127.0.0.1", grpc), timeout=5):
            pass  # gRPC listens on the port MLSTRATA_GRPC_PORT names
        keys, records = valid_records(credit_package, 5)
        body = json.dumps(records).encode()
        request = urllib.request.Request(base + "/v1/predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        request.add_header("Authorization", "Bearer test-key-from-the-secret")
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        expected = load(credit_package).predict_records(records)
        assert [p["prediction"] for p in answer["predictions"]] == expected.predictions
    finally:
        process.send_signal(signal.SIGTERM)
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        started = time.monotonic()
        code = process.wait(timeout=grace - drain)
        stopped = time.monotonic() - started
        if process.stderr is not None:
            process.stderr.close()
    assert code == 0 and stopped < 10
