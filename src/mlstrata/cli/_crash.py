"""What the CLI does when a command fails with an exception that is not an ``MlstrataError``.

Whatever input caused it, such an exception is a bug in mlstrata — a user mistake is always an
``MlstrataError`` with a message that says how to fix it — and a user must not meet a Python
traceback. :func:`report_crash` writes the full traceback to a log file under the workspace
(``.mlstrata/logs/``; the system's temporary directory when there is no workspace) and returns
the one line the user sees: the command line (so the command and its input), the step that
failed (the innermost mlstrata function on the stack), the exception, and where the log is.
"""

from __future__ import annotations

import datetime
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CRASH_EXIT_CODE", "report_crash"]

CRASH_EXIT_CODE = 70
"""``EX_SOFTWARE`` of sysexits.h: an internal software error (user mistakes exit 1 or 2)."""

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_WORKSPACE_FLAGS = ("-w", "--workspace")


def report_crash(args: Sequence[str], exc: BaseException) -> str:
    """Log ``exc``'s traceback; the one-line message naming command, step, input and log."""
    command = " ".join(["mlstrata", *args])
    log = _write_log(_log_dir(args), command, exc)
    detail = str(exc).splitlines()[0][:200] if str(exc).strip() else ""
    error = type(exc).__name__ + (f": {detail}" if detail else "")
    return (f"'{command}' failed in {_failed_step(exc)} with {error}. This is a bug in mlstrata, "
            f"not in your input; the full traceback is in {log} — please report it with that "
            "file")


def _failed_step(exc: BaseException) -> str:
    """The innermost mlstrata function on ``exc``'s stack, as ``module.function (file:line)``."""
    package = _PACKAGE_DIR.parent
    step = "mlstrata"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(_PACKAGE_DIR):
            module = ".".join(path.relative_to(package).with_suffix("").parts)
            step = f"{module}.{frame.name} ({path.name}:{frame.lineno})"
    return step


def _log_dir(args: Sequence[str]) -> Path:
    """``.mlstrata/logs`` of the workspace the command ran in, or the temporary directory."""
    from ..workspace import Workspace

    start = Path.cwd()
    for flag, value in zip(args, args[1:], strict=False):
        if flag in _WORKSPACE_FLAGS:
            start = Path(value)
    try:
        return Workspace.find(start).store / "logs"
    except Exception:  # noqa: BLE001 - no workspace, or the crash was in opening it
        return Path(tempfile.gettempdir())


def _write_log(directory: Path, command: str, exc: BaseException) -> Path:
    """The traceback (with the command line and time) in a new file of its own."""
    now = datetime.datetime.now(datetime.UTC)
    text = (f"{now.isoformat()}\n{command}\n\n"
            + "".join(traceback.format_exception(exc)))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(
            "w", dir=directory, prefix=f"crash-{now:%Y%m%dT%H%M%SZ}-", suffix=".log",
            delete=False, encoding="utf-8")
    except OSError:
        handle = tempfile.NamedTemporaryFile("w", prefix="mlstrata-crash-", suffix=".log",
                                             delete=False, encoding="utf-8")
    with handle:
        handle.write(text)
    return Path(handle.name)
