"""``mlstrata serve MODEL``: answer predictions over REST (OIP v2, MLflow scoring, /v1/predict)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import MlstrataError
from ._options import WorkspaceOption
from ._predlog import LogOption, log_target, log_workspace

if TYPE_CHECKING:
    from ..serve.server import ModelSource

__all__ = ["model_source", "register", "workspace_locator"]


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve)


def serve(
    model: Annotated[str | None, typer.Argument(
        help="Package directory, NAME, NAME@N or NAME@ALIAS (e.g. credit@champion); leave "
             "it out with --precomputed to serve stored predictions only.",
        show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="REST port.")] = 8080,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Worker processes (each loads the model).")] = 1,
    api_key_env: Annotated[str | None, typer.Option(
        "--api-key-env", metavar="VAR",
        help="Require the API key held in environment variable VAR (Authorization: Bearer KEY "
             "or X-API-Key: KEY); health checks stay open.")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        "--max-body-bytes", min=1, help="Refuse larger request bodies with 413.")] = 1_000_000,
    reload_interval: Annotated[float, typer.Option(
        "--reload-interval", min=0,
        help="Seconds between checks for a new version when MODEL is NAME or NAME@ALIAS "
             "(0: never).")] = 5.0,
    log_requests: Annotated[bool, typer.Option(
        "--log-requests", help="Log every request (off by default: it costs throughput).")]
        = False,
    grpc_port: Annotated[int | None, typer.Option(
        "--grpc-port", help="Also serve the Open Inference Protocol v2 over gRPC on this "
                            "port.")] = None,
    precomputed: Annotated[str | None, typer.Option(
        "--precomputed", metavar="URL",
        help="Answer GET /v1/precomputed/{key} from this database (sqlite:///path.db or "
             "postgresql://...), filled by 'mlstrata precompute'.")] = None,
    precomputed_table: Annotated[str, typer.Option(
        "--precomputed-table", help="Table of the precomputed predictions.")] = "predictions",
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse (422) values that break the contract's warn rules too, as "
                         "errors; by default they are scored and returned as warnings.")]
        = False,
    online: Annotated[str | None, typer.Option(
        "--online", metavar="NAME",
        help="Serve the online model NAME of the workspace instead of a package: POST "
             "/v1/predict, POST /v1/learn (labels by request id, or features with their "
             "label), OIP v2 infer, /metrics, health; it learns while it serves.")] = None,
    shadow: Annotated[str | None, typer.Option(
        "--shadow", metavar="MODEL",
        help="Also score every request with MODEL (e.g. credit@challenger) off the request "
             "path and log its predictions beside the served ones (source 'shadow'); the "
             "answer always comes from the served MODEL.")] = None,
    log: LogOption = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
) -> None:
    """Serve MODEL until Ctrl-C or SIGTERM (requests in flight finish first).

    Routes: /v2/... (Open Inference Protocol, as KServe and Triton speak it), POST
    /invocations (MLflow scoring), POST /v1/predict (records in, predictions and probabilities
    out), GET /v1/precomputed/{key} (with --precomputed), /docs (Swagger UI) and /openapi.json;
    with --grpc-port, the same protocol's gRPC service (inference.GRPCInferenceService).
    Values that break a rule of severity warn are scored and answered with warnings, unless
    --strict. Every answered prediction is logged (a model from a workspace; --no-log to turn
    it off) and POST /v1/feedback takes labels for them; SIGTERM writes the log's queue first.
    """
    if online is not None:
        _serve_online(online, model, host, port, api_key_env, max_body_bytes, log_requests,
                      log, workspace)
        return
    from ..serve.server import ServeConfig
    from ..serve.server import serve as run_server

    if model is None and precomputed is None:
        raise MlstrataError("give a MODEL to serve (a package directory, NAME, NAME@N or "
                            "NAME@ALIAS), or --precomputed URL to serve stored predictions only")
    source = model_source(model, workspace) if model is not None else None
    ws = log_workspace(model, workspace) if model is not None and log is not False else None
    target = log_target(ws, log) if model is not None else None
    config = ServeConfig(source=source, host=host, port=port,
                         workers=workers, api_key_env=api_key_env,
                         max_body_bytes=max_body_bytes, reload_interval=reload_interval,
                         log_requests=log_requests, grpc_port=grpc_port,
                         precomputed=precomputed, precomputed_table=precomputed_table,
                         strict=strict, log=target,
                         log_store=str(ws.store) if target is not None and ws else None,
                         shadow=_shadow_source(shadow, target, workspace))
    config.api_key()
    run_server(config)


def _shadow_source(shadow: str | None, target: str | None,
                   workspace: Path | None) -> ModelSource | None:
    """Where the shadow's package is; it needs the prediction log, where it is compared."""
    if shadow is None:
        return None
    if target is None:
        raise MlstrataError(f"--shadow {shadow} logs the shadow's predictions beside the served "
                            "ones, so it needs the prediction log: drop --no-log (or serve a "
                            "model from a workspace, or pass --log DIR)")
    return model_source(shadow, workspace)


def _serve_online(name: str, model: str | None, host: str, port: int, api_key_env: str | None,
                  max_body_bytes: int, log_requests: bool, log: bool | None,
                  workspace: Path | None) -> None:
    """``serve --online NAME``: the live service of :mod:`mlstrata.online.service`."""
    from ..online.service import OnlineServeConfig, serve_online
    from ..serve.server import ServeConfig
    from ..workspace import Workspace

    if model is not None:
        raise MlstrataError(f"give either a MODEL ({model!r}) or --online {name}, not both")
    ws = Workspace.find(workspace)
    target = log_target(ws, log)
    key = ServeConfig(source=None, api_key_env=api_key_env).api_key()
    serve_online(OnlineServeConfig(
        name=name, workspace=ws.root, host=host, port=port, api_key=key,
        max_body_bytes=max_body_bytes, log_requests=log_requests, log=target,
        log_store=str(ws.store) if target is not None else None))


def model_source(ref: str, workspace: Path | None) -> ModelSource:
    """Where the server finds ``ref``'s package; a workspace is opened only for a name."""
    from ..runtime.manifest import is_package_dir
    from ..serve.server import ModelSource

    if is_package_dir(ref):
        return ModelSource.from_path(Path(ref))
    from ..package.locate import locate_package
    from ..workspace import Workspace

    ws = Workspace.find(workspace)
    locate_package(ref, ws)
    which = ref.partition("@")[2]
    return ModelSource(f"{__name__}:workspace_locator", (ref, str(ws.root)),
                       moves=not which.isdigit())


def workspace_locator(ref: str, root: str) -> Callable[[], Path]:
    """Locate ``ref``'s package in the workspace at ``root`` each time it is called."""
    from ..package.locate import locate_package
    from ..workspace import Workspace

    ws = Workspace.find(Path(root))
    return lambda: locate_package(ref, ws)
