"""The ``ingest`` command: a file or database into a dataset version, sealed test set and backup."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import AccessLevel, ColumnType, PiiAction
from ..data.ingest import IngestOptions, ingest
from ..data.ingest_join import ingest_and_join
from ..data.sources import SourceSpec
from ..errors import ConfigError
from ._common import JsonOption, WorkspaceOption, emit, open_workspace, stage_progress

__all__ = ["register"]



def _option(help_text: str) -> Any:
    return typer.Option(help=help_text)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to ``app``."""
    app.command("ingest")(ingest_command)


def ingest_command(
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name in the catalog.")],
    source: Annotated[str | None, typer.Argument(
        help="File (csv, tsv, parquet, json, jsonl, xlsx, sqlite, duckdb) or database URL: "
             "postgresql://, mysql:// or mariadb:// (password in the URL or MYSQL_PWD; a large "
             "table with an integer key is read over MLSTRATA_MYSQL_CONNECTIONS connections), or a "
             "SQLAlchemy dialect+driver:// URL; or a lake of csv/tsv/parquet/json/jsonl "
             "files: a folder, a glob ('lake/year=*/*.parquet') or s3://bucket/prefix (globs "
             "allowed; endpoint, region and credentials from AWS_* variables or "
             "AWS_PROFILE). Omitted with --spark-sql.")] = None,
    target: Annotated[str | None, _option("Target column (seals a stratified test set).")] = None,
    key: Annotated[str | None, _option("Column that identifies each row uniquely.")] = None,
    time: Annotated[str | None, _option("Time column: the most recent rows are sealed.")] = None,
    format: Annotated[str | None, _option("Force the format instead of detecting it.")] = None,
    delimiter: Annotated[str | None, _option("CSV delimiter (default: sniffed).")] = None,
    encoding: Annotated[str | None, _option("Text encoding (default: detected).")] = None,
    sheet: Annotated[str | None, _option("Excel sheet (default: the first).")] = None,
    table: Annotated[str | None, _option("Table to read from a database source.")] = None,
    query: Annotated[str | None, _option("SQL query to read from a database source.")] = None,
    schema: Annotated[list[str] | None, _option(
        "COL=TYPE override (text, integer, float, boolean, date, timestamp); repeatable.")] = None,
    pii: Annotated[list[str] | None, _option(
        "COL=ACTION PII policy (keep, drop, hash, mask); repeatable.")] = None,
    access: Annotated[str | None, _option("public, internal or restricted.")] = None,
    description: Annotated[str, _option("Free text for the catalog.")] = "",
    test_fraction: Annotated[float | None, _option(
        "Share of rows sealed as the test set (default: data.sealed_test_fraction).")] = None,
    seed: Annotated[int | None, _option("Seed of the sealed split.")] = None,
    engine: Annotated[str, _option(
        "local, or spark: Spark reads SOURCE — a SELECT query, a table or a lake path — and "
        "writes the snapshot (the active session, else local[*]).")] = "local",
    spark_sql: Annotated[str | None, _option(
        "A Spark SQL query to ingest instead of SOURCE (implies --engine spark).")] = None,
    join: Annotated[str | None, _option(
        "Enrich with this dataset version (REF), joined on --on; stored as a new version.")
        ] = None,
    on: Annotated[list[str] | None, _option("Key column(s) of --join; repeatable.")] = None,
    how: Annotated[str, _option("--join kind: left (keep every row) or inner.")] = "left",
    workspace: WorkspaceOption = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
) -> None:
    """Ingest SOURCE as an immutable dataset version with a sealed test set and a raw backup."""
    ws = open_workspace(workspace)
    overrides = _pairs(schema, "--schema", ColumnType)
    spec = SourceSpec(
        location=_location(source, engine, spark_sql), format=format, delimiter=delimiter,
        encoding=encoding, sheet=sheet, table=table, query=query,
        schema=typing.cast(dict[str, ColumnType], {**ws.config.data.schema_overrides, **overrides}),
    )
    options = IngestOptions(
        name=name, target=target, key=key, time=time,
        access=typing.cast(AccessLevel | None, access and _choice(access, "--access", AccessLevel)),
        description=description,
        pii=typing.cast(dict[str, PiiAction], _pairs(pii, "--pii", PiiAction)),
        test_fraction=test_fraction, seed=seed,
    )
    if (join is None) != (not on):
        raise ConfigError("--join and --on go together: --join REF --on KEY")
    with stage_progress("ingesting", quiet=as_json) as report_stage:
        result = (ingest(ws, spec, options, report_stage) if join is None else
                  ingest_and_join(ws, spec, options, join=join, on=on or [], how=how,
                                  step=report_stage))
    emit(result, as_json)


def _location(source: str | None, engine: str, spark_sql: str | None) -> str:
    """The source's location: an absolute path or a URL; ``spark:...`` for the Spark engine."""
    if engine not in ("local", "spark"):
        raise ConfigError(f"--engine: {engine!r} is not one of local, spark")
    if spark_sql is not None:
        if source is not None:
            raise ConfigError(f"pass either SOURCE ({source}) or --spark-sql, not both")
        return "spark:" + spark_sql
    if source is None:
        raise ConfigError("pass SOURCE (a file, folder, glob or URL), or --spark-sql QUERY")
    if engine == "local":
        return _absolute(source)
    return "spark:" + (_absolute(source) if Path(source).expanduser().exists() else source)


def _absolute(source: str) -> str:
    return source if "://" in source else str(Path(source).expanduser().absolute())


def _pairs(values: list[str] | None, flag: str, allowed: object) -> dict[str, str]:
    """Parse repeated ``COL=VALUE`` flags, checking each value against a Literal type."""
    parsed: dict[str, str] = {}
    for item in values or []:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise ConfigError(f"{flag} {item!r}: expected COL=VALUE, e.g. {flag} zip=text")
        parsed[column] = _choice(value, f"{flag} {column}", allowed)
    return parsed


def _choice(value: str, flag: str, allowed: object) -> str:
    choices = typing.get_args(allowed)
    if value not in choices:
        raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(choices)}")
    return value
