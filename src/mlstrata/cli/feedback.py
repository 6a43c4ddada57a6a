"""``mlstrata feedback FILE``: attach ground-truth labels to logged predictions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import MlstrataError
from ._common import JsonOption, WorkspaceOption, emit, open_workspace

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``feedback`` to ``app``."""
    app.command("feedback")(feedback_command)


def feedback_command(
    source: Annotated[str, typer.Argument(
        help="CSV, Parquet, JSON Lines, SQLite/DuckDB file or postgresql:// URL with the "
             "labels.", show_default=False)],
    label: Annotated[str, typer.Option("--label", help="Column holding the true label.",
                                       show_default=False)],
    key: Annotated[str | None, typer.Option(
        "--key", help="Column holding the business key the predictions were logged with.")]
        = None,
    request_id: Annotated[str | None, typer.Option(
        "--request-id", help="Column holding request ids instead of keys.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="The model whose predictions get the labels (needed when the log "
                        "holds several).")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Attach the labels in SOURCE to logged predictions, by --key or --request-id.

    Labels are checked against the model's classes first (a bad one stops the run, naming
    the row; nothing is written). Prints how many matched a logged prediction (written),
    how many did not (unmatched) and how many rows were skipped (empty key or label).
    """
    from ..batch.feedback import ingest_feedback
    from ..predlog import open_log, read_salt
    from ._predlog import workspace_log

    ws = open_workspace(workspace)
    target = workspace_log(ws)
    name = _model(target, model)
    classes, task = _labels_of(ws, name)
    with open_log(target, salt=read_salt(ws.store)) as log:
        report = ingest_feedback(source, log, name, label=label, key=key,
                                 request_id=request_id, classes=classes, task=task,
                                 log_name=target)
    emit(report, as_json)


def _model(target: str, wanted: str | None) -> str:
    from ..predlog.reading import logged_models

    models = logged_models(target)
    if wanted is not None:
        if wanted not in models:
            raise MlstrataError(f"the prediction log {target} holds no predictions of "
                                f"{wanted!r} (it has: {', '.join(models) or 'none'}); check "
                                "--model")
        return wanted
    if len(models) != 1:
        raise MlstrataError(f"the prediction log {target} holds "
                            + (f"several models ({', '.join(models)}); pass --model NAME"
                               if models else "no predictions yet; serve or batch-score the "
                               "model first"))
    return models[0]


def _labels_of(ws: Workspace, model: str) -> tuple[list[Any] | None, str]:
    """The classes and task of ``model``'s newest package in ``packages/``."""
    from ..runtime.manifest import MANIFEST_FILE, load_manifest
    from ..runtime.signature import SIGNATURE_FILE, Signature

    found: list[tuple[int, Path]] = []
    for manifest in (ws.root / "packages").glob(f"*/{MANIFEST_FILE}"):
        try:
            loaded = load_manifest(manifest.parent)
        except MlstrataError:
            continue
        if loaded.model_name == model:
            found.append((loaded.model_version, manifest.parent))
    if not found:
        raise MlstrataError(f"no package of {model!r} in {ws.root / 'packages'} to check the "
                            "labels against; package the model first (mlstrata package)")
    signature = Signature.from_file(max(found)[1] / SIGNATURE_FILE)
    return signature.classes, signature.task
