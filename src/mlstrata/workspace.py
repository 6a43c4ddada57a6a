"""The workspace store: immutable, content-addressed artifacts with a SQLite catalog and lineage.

Layout of ``.mlstrata/`` beside ``mlstrata.yaml``::

    objects/ab/abcdef....parquet   artifacts, named by the sha256 of their bytes, never rewritten
    catalog.sqlite                 artifacts, lineage edges, access log (WAL mode)
    tmp/                           staging for writes in progress (moved into objects/ on success)
    secret.salt                    the salt of hashed PII (mode 0600)

Every write stages its file under ``tmp/``, hashes it, renames it into ``objects/`` and then
records it in one SQLite transaction, so a crash never leaves a half artifact in the catalog.
Refs name artifacts as ``NAME`` (newest version), ``NAME@3`` or a prefix of the id.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _atomic
from .config import CONFIG_FILE, AccessLevel, ProjectConfig, load_config, write_default_config
from .errors import (
    AccessDeniedError,
    InsufficientSpaceError,
    RefNotFoundError,
    WorkspaceError,
)

__all__ = ["WORKSPACE_DIR", "AccessRecord", "Artifact", "Workspace"]

WORKSPACE_DIR = ".mlstrata"
SEALED_KIND = "testset"
ACCEPTANCE_PURPOSE = "acceptance-test"
_SCHEMA_VERSION = 1
_SPACE_MARGIN_BYTES = 64 * 1024 * 1024
_ARTIFACT_FIELDS = ("id", "kind", "name", "version", "relpath", "size", "created_at", "owner",
                    "access", "description", "command", "meta")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    relpath TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    owner TEXT NOT NULL,
    access TEXT NOT NULL,
    description TEXT NOT NULL,
    command TEXT NOT NULL,
    meta TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS lineage (
    child TEXT NOT NULL REFERENCES artifacts(id),
    parent TEXT NOT NULL REFERENCES artifacts(id),
    role TEXT NOT NULL,
    PRIMARY KEY (child, parent, role)
);
CREATE TABLE IF NOT EXISTS access_log (
    artifact TEXT NOT NULL REFERENCES artifacts(id),
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    purpose TEXT NOT NULL,
    command TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Artifact:
    """One immutable artifact as the catalog records it."""

    id: str
    kind: str
    name: str
    version: int
    relpath: str
    size: int
    created_at: str
    owner: str
    access: AccessLevel
    description: str
    command: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """The ``NAME@VERSION`` form of this artifact's ref."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the catalog entry."""
        return {
            "id": self.id,
            "ref": self.ref,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "path": self.relpath,
            "size": self.size,
            "created_at": self.created_at,
            "owner": self.owner,
            "access": self.access,
            "description": self.description,
            "command": self.command,
            "meta": dict(self.meta),
        }


@dataclass(frozen=True)
class AccessRecord:
    """One recorded read of a sealed or restricted artifact."""

    artifact: str
    at: str
    who: str
    purpose: str
    command: str


class Workspace:
    """A project directory holding ``mlstrata.yaml`` and the ``.mlstrata/`` store."""

    def __init__(self, root: Path, command: str | None = None) -> None:
        self.root = root.resolve()
        self.store = self.root / WORKSPACE_DIR
        self.command = command if command is not None else _default_command()
        if not (self.store / "catalog.sqlite").is_file():
            raise WorkspaceError(
                f"{self.root}: no mlstrata workspace here; run 'mlstrata init {self.root}' first"
            )
        self.config: ProjectConfig = load_config(self.root / CONFIG_FILE)

    @property
    def reports_dir(self) -> Path:
        """Where human-facing reports (HTML + JSON) are written: ``<project>/reports/``."""
        return self.root / "reports"

    # -- creation and discovery ---------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path, project: str | None = None) -> Workspace:
        """Create ``mlstrata.yaml`` and ``.mlstrata/`` in ``directory`` (idempotent)."""
        directory.mkdir(parents=True, exist_ok=True)
        config_path = directory / CONFIG_FILE
        if not config_path.exists():
            write_default_config(config_path, project or directory.resolve().name)
        store = directory / WORKSPACE_DIR
        for sub in ("objects", "tmp"):
            (store / sub).mkdir(parents=True, exist_ok=True)
        salt = store / "secret.salt"
        if not salt.exists():
            _atomic.write_text(salt, secrets.token_hex(32), mode=0o600)
        with contextlib.closing(_connect(store / "catalog.sqlite")) as con, con:
            con.executescript(_SCHEMA)
            con.execute(
                "INSERT OR IGNORE INTO store_info VALUES ('schema_version', ?)",
                (str(_SCHEMA_VERSION),),
            )
        return cls(directory)

    @classmethod
    def find(cls, start: Path | None = None, command: str | None = None) -> Workspace:
        """Open the workspace in ``start`` or its nearest parent that has one."""
        here = (start or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / WORKSPACE_DIR / "catalog.sqlite").is_file():
                return cls(candidate, command=command)
        raise WorkspaceError(
            f"{here}: no mlstrata workspace here or in any parent; run 'mlstrata init' first"
        )

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private scratch directory under ``tmp/``, removed afterwards whatever happens."""
        path = Path(tempfile.mkdtemp(prefix="stage-", dir=self.store / "tmp"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def ensure_space(self, needed_bytes: int, what: str) -> None:
        """Refuse, before writing, when the disk holding the store lacks ``needed_bytes``."""
        free = shutil.disk_usage(self.store).free
        if needed_bytes + _SPACE_MARGIN_BYTES > free:
            raise InsufficientSpaceError(
                f"{self.store}: {what} needs about {_human(needed_bytes)} but only "
                f"{_human(free)} is free; free some space or move the workspace"
            )

    def put_file(
        self,
        staged: Path,
        *,
        kind: str,
        name: str,
        meta: Mapping[str, Any] | None = None,
        inputs: Mapping[str, str] | None = None,
        access: AccessLevel | None = None,
        description: str = "",
    ) -> Artifact:
        """Move a staged file into the store and catalog it; identical bytes give the same artifact.

        ``inputs`` maps a lineage role (``"source"``, ``"recipe"``...) to a parent artifact id.
        """
        digest = _atomic.sha256_file(staged)
        existing = self._get(digest)
        if existing is not None:
            staged.unlink(missing_ok=True)
            return existing
        access = access or self.config.data.default_access
        relpath = f"objects/{digest[:2]}/{digest}{''.join(staged.suffixes)}"
        target = self.store / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o600 if access == "restricted" or kind == "raw" else 0o644)
        os.replace(staged, target)
        return self._record(digest, kind, name, relpath, target.stat().st_size, meta or {},
                            inputs or {}, access, description)

    def put_bytes(self, data: bytes, *, suffix: str, **kwargs: Any) -> Artifact:
        """Store ``data`` as an artifact (see :meth:`put_file` for the keyword arguments)."""
        with self.staging() as stage:
            staged = stage / f"artifact{suffix}"
            _atomic.write_bytes(staged, data)
            return self.put_file(staged, **kwargs)

    def _record(
        self,
        digest: str,
        kind: str,
        name: str,
        relpath: str,
        size: int,
        meta: Mapping[str, Any],
        inputs: Mapping[str, str],
        access: AccessLevel,
        description: str,
    ) -> Artifact:
        with contextlib.closing(self._db()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                (latest,) = con.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM artifacts WHERE name = ?", (name,)
                ).fetchone()
                row = (digest, kind, name, latest + 1, relpath, size, _now(), self.config.owner,
                       access, description, self.command, json.dumps(meta, sort_keys=True))
                con.execute("INSERT INTO artifacts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
                con.executemany(
                    "INSERT INTO lineage VALUES (?, ?, ?)",
                    [(digest, parent, role) for role, parent in inputs.items()],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return _artifact(row)

    # -- reading ------------------------------------------------------------------------------

    def resolve(self, ref: str, kinds: tuple[str, ...] = ()) -> Artifact:
        """Find the artifact a ref names: ``NAME``, ``NAME@N`` or an id prefix (>= 4 chars)."""
        found = self._lookup(ref, kinds)
        if found is None:
            wanted = "/".join(kinds) or "artifact"
            hint = self._close_names(ref.split("@")[0], kinds)
            raise RefNotFoundError(
                f"no {wanted} named '{ref}'{hint}; run 'mlstrata ls' to see what exists"
            )
        return found

    def _lookup(self, ref: str, kinds: tuple[str, ...]) -> Artifact | None:
        kind_sql = f" AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        name, _, version = ref.partition("@")
        with contextlib.closing(self._db()) as con:
            if version:
                if not version.isdigit():
                    raise RefNotFoundError(
                        f"ref '{ref}': the part after '@' must be a version number, like {name}@1"
                    )
                query = "SELECT * FROM artifacts WHERE name = ? AND version = ?" + kind_sql
                row = con.execute(query, (name, int(version), *kinds)).fetchone()
            else:
                query = ("SELECT * FROM artifacts WHERE name = ?" + kind_sql
                         + " ORDER BY version DESC LIMIT 1")
                row = con.execute(query, (name, *kinds)).fetchone()
            if row is None and len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref):
                rows = con.execute(
                    "SELECT * FROM artifacts WHERE id LIKE ?" + kind_sql, (ref + "%", *kinds)
                ).fetchall()
                if len(rows) > 1:
                    raise RefNotFoundError(
                        f"id prefix '{ref}' matches {len(rows)} artifacts; give more characters"
                    )
                row = rows[0] if rows else None
        return _artifact(row) if row else None

    def _close_names(self, name: str, kinds: tuple[str, ...]) -> str:
        import difflib

        names = {a.name for a in self.artifacts() if not kinds or a.kind in kinds}
        close = difflib.get_close_matches(name, sorted(names), n=3)
        return f" (did you mean {', '.join(close)}?)" if close else ""

    def _get(self, artifact_id: str) -> Artifact | None:
        with contextlib.closing(self._db()) as con:
            row = con.execute("SELECT * FROM artifacts WHERE id = ?", (artifact_id,)).fetchone()
        return _artifact(row) if row else None

    def get(self, artifact_id: str) -> Artifact:
        """The artifact with exactly this id."""
        found = self._get(artifact_id)
        if found is None:
            raise RefNotFoundError(f"no artifact with id {artifact_id}; the catalog may be damaged")
        return found

    def artifacts(self, kind: str | None = None) -> list[Artifact]:
        """All artifacts (of one kind), oldest first."""
        with contextlib.closing(self._db()) as con:
            if kind:
                rows = con.execute(
                    "SELECT * FROM artifacts WHERE kind = ? ORDER BY rowid", (kind,)
                ).fetchall()
            else:
                rows = con.execute("SELECT * FROM artifacts ORDER BY rowid").fetchall()
        return [_artifact(row) for row in rows]

    def find_by_meta(self, kind: str, key: str, value: str) -> Artifact | None:
        """The newest artifact of ``kind`` whose ``meta[key]`` equals ``value``."""
        with contextlib.closing(self._db()) as con:
            row = con.execute(
                "SELECT * FROM artifacts WHERE kind = ? AND json_extract(meta, ?) = ? "
                "ORDER BY rowid DESC LIMIT 1",
                (kind, f"$.{key}", value),
            ).fetchone()
        return _artifact(row) if row else None

    def parents(self, artifact_id: str) -> list[tuple[str, Artifact]]:
        """The (role, artifact) pairs this artifact was made from."""
        return self._edges("SELECT role, parent FROM lineage WHERE child = ?", artifact_id)

    def children(self, artifact_id: str) -> list[tuple[str, Artifact]]:
        """The (role, artifact) pairs made from this artifact."""
        return self._edges("SELECT role, child FROM lineage WHERE parent = ?", artifact_id)

    def _edges(self, query: str, artifact_id: str) -> list[tuple[str, Artifact]]:
        with contextlib.closing(self._db()) as con:
            rows = con.execute(query + " ORDER BY role", (artifact_id,)).fetchall()
        return [(role, self.get(other)) for role, other in rows]

    def path_for_read(self, artifact: Artifact, purpose: str = "training") -> Path:
        """The on-disk path of an artifact, after checking and recording access.

        The sealed test set is readable only for the ``acceptance-test`` purpose; every read of a
        sealed or restricted artifact is written to the access log.
        """
        if artifact.kind == SEALED_KIND and purpose != ACCEPTANCE_PURPOSE:
            raise AccessDeniedError(
                f"{artifact.ref} is the sealed test set; only the acceptance test may read it "
                f"(purpose '{purpose}' refused); use the dataset's training side instead"
            )
        if artifact.kind == SEALED_KIND or artifact.access == "restricted":
            self._log_access(artifact.id, purpose)
        return self.store / artifact.relpath

    def _log_access(self, artifact_id: str, purpose: str) -> None:
        with contextlib.closing(self._db()) as con, con:
            con.execute(
                "INSERT INTO access_log VALUES (?, ?, ?, ?, ?)",
                (artifact_id, _now(), self.config.owner, purpose, self.command),
            )

    def access_log(self, artifact_id: str) -> list[AccessRecord]:
        """Every recorded read of an artifact, oldest first."""
        with contextlib.closing(self._db()) as con:
            rows = con.execute(
                "SELECT * FROM access_log WHERE artifact = ? ORDER BY rowid", (artifact_id,)
            ).fetchall()
        return [AccessRecord(*row) for row in rows]

    def pii_salt(self) -> str:
        """The workspace's secret salt for hashed PII (``MLSTRATA_PII_SALT`` overrides it)."""
        return os.environ.get("MLSTRATA_PII_SALT") or (self.store / "secret.salt").read_text()

    def _db(self) -> sqlite3.Connection:
        return _connect(self.store / "catalog.sqlite")


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("PRAGMA synchronous=FULL")
    return con


def _artifact(row: tuple[Any, ...]) -> Artifact:
    values = dict(zip(_ARTIFACT_FIELDS, row, strict=True))
    values["meta"] = json.loads(values["meta"])
    return Artifact(**values)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _default_command() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([program, *sys.argv[1:]]) if program == "mlstrata" else "python-api"


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TB"
