"""Write a deployment artifact's directory all at once, or not at all.

Every ``mlstrata deploy`` command renders into a fresh temporary directory beside ``--out`` and
renames it into place only when everything was written: a failure half-way leaves ``--out`` as
it was. An output directory that exists and is not empty is refused unless ``force`` — then it
is replaced whole (never merged: a stale file from an older render must not ship).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import MlstrataError

__all__ = ["DeployError", "check_output", "staged_directory"]


class DeployError(MlstrataError):
    """An artifact cannot be rendered: a bad option, a model that does not exist, an output
    directory in the way, or an artifact over a platform's limit."""


def check_output(out: Path, force: bool) -> None:
    """Refuse ``out`` when it is a file, or a directory that is not empty (unless ``force``)."""
    if out.exists() and not out.is_dir():
        raise DeployError(f"--out {out} is a file, not a directory; pass a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DeployError(f"--out {out} is not empty; pass an empty or new directory, or "
                          "--force to replace it")


@contextlib.contextmanager
def staged_directory(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``out``; on success it replaces ``out``.

    On any exception the temporary directory is removed and ``out`` is left untouched.
    """
    check_output(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)
        if out.exists():
            retired = staging.with_name(staging.name + ".old")
            os.replace(out, retired)
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
