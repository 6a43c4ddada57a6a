"""``mlstrata-serve`` (= ``python -m mlstrata.serve``): the server of a container, configured by
environment variables.

The lean serving distribution's entry point: the same server as ``mlstrata serve`` (REST on
``MLSTRATA_PORT``, gRPC beside it), for one package directory, with no workspace, registry or
Typer. Every setting is an environment variable; a flag of the same name overrides it:

=======================  =====================  ===============================================
variable                 flag                   meaning (default)
=======================  =====================  ===============================================
``MLSTRATA_MODEL``       ``--model``            package directory (``/opt/mlstrata/model``)
``MLSTRATA_HOST``        ``--host``             address to bind (``127.0.0.1``; images: 0.0.0.0)
``MLSTRATA_PORT``        ``--port``             REST port (8080)
``MLSTRATA_GRPC_PORT``   ``--grpc-port``        gRPC port (8081); empty: no gRPC
``MLSTRATA_WORKERS``     ``--workers``          REST worker processes (1)
``MLSTRATA_THREADS``     ``--threads``          onnxruntime threads per process (1)
``MLSTRATA_API_KEY``     ``--api-key-env VAR``  the key requests must send (``Authorization:
                                                Bearer KEY``); unset: open. The flag names
                                                another variable holding it
``MLSTRATA_LOG``         ``--log``              prediction log: a directory or a
                                                ``postgresql://`` URL (unset: off)
``MLSTRATA_STRICT``      ``--strict``           1: refuse values breaking warn rules too (0)
``MLSTRATA_MAX_BODY``    ``--max-body-bytes``   larger request bodies get 413 (1000000)
=======================  =====================  ===============================================

``--check`` loads the package as the server would and exits (a build step can prove the image
serves). The package's manifest is verified before the server listens (every file's sha256): a
missing or altered package, like any bad setting, ends the process with one line on stderr and
exit code 2.
SIGTERM (and SIGINT) stop it gracefully: no new connections, requests in flight answered (up to
30 s), the prediction log written, then exit code 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ..errors import MlstrataError

if TYPE_CHECKING:
    from .server import ServeConfig

__all__ = ["config_from", "main"]

DEFAULT_MODEL = "/opt/mlstrata/model"
_KEY_ENV = "MLSTRATA_API_KEY"


class SettingError(MlstrataError):
    """A setting (environment variable or flag) has a value the server cannot use."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlstrata-serve",
        description="Serve one mlstrata package over REST (OIP v2, /invocations, /v1/predict) "
                    "and gRPC. Every flag defaults to its MLSTRATA_* environment variable.")
    parser.add_argument("--model", help=f"package directory (MLSTRATA_MODEL; {DEFAULT_MODEL})")
    parser.add_argument("--host", help="address to bind (MLSTRATA_HOST; 127.0.0.1)")
    parser.add_argument("--port", help="REST port (MLSTRATA_PORT; 8080)")
    parser.add_argument("--grpc-port", help="gRPC port, empty for none (MLSTRATA_GRPC_PORT; 8081)")
    parser.add_argument("--workers", help="REST worker processes (MLSTRATA_WORKERS; 1)")
    parser.add_argument("--threads", help="onnxruntime threads (MLSTRATA_THREADS; 1)")
    parser.add_argument("--api-key-env", metavar="VAR",
                        help=f"variable holding the API key ({_KEY_ENV}, when set)")
    parser.add_argument("--log", help="prediction log directory or postgresql:// URL "
                                      "(MLSTRATA_LOG; off)")
    parser.add_argument("--strict", action="store_const", const="1",
                        help="refuse values breaking warn rules too (MLSTRATA_STRICT=1)")
    parser.add_argument("--max-body-bytes", help="request body limit (MLSTRATA_MAX_BODY; 1000000)")
    parser.add_argument("--check", action="store_true",
                        help="verify and load the package, print what it is, exit (no server)")
    return parser


def _setting(flag: str | None, env: str, default: str) -> tuple[str, str]:
    """The value (flag over variable over default) and where it came from, for messages."""
    if flag is not None:
        return flag, f"--{env.removeprefix('MLSTRATA_').lower().replace('_', '-')}"
    if env in os.environ:
        return os.environ[env], env
    return default, env


def _named(origin: str, value: str) -> str:
    """``--port '80a'`` or ``MLSTRATA_PORT='80a'``: the setting as the user wrote it."""
    return f"{origin} {value!r}" if origin.startswith("--") else f"{origin}={value!r}"


def _integer(flag: str | None, env: str, default: int, low: int) -> int:
    text, origin = _setting(flag, env, str(default))
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise SettingError(f"{_named(origin, text)}: must be a whole number >= {low}")
    return value


def config_from(args: argparse.Namespace) -> ServeConfig:
    """The server's config from parsed flags and the environment (see the module doc)."""
    from .server import ModelSource, ServeConfig

    model, origin = _setting(args.model, "MLSTRATA_MODEL", DEFAULT_MODEL)
    if not Path(model).is_dir():
        raise SettingError(f"{_named(origin, model)}: no such package directory; mount the package "
                           "there or point MLSTRATA_MODEL (--model) at it")
    grpc, _ = _setting(args.grpc_port, "MLSTRATA_GRPC_PORT", "8081")
    strict, strict_origin = _setting(args.strict, "MLSTRATA_STRICT", "0")
    if strict.strip().lower() not in ("", "0", "1", "false", "true"):
        raise SettingError(f"{_named(strict_origin, strict)}: must be 1 or 0")
    key_env = args.api_key_env or (_KEY_ENV if os.environ.get(_KEY_ENV) else None)
    log, log_origin = _setting(args.log, "MLSTRATA_LOG", "")
    if log.startswith(("postgresql://", "postgres://")) and find_spec("psycopg") is None:
        raise SettingError(f"{log_origin} is a PostgreSQL URL but psycopg is not installed "
                           f"here; install the postgres extra (pip install "
                           "'mlstrata-serving[server,postgres]'; mlstrata deploy docker "
                           "--postgres) or log to a directory")
    return ServeConfig(
        source=ModelSource.from_path(Path(model)),
        host=_setting(args.host, "MLSTRATA_HOST", "127.0.0.1")[0],
        port=_integer(args.port, "MLSTRATA_PORT", 8080, 0),
        grpc_port=_integer(grpc, "MLSTRATA_GRPC_PORT", 8081, 0) if grpc.strip() else None,
        workers=_integer(args.workers, "MLSTRATA_WORKERS", 1, 1),
        threads=_integer(args.threads, "MLSTRATA_THREADS", 1, 1),
        max_body_bytes=_integer(args.max_body_bytes, "MLSTRATA_MAX_BODY", 1_000_000, 1),
        api_key_env=key_env, strict=strict.strip().lower() in ("1", "true"),
        log=log or None)


def _stop(signum: int, frame: FrameType | None) -> None:
    """After uvicorn's graceful shutdown it re-raises the signal it caught: end with 0."""
    raise SystemExit(0)


def _require_server(config: ServeConfig) -> None:
    """The long-running server's libraries are an extra of the lean distribution."""
    needed = ["uvicorn", "uvloop", "httptools", *(["grpc"] if config.grpc_port is not None else [])]
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        raise SettingError(f"the server needs {', '.join(missing)}, not installed here; install "
                           "'mlstrata-serving[server]' (the base install is for serverless "
                           "functions)")


def _check(config: ServeConfig) -> int:
    """Load the package as the server would (manifest hashes, onnxruntime) and say what it is."""
    from .server import load_holder

    holder, _ = load_holder(config)
    if holder is not None:
        model = holder.current
        print(f"mlstrata-serve: {model.name} version {model.version} from {holder.path}: "
              "manifest verified, model loaded")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGTERM; 0 after a graceful stop, 2 on a bad setting or package."""
    args = _parser().parse_args(argv)
    try:
        config = config_from(args)
        if args.check:
            return _check(config)
        _require_server(config)
        from .server import serve

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        serve(config)
    except MlstrataError as exc:
        print(f"mlstrata-serve: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
