"""The model registry: ``mlstrata models list | show | register | promote | rollback``.

MLflow is imported inside each command (through :mod:`mlstrata.package.registry`) so
``mlstrata --help`` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._common import JsonOption, WorkspaceOption, console, open_workspace

__all__ = ["register"]

models_app = typer.Typer(
    help="Registered models in the MLflow Model Registry: versions and aliases.",
    no_args_is_help=True,
)
TrackingOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow tracking/registry URI (default: model.tracking_uri, else the "
    "workspace's embedded SQLite store).")]
AliasOption = Annotated[str, typer.Option(
    "--alias", help="Alias to move (champion, challenger...).")]


def register(app: typer.Typer) -> None:
    """Add the ``models`` sub-app to ``app``."""
    models_app.command("list")(list_models)
    models_app.command("show")(show)
    models_app.command("register")(register_model)
    models_app.command("promote")(promote)
    models_app.command("rollback")(rollback)
    app.add_typer(models_app, name="models")


def list_models(
    tracking_uri: TrackingOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """List registered models with their latest version and aliases."""
    from ..package import registry

    found = registry.list_models(open_workspace(workspace), tracking_uri)
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in found], indent=2))
        return
    grid = Table("name", "versions", "latest", "aliases")
    for m in found:
        grid.add_row(m.name, str(len(m.versions)), str(m.latest),
                     ", ".join(f"{a}@{v}" for a, v in sorted(m.aliases.items())))
    console.print(grid if found else "no registered models; run 'mlstrata models register MODEL'")


def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@N or NAME@ALIAS.")],
    tracking_uri: TrackingOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Show a registered model (all versions) or one version with its tags and aliases."""
    from ..package import registry

    found = registry.show(open_workspace(workspace), ref, tracking_uri)
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2))
        return
    if isinstance(found, registry.RegisteredVersion):
        _print_versions([found])
        return
    console.print(f"[bold]{found.name}[/]: aliases "
                  + (", ".join(f"{a}@{v}" for a, v in sorted(found.aliases.items())) or "none"))
    _print_versions(found.versions)


def register_model(
    model: Annotated[str, typer.Argument(help="Workspace model: NAME, NAME@N or an id prefix.")],
    package: Annotated[Path | None, typer.Option(
        "--package", help="Register the package's MLflow model instead of the native pipeline.",
    )] = None,
    tracking_uri: TrackingOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Log MODEL to MLflow and register it as a new version (the same model twice: one version)."""
    from ..package import registry

    version = registry.register(open_workspace(workspace), model,
                                package.absolute() if package else None, tracking_uri)
    _print_one(version.to_dict(), as_json,
               f"registered {model} as {version.name}@{version.version}")


def promote(
    ref: Annotated[str, typer.Argument(help="NAME@N: the version to promote.")],
    alias: AliasOption = "champion",
    tracking_uri: TrackingOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Point ALIAS at NAME@N; refused unless its model passed evaluate and test."""
    from ..package import registry

    version = registry.promote(open_workspace(workspace), ref, alias, tracking_uri)
    _print_one(version.to_dict(), as_json, f"{alias} -> {version.name}@{version.version}")


def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: AliasOption = "champion",
    tracking_uri: TrackingOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Move ALIAS back to the version that held it before the current one."""
    from ..package import registry

    version = registry.rollback(open_workspace(workspace), name, alias, tracking_uri)
    _print_one(version.to_dict(), as_json,
               f"{alias} rolled back -> {version.name}@{version.version}")


def _print_one(body: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        console.print(line, highlight=False)


def _print_versions(versions: list[Any]) -> None:
    grid = Table("version", "aliases", "workspace model", "model id", "run")
    for v in versions:
        grid.add_row(str(v.version), ", ".join(v.aliases),
                     v.tags.get("mlstrata.model_ref", ""), (v.model_id or "")[:12],
                     (v.run_id or "")[:12])
    console.print(grid)
