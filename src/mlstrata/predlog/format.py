"""The prediction log's on-disk format: version, layout and the ``FORMAT.json`` marker.

A log directory (``<workspace>/.mlstrata/predictions/`` by default) holds::

    FORMAT.json                                   {"format_version": 1}
    <model>/v<version>/<YYYY-MM-DD>/<host>-<pid>-<seq>.jsonl    prediction lines
    <model>/feedback/<YYYY-MM-DD>/<host>-<pid>-<seq>.jsonl      feedback lines

One JSON object per line (see ``docs/prediction-log.md`` for every field). Days are UTC. Each
writing process owns its files (host, process id and a sequence number in the name), so
replicas never share a file; a file is created exclusively and only appended to. A reader
must skip a last line without its newline: the writer may be appending it right now.

Readers call :func:`check_format` and refuse a directory written by a newer format, in one
line. Adding a field to a line does not bump the version; changing or removing one does.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import MlstrataError

__all__ = ["FORMAT_FILE", "FORMAT_VERSION", "LogFormatError", "check_format", "feedback_dir",
           "model_dir", "write_format"]

FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT.json"


class LogFormatError(MlstrataError):
    """A prediction log directory was written by a format this mlstrata cannot read."""


def model_dir(root: Path, model: str, version: int) -> Path:
    """The directory of one model version's prediction lines."""
    return root / model / f"v{version}"


def feedback_dir(root: Path, model: str) -> Path:
    """The directory of one model's feedback lines."""
    return root / model / "feedback"


def check_format(root: Path) -> int:
    """The format version of the log at ``root`` (1 when it has no marker yet); a
    :class:`LogFormatError` when a newer mlstrata wrote it."""
    marker = root / FORMAT_FILE
    try:
        found = json.loads(marker.read_text(encoding="utf-8")).get("format_version")
    except FileNotFoundError:
        return FORMAT_VERSION
    except (OSError, ValueError, AttributeError) as exc:
        raise LogFormatError(f"{marker}: unreadable ({exc}); it should hold "
                             f'{{"format_version": {FORMAT_VERSION}}}') from exc
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise LogFormatError(f"{root}: the prediction log has format_version {found!r}, newer "
                             f"than this mlstrata reads ({FORMAT_VERSION}); upgrade mlstrata")
    return found


def write_format(root: Path) -> None:
    """Create ``root`` and its ``FORMAT.json`` (atomically) unless it exists; refuse a newer
    format (a writer never mixes versions in one directory)."""
    from .._atomic import write_text

    root.mkdir(parents=True, exist_ok=True)
    check_format(root)
    if not (root / FORMAT_FILE).exists():
        write_text(root / FORMAT_FILE, json.dumps({"format_version": FORMAT_VERSION}) + "\n")
