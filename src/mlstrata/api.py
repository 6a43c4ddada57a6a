"""The Python API: one function per CLI command, returning report objects (Jupyter renders them).

Every function takes ``workspace=`` (a :class:`~mlstrata.workspace.Workspace`, a project path, or
``None`` for the current directory) and does exactly what its command does, minus the printing.

>>> import tempfile, pathlib
>>> ws = init(pathlib.Path(tempfile.mkdtemp()) / "demo")
>>> ws.artifacts()
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .config import AccessLevel, ColumnType, PiiAction
from .contract import Contract
from .data.clean import CleanReport, clean_dataset
from .data.contract_infer import infer_contract_for
from .data.ingest import IngestOptions, IngestResult
from .data.ingest import ingest as _ingest
from .data.profile import Profile, profile_dataset
from .data.sources import SourceSpec
from .data.split import SplitReport, split_dataset
from .data.synth import write_credit
from .data.validate import ValidationReport, validate_target
from .pipeline import RunReport, run_pipeline
from .workspace import Workspace

__all__ = [
    "clean",
    "infer_contract",
    "ingest",
    "init",
    "load_contract",
    "open_workspace",
    "profile",
    "run",
    "split",
    "synth_credit",
    "validate",
]

WorkspaceLike = Workspace | str | Path | None


def init(directory: str | Path = ".", project: str | None = None) -> Workspace:
    """Create (or reopen) a project: ``mlstrata.yaml`` and the ``.mlstrata/`` workspace."""
    return Workspace.init(Path(directory), project)


def open_workspace(directory: WorkspaceLike = None) -> Workspace:
    """Open the workspace in ``directory`` or the nearest parent that has one."""
    if isinstance(directory, Workspace):
        return directory
    return Workspace.find(Path(directory) if directory is not None else None)


def synth_credit(out: str | Path, rows: int = 10_000, seed: int = 0) -> Path:
    """Write a synthetic credit-risk table (csv, parquet or jsonl by suffix)."""
    return write_credit(Path(out), rows, seed)


def ingest(
    source: str | Path,
    name: str,
    *,
    target: str | None = None,
    key: str | None = None,
    time: str | None = None,
    schema: Mapping[str, ColumnType] | None = None,
    pii: Mapping[str, PiiAction] | None = None,
    access: AccessLevel | None = None,
    description: str = "",
    test_fraction: float | None = None,
    seed: int | None = None,
    workspace: WorkspaceLike = None,
    **source_options: str,
) -> IngestResult:
    """Ingest a file or database; ``source_options`` are SourceSpec fields (format, table...)."""
    ws = open_workspace(workspace)
    location = str(source) if "://" in str(source) else str(Path(source).absolute())
    spec = SourceSpec(location=location, schema={**ws.config.data.schema_overrides,
                                                 **(schema or {})}, **source_options)
    options = IngestOptions(name=name, target=target, key=key, time=time, access=access,
                            description=description, pii=dict(pii or {}),
                            test_fraction=test_fraction, seed=seed)
    return _ingest(ws, spec, options)


def profile(ref: str, *, workspace: WorkspaceLike = None) -> Profile:
    """Profile a dataset version (training side only); the result renders inline in Jupyter."""
    return profile_dataset(open_workspace(workspace), ref)


def infer_contract(
    ref: str, *, out: str | Path | None = None, force: bool = False,
    workspace: WorkspaceLike = None,
) -> tuple[Contract, Path]:
    """Infer a contract from a dataset and write it (default ``contracts/<name>.yaml``)."""
    return infer_contract_for(open_workspace(workspace), ref, Path(out) if out else None, force)


def load_contract(path: str | Path) -> Contract:
    """Load a (possibly hand-edited) contract YAML file."""
    return Contract.load(Path(path))


def validate(
    target: str | Path, *, contract: str | Path | None = None, workspace: WorkspaceLike = None
) -> ValidationReport:
    """Validate a dataset ref or a data file against a contract; ``.passed`` tells the verdict."""
    return validate_target(open_workspace(workspace), str(target),
                           Path(contract) if contract else None)


def clean(ref: str, recipe: str | Path, *, workspace: WorkspaceLike = None) -> CleanReport:
    """Clean a dataset version with a recipe file or stored recipe; returns the report."""
    _, _, report = clean_dataset(open_workspace(workspace), ref, recipe)
    return report


def split(
    ref: str,
    *,
    strategy: str | None = None,
    val: float = 0.1,
    seed: int = 0,
    target: str | None = None,
    time: str | None = None,
    group: str | None = None,
    workspace: WorkspaceLike = None,
) -> SplitReport:
    """Record a reproducible train/validation split of a dataset version."""
    return split_dataset(open_workspace(workspace), ref, strategy=strategy, fraction=val,
                         seed=seed, target=target, time=time, group=group)


def run(*, workspace: WorkspaceLike = None) -> RunReport:
    """Run the ``pipeline:`` of ``mlstrata.yaml`` end to end, skipping unchanged steps."""
    return run_pipeline(open_workspace(workspace))
