"""Run the REST server: uvicorn (uvloop + httptools), workers, reload, graceful shutdown.

:func:`serve` blocks until SIGTERM or SIGINT, then stops accepting connections and lets the
requests in flight finish (up to 30 s) before it exits. With ``workers > 1`` uvicorn starts
that many processes; each rebuilds the app from the :class:`ServeConfig` it finds, as JSON, in
the ``MLSTRATA_SERVE_CONFIG`` environment variable (uvicorn's workers take an import string and
a factory, not an object). The API key itself never goes into that variable: each process reads
it from the variable ``api_key_env`` names.

When the model source can move (a registry alias, a model's latest version) a background thread
asks the :class:`~mlstrata.serve.holder.ModelHolder` every ``reload_interval`` seconds to swap in
the package the source names now: requests keep flowing during the load, and a new package that
fails to load is logged while the old model keeps serving. It is a thread, not an asyncio task,
because loading (hashing every file, opening onnxruntime) is blocking work that must not stall
the event loop.

With ``log`` set (a directory or a ``postgresql://`` URL) every process writes the predictions
it answers to a :class:`~mlstrata.predlog.PredictionLog` of its own. On SIGTERM the log is
closed after the last request in flight was answered — at uvicorn's lifespan shutdown (after
the gRPC service stopped, when this process serves it too: uvicorn re-raises the signal once it
returns, so nothing after it would run), or after the workers exited in the main process of
``--workers N`` — so every answered prediction is written before the process exits. Hashed
inputs are salted with ``MLSTRATA_PII_SALT`` or the ``secret.salt`` of the ``log_store``
directory (the workspace's ``.mlstrata``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MlstrataError
from ..predlog import PredictionLog
from ..runtime.manifest import verify_package
from .app import ASGIApp, create_app
from .holder import ModelHolder
from .metrics import MULTIPROC_ENV, ServeMetrics, multiprocess_directory

if TYPE_CHECKING:
    from .grpc_server import GrpcServer

__all__ = ["CONFIG_ENV", "ModelSource", "Reloader", "ServeConfig", "build_app",
           "configure_logging", "fixed_path", "load_holder", "open_prediction_log", "serve",
           "worker_app"]

CONFIG_ENV = "MLSTRATA_SERVE_CONFIG"
LOG_HAND_OVER = 50e-6
"""Seconds the prediction log's writer sleeps every few records, so that requests run first."""
_log = logging.getLogger("mlstrata.serve")


def fixed_path(path: str) -> Callable[[], Path]:
    """A locator for a package directory that never moves."""
    directory = Path(path).resolve()
    return lambda: directory


@dataclass(frozen=True)
class ModelSource:
    """How a server process finds the package to serve, importable in any worker process.

    ``locator`` is ``"module:function"``; ``function(*args)`` returns the callable the
    :class:`ModelHolder` asks for the package directory. ``moves`` says whether that answer can
    change (then the server reloads).
    """

    locator: str
    args: tuple[str, ...] = ()
    moves: bool = False

    @classmethod
    def from_path(cls, path: Path) -> ModelSource:
        """A fixed package directory."""
        return cls(f"{__name__}:fixed_path", (str(Path(path).resolve()),))

    def locate_function(self) -> Callable[[], Path]:
        """Import the locator and build the callable."""
        module, _, name = self.locator.partition(":")
        factory: Callable[..., Callable[[], Path]] = getattr(importlib.import_module(module),
                                                             name)
        return factory(*self.args)


@dataclass(frozen=True)
class ServeConfig:
    """Everything a server process needs, JSON-serialisable for worker processes."""

    source: ModelSource | None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    api_key_env: str | None = None
    max_body_bytes: int = 1_000_000
    reload_interval: float = 5.0
    log_requests: bool = False
    threads: int = 1
    grpc_port: int | None = None
    precomputed: str | None = None
    precomputed_table: str = "predictions"
    strict: bool = False
    log: str | None = None
    log_store: str | None = None
    shadow: ModelSource | None = None

    def to_json(self) -> str:
        """The config as JSON (for ``MLSTRATA_SERVE_CONFIG``)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """The config :meth:`to_json` wrote."""
        data = json.loads(text)
        source, shadow = data.pop("source"), data.pop("shadow", None)
        return cls(source=_model_source(source), shadow=_model_source(shadow), **data)

    def api_key(self) -> str | None:
        """The API key from the environment variable ``api_key_env`` names (None without)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise MlstrataError(f"--api-key-env {self.api_key_env}: the environment variable "
                                f"{self.api_key_env} is not set (or empty); export the key in "
                                "it first")
        return key


class Reloader:
    """A daemon thread calling ``holder.refresh()`` every ``interval`` seconds until stopped."""

    def __init__(self, holder: ModelHolder, interval: float) -> None:
        self._holder = holder
        self._interval = interval
        self._stop = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="mlstrata-reload", daemon=True)

    def start(self) -> Reloader:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (waits for a load in progress to end)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh_once()

    def refresh_once(self) -> None:
        """One refresh; a failure is logged (once per distinct error) and the old model stays."""
        try:
            if self._holder.refresh():
                model = self._holder.current
                _log.info("now serving %s version %s from %s", model.name, model.version,
                          self._holder.path)
            self._failure = None
        except Exception as exc:  # noqa: BLE001 — a bad new package must never stop serving
            message = f"{type(exc).__name__}: {exc}"
            if message != self._failure:
                current = self._holder.current
                _log.warning("could not load the new package, still serving %s version %s: %s",
                             current.name, current.version, message)
            self._failure = message


def load_holder(config: ServeConfig) -> tuple[ModelHolder | None, Reloader | None]:
    """The served model and its reloader (started; None when the source cannot move); no
    model at all when the server only answers precomputed lookups."""
    if config.source is None:
        return None, None
    holder = ModelHolder(config.source.locate_function(), threads=config.threads,
                         strict=config.strict)
    reloader = None
    if config.source.moves and config.reload_interval > 0:
        reloader = Reloader(holder, config.reload_interval).start()
    return holder, reloader


def build_app(config: ServeConfig, holder: ModelHolder | None,
              metrics: ServeMetrics | None = None, prediction_log: PredictionLog | None = None,
              on_shutdown: Sequence[Callable[[], None]] = ()) -> ASGIApp:
    """The REST app for ``config`` answering with ``holder``'s model (if any), counting in
    ``metrics`` (new ones when not given) and answering them on ``GET /metrics``."""
    precomputed = None
    if config.precomputed is not None:
        from .precomputed import open_precomputed

        precomputed = open_precomputed(config.precomputed, config.precomputed_table)
    if holder is not None:
        _log.info("serving %s version %s from %s", holder.current.name,
                  holder.current.version, holder.path)
    return create_app(holder, api_key=config.api_key(), max_body_bytes=config.max_body_bytes,
                      precomputed=precomputed,
                      metrics=metrics if metrics is not None else ServeMetrics(),
                      prediction_log=prediction_log, on_shutdown=on_shutdown)


def worker_app() -> ASGIApp:
    """The app of one worker process, from ``MLSTRATA_SERVE_CONFIG`` (uvicorn's factory)."""
    config = ServeConfig.from_json(os.environ[CONFIG_ENV])
    holder, _ = load_holder(config)
    log = open_prediction_log(config) if holder is not None else None
    return build_app(config, holder, prediction_log=log,
                     on_shutdown=(log.close,) if log is not None else ())


def open_prediction_log(config: ServeConfig) -> PredictionLog | None:
    """This process's prediction log when ``config`` asks for one (see the module doc)."""
    if config.log is None:
        return None
    from ..predlog import open_log, read_salt

    salt = read_salt(Path(config.log_store) if config.log_store else None)
    if config.shadow is not None:
        return _shadow_log(config, config.log, config.shadow, salt)
    log = open_log(config.log, salt=salt, hand_over=LOG_HAND_OVER)
    _log.info("logging predictions to %s", _shown(config.log))
    return log


def _model_source(data: dict[str, Any] | None) -> ModelSource | None:
    return None if data is None else ModelSource(data["locator"], tuple(data["args"]),
                                                 data["moves"])


def _shadow_log(config: ServeConfig, target: str, shadow: ModelSource,
                salt: str | None) -> PredictionLog:
    """The log of a server with a shadow challenger (see :mod:`.shadow`)."""
    from ..predlog.writer import open_sink
    from .shadow import ShadowLog, ShadowScorer

    holder = ModelHolder(shadow.locate_function(), threads=config.threads)
    interval = config.reload_interval if shadow.moves else 0.0
    log = ShadowLog(open_sink(target), ShadowScorer(holder, reload_interval=interval),
                    salt=salt, hand_over=LOG_HAND_OVER)
    _log.info("logging predictions to %s; shadow %s version %s scores every request off the "
              "request path", _shown(target), holder.current.name, holder.current.version)
    return log


def serve(config: ServeConfig) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests finish first (see the module docstring).

    With several processes their metrics meet in a fresh directory made for this run (and
    removed after it), named in ``PROMETHEUS_MULTIPROC_DIR`` before any process counts.
    """
    shared = config.workers > 1 or MULTIPROC_ENV in os.environ
    with multiprocess_directory() if shared else contextlib.nullcontext():
        _serve(config)


def _serve(config: ServeConfig) -> None:
    import uvicorn

    configure_logging()
    options: dict[str, Any] = dict(
        host=config.host, port=config.port, loop="uvloop", http="httptools", lifespan="on",
        access_log=config.log_requests, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=30, log_level="info")
    config.api_key()  # fail here, once, rather than in every worker
    # REST workers load their own model; this process needs one for 1 worker or for gRPC.
    needs_model = config.workers == 1 or config.grpc_port is not None
    if not needs_model and config.source is not None:  # refuse a bad package before forking
        verify_package(config.source.locate_function()())
    holder, reloader = load_holder(config) if needs_model else (None, None)
    metrics = ServeMetrics() if needs_model else None  # REST workers count in their own
    # REST workers log in their own; this one for the single REST process and for gRPC.
    log = open_prediction_log(config) if holder is not None else None
    try:
        grpc = _start_grpc(config, holder, metrics, log)
        try:
            if config.workers > 1:
                os.environ[CONFIG_ENV] = config.to_json()
                uvicorn.run(f"{__name__}:worker_app", factory=True, workers=config.workers,
                            **options)
            else:  # uvicorn re-raises SIGTERM when it returns: close in the lifespan shutdown
                app = build_app(config, holder, metrics, log, _shutdown_steps(grpc, log))
                uvicorn.Server(uvicorn.Config(app, **options)).run()
        finally:
            if grpc is not None:
                grpc.stop(grace=30)
            if reloader is not None:
                reloader.stop()
    finally:
        if log is not None:
            log.close()


def _shutdown_steps(grpc: GrpcServer | None,
                    log: PredictionLog | None) -> tuple[Callable[[], None], ...]:
    """What the single REST process does at its lifespan shutdown, after the last REST answer:
    let gRPC calls in flight finish, then write the log's queue (both are idempotent, so the
    ``finally`` of :func:`_serve` may repeat them when no signal ended the server)."""
    steps: list[Callable[[], None]] = []
    if grpc is not None:
        steps.append(functools.partial(grpc.stop, grace=30))
    if log is not None:
        steps.append(log.close)
    return tuple(steps)


def _start_grpc(config: ServeConfig, holder: ModelHolder | None, metrics: ServeMetrics | None,
                log: PredictionLog | None) -> GrpcServer | None:
    """The gRPC service beside the REST one (in this process), when a port is configured."""
    if config.grpc_port is None:
        return None
    if holder is None:
        raise MlstrataError("--grpc-port needs a MODEL to serve; precomputed lookups are "
                            "REST only (GET /v1/precomputed/{key})")
    from .grpc_server import start_grpc_server

    server = start_grpc_server(holder, host=config.host, port=config.grpc_port,
                               api_key=config.api_key(), metrics=metrics, prediction_log=log)
    _log.info("gRPC (Open Inference Protocol v2) on %s:%s", config.host, server.port)
    return server


def _shown(target: str) -> str:
    """A log target for the server log: a database URL without its password."""
    scheme, found, rest = target.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}@{host}" if found and at else target


def configure_logging() -> None:
    """Send the ``mlstrata.serve`` log to stderr at INFO, as uvicorn's own lines (once)."""
    if not _log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
