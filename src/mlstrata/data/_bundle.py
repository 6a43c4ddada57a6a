"""The byte-exact backup of a multi-file source: one uncompressed tar of the files, unchanged,
and a ``manifest.json`` naming each one (key, size, sha256, and the ETag of an object).

The archive is written in a fixed order with fixed metadata (no dates, owners or modes taken from
the disk), so the same files give the same archive byte for byte and re-ingesting them finds
the existing dataset version. Each file is hashed again as it is copied in and must match the
hash taken when it was read, so the backup holds exactly the bytes the dataset was built from.
``tar -xf`` restores the files (under ``files/``).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import SourceError

__all__ = ["BUNDLE_FORMAT_VERSION", "MANIFEST", "write_bundle"]

BUNDLE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def write_bundle(target: Path, files: Sequence[tuple[Path, Mapping[str, Any], str]],
                 about: Mapping[str, Any]) -> Path:
    """Write the tar ``target``: the manifest, then ``files/<name>`` for each ``(path, entry,
    shown)``; ``entry`` is the file's manifest entry (with its ``name`` and ``sha256``)."""
    manifest = {"bundle_format_version": BUNDLE_FORMAT_VERSION, **about,
                "files": [dict(entry) for _, entry, _ in files]}
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        tar.addfile(_member(MANIFEST, len(data)), io.BytesIO(data))
        for path, entry, shown in files:
            with path.open("rb") as handle:
                checked = _Hashing(handle)
                tar.addfile(_member(f"files/{entry['name']}", path.stat().st_size), checked)
            if checked.digest.hexdigest() != entry["sha256"]:
                raise SourceError(f"{shown} changed while it was being ingested; ingest again")
    return target


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it (tarfile copies from it in blocks)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        block = self.handle.read(size)
        self.digest.update(block)
        return block
