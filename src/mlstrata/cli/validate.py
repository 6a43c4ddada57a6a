"""Contract commands: ``contract infer`` writes a contract, ``validate`` checks data against it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from ..data.contract_infer import infer_contract_for
from ..data.validate import validate_target
from ..reports import save_report
from ._common import (
    JsonOption,
    WorkspaceOption,
    console,
    err_console,
    open_workspace,
    progress_bar,
    stage_progress,
)

__all__ = ["register"]

contract_app = typer.Typer(
    help="Data contracts: types, ranges, categories, patterns and custom checks as YAML.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``contract infer`` and ``validate`` to ``app``."""
    contract_app.command("infer")(infer)
    app.add_typer(contract_app, name="contract")
    app.command("validate")(validate)


def infer(
    ref: Annotated[str, typer.Argument(help="Dataset: NAME, NAME@N or an id prefix.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Where to write the YAML (default: contracts/NAME.yaml).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite an existing contract file (it may hold your edits).")] = False,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Infer an editable YAML contract from dataset REF (types, nulls, ranges, categories...)."""
    ws = open_workspace(workspace)
    with progress_bar(quiet=as_json) as progress:
        progress.add_task(f"inferring a contract for {ref}", total=None)
        contract, path = infer_contract_for(ws, ref, out.absolute() if out else None, force)
    if as_json:
        typer.echo(json.dumps({"path": str(path), "contract": contract.model_dump(mode="json")},
                              indent=2))
        return
    rules = len(contract.column_rules())
    console.print(f"contract for {contract.source}: {len(contract.columns)} columns, {rules} "
                  f"rules -> {path}")
    console.print("edit it, then run: mlstrata validate " + ref)


def validate(
    target: Annotated[str, typer.Argument(help="Dataset ref (NAME, NAME@N) or a data file.")],
    contract: Annotated[Path | None, typer.Option(
        "--contract", "-c", help="Contract YAML (default for a dataset: contracts/NAME.yaml).",
    )] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the JSON and HTML reports (default: the project's reports/).",
    )] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="List every rule in the terminal, the passing ones too.",
    )] = False,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Check a dataset or a new batch against its contract; exit 1 when an error rule fails.

    Rules with severity warn that fail are listed as warnings and do not change the exit code.

    Prints the failing rules with failing counts and sample rows, and one line counting the
    passing ones (--verbose lists them); writes every rule to <name>-v<N>-validate.json and
    .html (<file stem>-validate.* for a file).
    """
    ws = open_workspace(workspace)
    with stage_progress("validating", quiet=as_json) as report_stage:
        report = validate_target(ws, target, contract.absolute() if contract else None,
                                 report_stage)
    paths = save_report(report, out or ws.reports_dir, _report_stem(report.target))
    if as_json:
        typer.echo(report.to_json())
    else:
        report.render_terminal(console, verbose=verbose)
    (err_console if as_json else console).print(f"report: {paths['html']}", highlight=False,
                                                soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


def _report_stem(target: str) -> str:
    """``NAME-vN-validate`` for a dataset ref, ``STEM-validate`` for a file, file-name safe."""
    name = Path(target).stem if Path(target).is_file() else target.replace("@", "-v")
    return re.sub(r"[^\w.-]+", "_", name) + "-validate"
