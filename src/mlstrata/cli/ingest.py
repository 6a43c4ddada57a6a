"""The ``ingest`` command: a file or database into a dataset version, sealed test set and backup."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ..config import AccessLevel, ColumnType, PiiAction
from ..data.ingest import IngestOptions, ingest
from ..data.sources import SourceSpec
from ..errors import ConfigError
from ._common import JsonOption, WorkspaceOption, emit, open_workspace, progress_bar

__all__ = ["register"]

T = TypeVar("T", bound=str)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to ``app``."""
    app.command("ingest")(ingest_command)


def ingest_command(
    source: Annotated[str, typer.Argument(help="File path (csv, tsv, parquet, json, jsonl, xlsx, "
                                               "sqlite, duckdb) or a postgresql:// URL.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name in the catalog.")],
    target: Annotated[str | None, typer.Option(help="Target column (enables stratified sealing).")] = None,
    key: Annotated[str | None, typer.Option(help="Column that identifies each row uniquely.")] = None,
    time: Annotated[str | None, typer.Option(help="Time column: the most recent rows are sealed.")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Force the format instead of "
                                                                "detecting it.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: sniffed).")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detected).")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (default: the first).")] = None,
    table: Annotated[str | None, typer.Option(help="Table to read from a database source.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read from a database source.")] = None,
    schema: Annotated[list[str] | None, typer.Option(
        help="COL=TYPE type override (text, integer, float, boolean, date, timestamp); repeatable.")] = None,
    pii: Annotated[list[str] | None, typer.Option(
        help="COL=ACTION PII policy (keep, drop, hash, mask); repeatable.")] = None,
    access: Annotated[str | None, typer.Option(help="public, internal or restricted.")] = None,
    description: Annotated[str, typer.Option(help="Free text for the catalog.")] = "",
    test_fraction: Annotated[float | None, typer.Option(
        help="Share of rows sealed as the test set (default: data.sealed_test_fraction).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sealed split.")] = None,
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Ingest SOURCE as an immutable dataset version with a sealed test set and a raw backup."""
    ws = open_workspace(workspace)
    spec = SourceSpec(
        location=_absolute(source), format=format, delimiter=delimiter, encoding=encoding,
        sheet=sheet, table=table, query=query,
        schema={**ws.config.data.schema_overrides, **_pairs(schema, "--schema", ColumnType)},
    )
    options = IngestOptions(
        name=name, target=target, key=key, time=time,
        access=_choice(access, "--access", AccessLevel) if access else None,
        description=description, pii=_pairs(pii, "--pii", PiiAction),
        test_fraction=test_fraction, seed=seed,
    )
    with progress_bar(quiet=as_json) as progress:
        task = progress.add_task("ingesting", total=None)
        result = ingest(ws, spec, options, lambda text: progress.update(task, description=text))
    emit(result, as_json)


def _absolute(source: str) -> str:
    return source if "://" in source else str(Path(source).expanduser().absolute())


def _pairs(values: list[str] | None, flag: str, allowed: object) -> dict[str, T]:
    """Parse repeated ``COL=VALUE`` flags, checking each value against a Literal type."""
    parsed: dict[str, T] = {}
    for item in values or []:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise ConfigError(f"{flag} {item!r}: expected COL=VALUE, e.g. {flag} zip=text")
        parsed[column] = _choice(value, f"{flag} {column}", allowed)
    return parsed


def _choice(value: str, flag: str, allowed: object) -> T:
    choices = typing.get_args(allowed)
    if value not in choices:
        raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(choices)}")
    return typing.cast(T, value)
