"""What the prediction log needs from the training data, written into ``signature.json``.

A served model logs every request's inputs (:mod:`mlstrata.predlog`); those inputs must be as
private as the training data, so the package carries the PII action ingest applied to each
input's column (``"pii": {"action": "hash" | "mask" | "drop", "kinds": [...]}`` on the input)
and the business key ingest recorded (``"key"``, with ``"key_pii"`` when the key itself was
hashed or masked): the log records a request's key when a record carries that field.

Both are read from the catalog: the model's training dataset and the datasets it was derived
from (a cleaned version keeps its columns' origin), nearest first.
"""

from __future__ import annotations

from typing import Any

from ..workspace import Artifact, Workspace

__all__ = ["add_log_policy"]

_PROTECTED = ("hash", "mask", "drop")


def add_log_policy(signature: dict[str, Any], ws: Workspace, artifact: Artifact) -> None:
    """Mark ``signature``'s inputs (in place) with the PII actions of ``artifact``'s training
    data, and name its business key."""
    actions, kinds, key = _ingest_facts(ws, artifact)
    for entry in signature["inputs"]:
        rule = _rule(entry["name"], actions, kinds)
        if rule is not None:
            entry["pii"] = rule
    if key is not None:
        signature["key"] = key
        rule = _rule(key, actions, kinds)
        if rule is not None:
            signature["key_pii"] = rule


def _rule(column: str, actions: dict[str, str],
          kinds: dict[str, list[str]]) -> dict[str, Any] | None:
    action = actions.get(column)
    if action not in _PROTECTED:
        return None
    return {"action": action, "kinds": kinds.get(column, [])}


def _ingest_facts(ws: Workspace, artifact: Artifact
                  ) -> tuple[dict[str, str], dict[str, list[str]], str | None]:
    """Column → PII action, column → PII kinds, and the key, from the training datasets."""
    actions: dict[str, str] = {}
    kinds: dict[str, list[str]] = {}
    key: str | None = None
    dataset_id = artifact.meta.get("dataset")
    frontier = [ws.get(str(dataset_id))] if dataset_id else []
    seen: set[str] = set()
    while frontier:
        dataset = frontier.pop(0)
        if dataset.id in seen:
            continue
        seen.add(dataset.id)
        meta = dataset.meta
        for column, action in (meta.get("pii_policy") or {}).items():
            actions.setdefault(str(column), str(action))
        for finding in meta.get("pii") or []:
            kinds.setdefault(str(finding.get("column")), list(finding.get("kinds") or []))
        if key is None and isinstance(meta.get("key"), str):
            key = meta["key"]
        frontier += [parent for _, parent in ws.parents(dataset.id) if parent.kind == "dataset"]
    return actions, kinds, key
