"""Synthetic data commands: ``synth credit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.synth import CREDIT_FORMATS, write_credit
from ._common import console, progress_bar

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to ``app``."""
    synth_app = typer.Typer(
        help="Generate synthetic datasets for demos, tests and benchmarks.",
        no_args_is_help=True,
    )
    synth_app.command("credit")(credit)
    app.add_typer(synth_app, name="synth")


def credit(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help=f"File to write; the format follows the extension ({', '.join(CREDIT_FORMATS)}).",
        ),
    ],
    rows: Annotated[int, typer.Option("--rows", "-n", help="Rows to write (at least 1).")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
) -> None:
    """Write a realistic credit-risk table: skewed numbers with gaps and outliers, categories,
    dates, postal codes (some invalid), e-mails and phones (PII), a learnable `default` target."""
    with progress_bar() as progress:
        task = progress.add_task(f"writing {out.name}", total=rows)
        write_credit(out, rows, seed, progress=lambda done: progress.update(task, completed=done))
    console.print(f"wrote {rows:,} rows to {out}", highlight=False, soft_wrap=True)
