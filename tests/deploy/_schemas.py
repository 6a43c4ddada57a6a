"""Offline schema checks of rendered manifests: Kubernetes kinds and KServe's InferenceService.

:func:`kubernetes_errors` runs ``kubernetes-validate`` in strict mode (unexpected properties are
errors) pinned to one Kubernetes version, and counts a kind it has no schema for as a failure
(its CLI only warns about those and exits 0, so a typo in ``kind`` would pass).

:func:`inferenceservice_errors` checks against the ``openAPIV3Schema`` of KServe's CRD
(``schemas/kserve-inferenceservices-crd.yaml``, see the README there), made strict the way the
API server prunes: ``additionalProperties: false`` on every object that does not say
``x-kubernetes-preserve-unknown-fields`` or declare its own ``additionalProperties``, and
``metadata`` as Kubernetes' strict ``ObjectMeta`` (the CRD leaves it a bare object because the
API server checks it). The CRD is 2 MB of YAML: it is parsed once with the C loader and cached
as JSON under pytest's cache directory, keyed by the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
import yaml
from kubernetes_validate import utils as kv

KUBERNETES_VERSION = "1.30.0"
CRD = Path(__file__).parent / "schemas" / "kserve-inferenceservices-crd.yaml"
_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META = f"{_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def kubernetes_errors(document: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """Why ``document`` is not a valid object of its kind in ``version`` (empty when valid)."""
    try:
        kv.validate(document, version, strict=True)
    except kv.SchemaNotFoundError as exc:
        return [f"unknown kind: {exc.message}"]
    except kv.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


class InferenceServiceSchema:
    """KServe's ``InferenceService`` schema (strict), loaded once."""

    def __init__(self, cache_dir: Path) -> None:
        self.as_written = _crd_schema(cache_dir)
        self.schema = _strict(self.as_written)
        self.schema["properties"]["metadata"] = {"$ref": _OBJECT_META}
        definitions = kv.schema_contents(
            f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict/_definitions.json",
            KUBERNETES_VERSION)
        registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            _DEFINITIONS_ID, referencing.Resource.from_contents(definitions))
        self.validator = jsonschema.Draft7Validator(self.schema, registry=registry)

    def errors(self, document: dict[str, Any]) -> list[str]:
        """Every reason ``document`` is not a valid InferenceService (empty when valid)."""
        return sorted(f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
                      for error in self.validator.iter_errors(document))


def _crd_schema(cache_dir: Path) -> dict[str, Any]:
    raw = CRD.read_bytes()
    cached = cache_dir / f"inferenceservice-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    if cached.is_file():
        schema: dict[str, Any] = json.loads(cached.read_text())
        return schema
    crd = yaml.load(raw, Loader=yaml.CSafeLoader)
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = version["schema"]["openAPIV3Schema"]
    cached.write_text(json.dumps(schema))
    return schema


def _strict(node: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever Kubernetes would prune."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {key: (_strict(value) if key not in ("enum", "default", "example") else value)
              for key, value in node.items()}
    if "properties" in node:  # property names are data here, not schema keywords
        strict["properties"] = {name: _strict(value) for name, value in
                                node["properties"].items()}
    is_object = node.get("type") == "object" or "properties" in node
    if (is_object and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        strict["additionalProperties"] = False
    return strict
