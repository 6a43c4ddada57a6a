"""Workspace commands: ``init``, ``ls`` and ``show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from ..workspace import Artifact, Workspace
from ._common import JsonOption, WorkspaceOption, console, open_workspace

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the workspace commands to ``app``."""
    app.command("init")(init)
    app.command("ls")(list_artifacts)
    app.command("show")(show)


def init(
    directory: Annotated[Path, typer.Argument(help="Project directory to create.")] = Path("."),
    project: Annotated[
        str | None, typer.Option(help="Project name (default: folder name).")
    ] = None,
) -> None:
    """Create mlstrata.yaml and the .mlstrata/ workspace in DIRECTORY."""
    ws = Workspace.init(directory, project)
    console.print(f"workspace ready: {ws.store}  (config: {ws.root / 'mlstrata.yaml'})")


def list_artifacts(
    kind: Annotated[
        str | None,
        typer.Argument(help="Only this kind: raw, dataset, testset, recipe, split."),
    ] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """List artifacts in the workspace, oldest first."""
    artifacts = open_workspace(workspace).artifacts(kind)
    if as_json:
        typer.echo(json.dumps([a.to_dict() for a in artifacts], indent=2))
        return
    table = Table("ref", "kind", "id", "size", "access", "created", "description")
    for a in artifacts:
        table.add_row(a.ref, a.kind, a.id[:12], f"{a.size:,}", a.access, a.created_at[:16],
                      a.description)
    for column in table.columns[:6]:
        column.no_wrap = True
    table.columns[-1].max_width = 36
    table.columns[-1].no_wrap = True
    console.print(table)


def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N or an id prefix.")],
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Show one artifact: catalog entry, lineage (inputs and outputs) and recorded reads."""
    ws = open_workspace(workspace)
    artifact = ws.resolve(ref)
    detail = _detail(ws, artifact)
    if as_json:
        typer.echo(json.dumps(detail, indent=2, default=str))
        return
    tree = Tree(f"[bold]{artifact.ref}[/] ({artifact.kind}) {artifact.id}")
    for key in ("created_at", "owner", "access", "size", "command", "description"):
        tree.add(f"{key}: {detail[key]}")
    meta = tree.add("meta")
    for key, value in artifact.meta.items():
        meta.add(f"{key}: {json.dumps(value, default=str)[:200]}")
    for label in ("inputs", "outputs"):
        branch = tree.add(label)
        for edge in detail[label]:
            branch.add(f"{edge['role']}: {edge['ref']} ({edge['kind']}) {edge['id'][:12]}")
    reads = tree.add("reads")
    for record in detail["reads"]:
        reads.add(f"{record['at']} {record['who']} purpose={record['purpose']}")
    console.print(tree)


def _detail(ws: Workspace, artifact: Artifact) -> dict[str, Any]:
    def edge(role: str, other: Artifact) -> dict[str, str]:
        return {"role": role, "ref": other.ref, "kind": other.kind, "id": other.id}

    return {
        **artifact.to_dict(),
        "inputs": [edge(role, parent) for role, parent in ws.parents(artifact.id)],
        "outputs": [edge(role, child) for role, child in ws.children(artifact.id)],
        "reads": [vars(record) for record in ws.access_log(artifact.id)],
    }
