"""``mlstrata trace REQUEST_ID``: a logged prediction and the lineage behind it, to raw bytes.

The prediction log (:mod:`mlstrata.predlog`) records, with every prediction, the id of the
package that answered it — the sha256 of the package's ``manifest.json``. :func:`trace` finds
the request's lines, then walks the lineage the way ``mlstrata show`` does, one step per
artifact: the **package** (found among the project's ``packages/`` by that sha256), the
**model** (the manifest's model id in the catalog), its **training dataset** version and every
dataset, recipe and split it came from, down to the **raw source**: the byte-exact backup ingest
kept, whose id is the sha256 of the original file.

A package rebuilt since (a different manifest, so a different id) is reported as not found, and
the walk continues from the logged model name and version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.tree import Tree

from ..errors import RefNotFoundError
from ..predlog.reading import find_request
from ..reports import Report, html_page, paragraph, table
from ..runtime.manifest import MANIFEST_FILE, load_manifest
from ..workspace import Artifact, Workspace

__all__ = ["Trace", "UnknownRequestError", "trace"]

_SHOWN_RECORDS = 20


class UnknownRequestError(RefNotFoundError):
    """No logged prediction has the request id."""

    exit_code = 1


@dataclass
class Trace(Report):
    """A request's logged predictions and feedback, and the lineage of each package."""

    request_id: str
    log: str
    records: int
    predictions: list[dict[str, Any]]
    feedback: list[dict[str, Any]]
    lineage: list[list[dict[str, Any]]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything found, JSON-ready (at most 20 prediction lines; ``records`` counts all)."""
        return {"request_id": self.request_id, "log": self.log, "records": self.records,
                "predictions": self.predictions, "feedback": self.feedback,
                "lineage": self.lineage}

    def render_terminal(self, console: Console) -> None:
        """The prediction(s), feedback and a lineage tree per package."""
        first = self.predictions[0]
        console.print(f"[bold]request {self.request_id}[/]: {self.records} record(s), "
                      f"{first['model']} v{first['version']}, {first['source']}, "
                      f"{first['time']}", highlight=False, soft_wrap=True)
        for line in self.predictions:
            probabilities = (f" {line['probabilities']}" if line.get("probabilities") else "")
            warnings = f" warnings: {line['warnings']}" if line.get("warnings") else ""
            console.print(f"  record {line['record']}: prediction {line['prediction']!r}"
                          f"{probabilities}{warnings} ({line['latency_ms']} ms)"
                          + (f" key {line['key']}" if line.get("key") else ""),
                          highlight=False, soft_wrap=True)
            console.print(f"    inputs: {line['inputs']}", highlight=False, soft_wrap=True)
        if self.records > len(self.predictions):
            console.print(f"  ... and {self.records - len(self.predictions)} more records",
                          highlight=False)
        for line in self.feedback:
            console.print(f"  feedback {line['time']}: label {line['label']!r}"
                          + (f" (record {line['record']})" if line.get("record") is not None
                             else ""), highlight=False, soft_wrap=True)
        for steps in self.lineage:
            tree = Tree("[bold]lineage[/]")
            for step in steps:
                tree.add(_describe(step))
            console.print(tree)

    def to_html(self) -> str:
        """The same, as a page."""
        sections = [("Predictions", [table([{k: v for k, v in line.items() if k != "format"}
                                            for line in self.predictions])])]
        if self.feedback:
            sections.append(("Feedback", [table(self.feedback)]))
        for steps in self.lineage:
            sections.append(("Lineage", [table(steps)]))
        sections.append(("Log", [paragraph(self.log)]))
        return html_page(f"Trace of request {self.request_id}", sections)


def trace(ws: Workspace, request_id: str, log: str) -> Trace:
    """The logged lines of ``request_id`` in the log ``log`` (a directory or a database URL)
    and the lineage of each package that answered them."""
    predictions, feedback = find_request(log, request_id)
    if not predictions:
        raise UnknownRequestError(f"no logged prediction has request id {request_id!r} (looked "
                                  f"in {_shown(log)}); copy the X-Request-Id of an answer, or "
                                  "the run id of a batch run")
    packages: dict[str, dict[str, Any]] = {}
    for line in predictions:
        packages.setdefault(str(line["package"]), line)
    lineage = [lineage_of(ws, package, str(line["model"]), int(line["version"]))
               for package, line in packages.items()]
    return Trace(request_id, _shown(log), len(predictions), predictions[:_SHOWN_RECORDS],
                 feedback, lineage)


def lineage_of(ws: Workspace, package_id: str, model: str, version: int) -> list[dict[str, Any]]:
    """Package → model → training dataset → ... → raw source, one step per artifact."""
    directory = find_package(ws, package_id)
    steps: list[dict[str, Any]] = [{"step": "package", "id": package_id,
                                    "path": str(directory) if directory else None}]
    artifact: Artifact | None = None
    if directory is not None:
        model_id = load_manifest(directory).model_id
        try:
            artifact = ws.get(model_id)
        except RefNotFoundError:
            steps.append({"step": "model", "id": model_id,
                          "note": "not in this workspace's catalog (packaged elsewhere)"})
            return steps
    else:
        steps[0]["note"] = ("not in packages/ any more (rebuilt or moved); following "
                            f"{model}@{version}")
        try:
            artifact = ws.resolve(f"{model}@{version}", ("model",))
        except RefNotFoundError:
            steps.append({"step": "model", "ref": f"{model}@{version}",
                          "note": "not in this workspace's catalog"})
            return steps
    steps.append(_step("model", artifact))
    dataset_id = artifact.meta.get("dataset")
    if dataset_id:
        steps += _ancestors(ws, ws.get(str(dataset_id)))
    return steps


def find_package(ws: Workspace, package_id: str) -> Path | None:
    """The package directory under ``packages/`` whose ``manifest.json`` has sha256
    ``package_id``."""
    for manifest in sorted((ws.root / "packages").glob(f"*/{MANIFEST_FILE}")):
        with manifest.open("rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() == package_id:
                return manifest.parent
    return None


def _ancestors(ws: Workspace, dataset: Artifact) -> list[dict[str, Any]]:
    """The training dataset and everything it came from, nearest first, raw sources last."""
    steps = [_step("training dataset", dataset)]
    seen = {dataset.id}
    frontier = [dataset]
    raws: list[dict[str, Any]] = []
    while frontier:
        current = frontier.pop(0)
        for role, parent in ws.parents(current.id):
            if parent.id in seen:
                continue
            seen.add(parent.id)
            if parent.kind == "raw":
                raws.append(_step("raw source", parent, role))
            else:
                steps.append(_step(parent.kind, parent, role))
                frontier.append(parent)
    return steps + raws


def _step(name: str, artifact: Artifact, role: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"step": name, "ref": artifact.ref, "kind": artifact.kind,
                            "id": artifact.id}
    if role is not None:
        step["role"] = role
    if artifact.kind == "raw":
        step["sha256"] = artifact.id
        step["source"] = artifact.meta.get("source")
    elif artifact.kind == "dataset" and "rows" in artifact.meta:
        step["rows"] = artifact.meta["rows"]
    elif artifact.kind == "model":
        step["candidate"] = artifact.meta.get("candidate")
    return step


def _describe(step: dict[str, Any]) -> str:
    text = f"{step['step']}: "
    if step["step"] == "package":
        text += f"{step['id'][:12]} {step.get('path') or ''}"
    elif step["step"] == "raw source":
        text += f"{step.get('source')} sha256 {step['sha256']}"
    else:
        text += f"{step.get('ref')} ({step.get('kind', '')}) {str(step.get('id', ''))[:12]}"
        if "rows" in step:
            text += f", {step['rows']:,} rows"
    if step.get("note"):
        text += f" — {step['note']}"
    return text


def _shown(log: str) -> str:
    scheme, found, rest = log.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}@{host}" if found and at else log
