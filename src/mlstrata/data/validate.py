"""Check a dataset or a new batch against its data contract, out of core with DuckDB.

Every column rule and SQL check is counted in **one** aggregate pass
(``count(*) FILTER (WHERE <failing predicate>)``), so millions of rows validate in bounded memory;
only rules that fail get a second, ``LIMIT``-ed query for a sample of failing rows (row numbers
count data rows from 1). Python checks stream the rows as Arrow record batches.

Columns whose stored type differs from the contract's are read through ``TRY_CAST``: values that
do not convert fail the type rule, and custom checks see them as NULL (as a record's would be).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..contract import ColumnRef, Contract, Rule, quote_sql_identifier
from ..errors import ContractError, RefNotFoundError, SourceError
from ..reports import Report, badge, html_page, paragraph, table
from ..workspace import Workspace
from .datasets import open_dataset, workspace_connection
from .types import columns_of

if TYPE_CHECKING:
    from .sources import LoadedSource

__all__ = ["RuleResult", "ValidationReport", "validate", "validate_target"]

SAMPLE_ROWS = 5
BATCH_ROWS = 10_000
_SOURCE = "__mlstrata_validate_source"
_TYPED = "__mlstrata_validate_typed"
_RAW = "__mlstrata_raw_"
_ROW = "row"
_ROW_SQL = "__mlstrata_row"


@dataclass(frozen=True)
class RuleResult:
    """How one rule fared: failing rows, a sample of them, and a note (e.g. the row count)."""

    rule: Rule
    failing: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        """True when no row breaks the rule."""
        return self.failing == 0

    @property
    def blocking(self) -> bool:
        """True when the rule failed and is an error (a failed warning does not fail validation)."""
        return not self.passed and self.rule.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        """The rule, its outcome and the sample as JSON."""
        return {**self.rule.to_dict(), "passed": self.passed, "failing": self.failing,
                "note": self.note, "sample": self.sample}


@dataclass(frozen=True)
class ValidationReport(Report):
    """The outcome of validating one dataset or batch against a contract."""

    target: str
    contract: str
    rows: int
    results: list[RuleResult]
    extra_columns: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no error-level rule failed."""
        return not any(result.blocking for result in self.results)

    @property
    def failed(self) -> list[RuleResult]:
        """The rules that failed (errors and warnings)."""
        return [result for result in self.results if not result.passed]

    def to_dict(self) -> dict[str, Any]:
        """Every rule's outcome, with samples of failing rows."""
        return {
            "target": self.target,
            "contract": self.contract,
            "rows": self.rows,
            "passed": self.passed,
            "rules_checked": len(self.results),
            "rules_failed": sum(result.blocking for result in self.results),
            "warnings": sum(not r.passed and not r.blocking for r in self.results),
            "extra_columns": self.extra_columns,
            "rules": [result.to_dict() for result in self.results],
        }

    def render_terminal(self, console: Console, verbose: bool = False) -> None:
        """The verdict, a table of the failing rules, one line for the passing ones, samples.

        ``verbose`` lists every rule, passing ones included (JSON and HTML always do).
        """
        verdict = "[bold green]PASSED[/]" if self.passed else "[bold red]FAILED[/]"
        console.print(f"{verdict} {escape(self.target)}: {self.rows} rows against "
                      f"{escape(self.contract)}")
        shown = self.results if verbose else self.failed
        if shown:
            grid = Table("rule", "checks", "severity", "status", "failing", "note")
            for result in sorted(shown, key=lambda r: (r.passed, not r.blocking)):
                grid.add_row(escape(result.rule.name), escape(result.rule.description),
                             result.rule.severity, _status(result), str(result.failing),
                             escape(result.note))
            console.print(grid)
        if not verbose:
            console.print(_passing_summary(self.results), markup=False, highlight=False)
        warned = [r.rule.name for r in self.failed if not r.blocking]
        if warned:
            console.print(f"{len(warned)} warning(s), not failing validation (severity warn): "
                          f"{', '.join(warned)}", markup=False, highlight=False)
        for result in self.failed:
            console.print(f"[bold]{escape(result.rule.name)}[/]: first failing rows")
            for row in result.sample:
                console.print("  " + _sample_line(result.rule, row), markup=False,
                              highlight=False)
        if self.extra_columns:
            console.print(f"columns not in the contract: {', '.join(self.extra_columns)}",
                          markup=False)

    def to_html(self) -> str:
        """A self-contained page: the verdict, every rule, and samples of failing rows."""
        rules = [{"rule": r.rule.name, "checks": r.rule.description,
                  "severity": r.rule.severity, "status": _badge(r),
                  "failing": r.failing, "note": r.note} for r in self.results]
        samples = [(f"Failing rows: {r.rule.name}", [paragraph(r.rule.description),
                                                      table(r.sample)]) for r in self.failed]
        extra = [paragraph(f"Columns not in the contract: {', '.join(self.extra_columns)}")]
        return html_page(
            f"Validation of {self.target}",
            [("Rules", [badge(self.passed, "PASSED" if self.passed else "FAILED"), table(rules)]),
             *samples, *([("Other columns", extra)] if self.extra_columns else [])],
            subtitle=f"against {self.contract}",
            facts={"rows": self.rows, "rules": len(self.results),
                   "failed": sum(r.blocking for r in self.results),
                   "warnings": sum(not r.passed and not r.blocking for r in self.results)},
        )


def _passing_summary(results: list[RuleResult]) -> str:
    """One line for the rules that passed, counted by kind, e.g. ``55 of 57 rules passed (...)``.

    >>> from mlstrata.contract import Rule
    >>> rule = lambda kind: Rule(name=kind, kind=kind, column=None, description="")
    >>> _passing_summary([RuleResult(rule("type"), 0), RuleResult(rule("type"), 0),
    ...                   RuleResult(rule("rows"), 0), RuleResult(rule("min"), 3)])
    '3 of 4 rules passed (2 type, 1 rows); mlstrata validate --verbose lists them'
    """
    kinds = Counter(result.rule.kind for result in results if result.passed)
    if not kinds:
        return f"none of the {len(results)} rules passed"
    counts = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return (f"{kinds.total()} of {len(results)} rules passed ({counts}); "
            "mlstrata validate --verbose lists them")


def _status(result: RuleResult) -> str:
    if result.passed:
        return "[green]pass[/]"
    return "[red]FAIL[/]" if result.blocking else "[yellow]warn[/]"


def _badge(result: RuleResult) -> Any:
    if result.passed or result.blocking:
        return badge(result.passed)
    return badge(False, "WARN")


def _sample_line(rule: Rule, row: dict[str, Any]) -> str:
    if rule.column is not None:
        return f"row {row[_ROW]}: {rule.column}={row.get(rule.column)!r}"
    shown = ", ".join(f"{k}={v!r}" for k, v in list(row.items())[1:9])
    return f"row {row[_ROW]}: {shown}" + (", ..." if len(row) > 9 else "")


# -- the evaluator -----------------------------------------------------------------------------


def validate(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    contract: Contract,
    label: str,
    contract_label: str = "contract",
) -> ValidationReport:
    """Evaluate every rule of ``contract`` over ``relation``; ``label`` names the data in messages.

    Raises ``ContractError`` when the contract names columns the data lacks or a SQL check does
    not run in DuckDB; broken rules are results, not errors.
    """
    infos = columns_of(relation)
    columns = {c.name: c.type for c in infos}
    decimals = [c.name for c in infos if c.engine_type.upper().startswith("DECIMAL")]
    contract.require_columns(columns, label)
    python_checks = contract.python_check_functions()
    relation.create_view(_SOURCE, replace=True)
    try:
        refs = _typed_view(con, contract, columns)
        _check_sql_runs(con, contract)
        rows, results = _aggregate_pass(con, contract, refs)
        select = _python_select(refs, decimals)
        results += [_python_result(con, select, rule, check) for rule, (_, check)
                    in zip(contract.python_rules(), python_checks, strict=True)]
    finally:
        con.execute(f"DROP VIEW IF EXISTS {_TYPED}")
        con.execute(f"DROP VIEW IF EXISTS {_SOURCE}")
    return ValidationReport(label, contract_label, rows, [_rows_result(contract, rows), *results],
                            [name for name in columns if name not in contract.columns])


def _typed_view(con: duckdb.DuckDBPyConnection, contract: Contract,
                columns: Mapping[str, str]) -> dict[str, ColumnRef]:
    """Create a view with contract columns cast to their types, raw values kept beside them."""
    refs, replaced, raws = {}, [], []
    for index, name in enumerate(contract.columns):
        ref = contract.column_ref(name, columns[name])
        if ref.value == ref.raw:
            refs[name] = ref
            continue
        raw = quote_sql_identifier(f"{_RAW}{index}")
        replaced.append(f"{ref.value} AS {ref.raw}")
        raws.append(f"{ref.raw} AS {raw}")
        refs[name] = ColumnRef(raw, ref.raw, ref.source_type)
    star = f"* REPLACE ({', '.join(replaced)})" if replaced else "*"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_TYPED} AS "
                f"SELECT {', '.join([star, *raws])} FROM {_SOURCE}")
    return refs


def _check_sql_runs(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    for check in contract.checks:
        try:
            con.execute(f"SELECT ({check.sql}) FROM {_TYPED} LIMIT 0").fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise ContractError(f"check '{check.name}' ({check.sql}) does not run in DuckDB "
                                f"({first}); use SQL that DuckDB and SQLite share") from exc


def _aggregate_pass(con: duckdb.DuckDBPyConnection, contract: Contract,
                    refs: dict[str, ColumnRef]) -> tuple[int, list[RuleResult]]:
    """Count failing rows of every column rule and SQL check in one scan, then sample failures."""
    column_rules = contract.column_rules()
    counts = [rule.count_sql(refs[rule.column]) for rule in column_rules]
    counts += [f"count(*) FILTER (WHERE NOT ({check.sql}))" for check in contract.checks]
    try:
        rows, *failing = con.execute(
            f"SELECT {', '.join(['count(*)', *counts])} FROM {_TYPED}").fetchall()[0]
    except duckdb.Error as exc:
        raise ContractError(f"the contract's rules cannot be evaluated on this data "
                            f"({str(exc).splitlines()[0]}); fix the SQL checks") from exc
    predicates = [rule.sample_sql(refs[rule.column], _TYPED) for rule in column_rules]
    predicates += [f"NOT ({check.sql})" for check in contract.checks]
    results = []
    for rule, count, predicate in zip([*column_rules, *contract.sql_rules()], failing,
                                      predicates, strict=True):
        sample = _sample(con, predicate, refs) if count else []
        results.append(RuleResult(rule, int(count), sample))
    return int(rows), results


def _sample(con: duckdb.DuckDBPyConnection, predicate: str,
            refs: dict[str, ColumnRef]) -> list[dict[str, Any]]:
    """Up to ``SAMPLE_ROWS`` failing rows, numbered from 1, showing raw (uncast) values."""
    query = (f"SELECT {_ROW_SQL}, {_display_columns(refs)} FROM (SELECT row_number() OVER () "
             f"AS {_ROW_SQL}, * FROM {_TYPED}) WHERE {predicate} ORDER BY {_ROW_SQL} "
             f"LIMIT {SAMPLE_ROWS}")
    cursor = con.execute(query)
    names = [_ROW] + [d[0] for d in cursor.description][1:]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in
            cursor.fetchall()]


def _display_columns(refs: dict[str, ColumnRef]) -> str:
    """Every column as stored (raw values back in place of their casts)."""
    cast = {name: ref for name, ref in refs.items() if ref.value != ref.raw}
    if not cast:
        return f"* EXCLUDE ({_ROW_SQL})"
    restored = ", ".join(f"{ref.raw} AS {ref.value}" for ref in cast.values())
    hidden = ", ".join([_ROW_SQL, *(ref.raw for ref in cast.values())])
    return f"* EXCLUDE ({hidden}) REPLACE ({restored})"


def _python_select(refs: dict[str, ColumnRef], decimals: list[str]) -> str:
    """The rows Python checks see: typed values, decimals as floats (as records give them)."""
    hidden = [ref.raw for ref in refs.values() if ref.value != ref.raw]
    floats = [f"CAST({quote_sql_identifier(name)} AS DOUBLE) AS {quote_sql_identifier(name)}"
              for name in decimals]
    return ("SELECT *" + (f" EXCLUDE ({', '.join(hidden)})" if hidden else "")
            + (f" REPLACE ({', '.join(floats)})" if floats else "") + f" FROM {_TYPED}")


def _python_result(con: duckdb.DuckDBPyConnection, select: str, rule: Rule,
                   check: Callable[[dict[str, Any]], bool]) -> RuleResult:
    """Run one Python check row by row over Arrow record batches (memory stays bounded)."""
    failing, note = 0, ""
    sample: list[dict[str, Any]] = []
    reader = con.sql(select).to_arrow_reader(BATCH_ROWS)
    number = 0
    for batch in reader:
        for row in batch.to_pylist():
            number += 1
            try:
                ok = bool(check(row))
            except Exception as exc:  # noqa: BLE001 - a user's check raising is a failed row
                ok = False
                note = note or f"raised {type(exc).__name__}: {exc} (row {number})"
            if not ok:
                failing += 1
                if len(sample) < SAMPLE_ROWS:
                    sample.append({_ROW: number, **{k: _jsonable(v) for k, v in row.items()}})
    return RuleResult(rule, failing, sample, note)


def _rows_result(contract: Contract, rows: int) -> RuleResult:
    bounds = contract.rows
    low = bounds.min is not None and rows < bounds.min
    high = bounds.max is not None and rows > bounds.max
    return RuleResult(contract.rows_rule(), int(low or high), note=f"{rows} rows")


def _jsonable(value: Any) -> Any:
    """A sample value as JSON can hold it (dates as ISO text, NaN as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# -- workspace level ---------------------------------------------------------------------------


def validate_target(
    ws: Workspace,
    target: str,
    contract_path: Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Validate a dataset ref or a data FILE against a contract (YAML).

    A dataset's default contract is ``contracts/<dataset name>.yaml``; a file needs
    ``contract_path``. Python checks come from the contract and from ``data.checks`` in
    ``mlstrata.yaml``, imported with the project directory on ``sys.path``.
    """
    step = on_step or (lambda _text: None)
    path = Path(target).expanduser()
    if path.is_file():
        return _validate_file(ws, path, _contract_path_for_file(path, contract_path), step)
    try:
        dataset = open_dataset(ws, target, purpose="validate")
    except RefNotFoundError as exc:
        if path.suffix or "/" in target or "\\" in target:
            raise SourceError(f"{target}: no such file (nor dataset ref); check the path") from exc
        raise
    contract_file = contract_path or ws.root / "contracts" / f"{dataset.artifact.name}.yaml"
    if not contract_file.is_file():
        raise ContractError(
            f"{contract_file}: no contract for dataset '{dataset.artifact.name}'; run "
            f"'mlstrata contract infer {target}' first or pass --contract FILE"
        )
    contract = _load_contract(ws, contract_file)
    con = workspace_connection(ws)
    try:
        step(f"validating {dataset.artifact.ref}")
        with _project_on_path(ws.root):
            return validate(con, dataset.relation(con), contract, dataset.artifact.ref,
                            _shown(ws, contract_file))
    finally:
        con.close()


def _contract_path_for_file(path: Path, contract_path: Path | None) -> Path:
    if contract_path is None:
        raise ContractError(f"{path}: validating a file needs a contract; pass --contract FILE "
                            "(e.g. contracts/<dataset>.yaml)")
    return contract_path


def _validate_file(ws: Workspace, path: Path, contract_file: Path,
                   step: Callable[[str], None]) -> ValidationReport:
    contract = _load_contract(ws, contract_file)
    con = workspace_connection(ws)
    try:
        with ws.staging() as staging:
            step(f"reading {path.name}")
            loaded = _load_batch(con, path, contract, staging)
            step(f"validating {path.name}")
            with _project_on_path(ws.root):
                return validate(con, con.table(loaded.table), contract, str(path),
                                _shown(ws, contract_file))
    finally:
        con.close()


def _load_batch(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract,
                staging: Path) -> LoadedSource:
    """Read a batch file with the contract's columns as text, for the contract to cast.

    As text, a bad value is a failing row of the type rule instead of a read error (inference
    would refuse a number column holding one word), and codes keep their leading zeros. Naming
    columns as text needs the file to have them all, so when the read fails the file is read
    again with inferred types to learn its columns: a missing one then gets the contract's own
    error naming it, the file and close matches, rather than the loader's.
    """
    from .sources import SourceSpec, load_source

    location = str(path.absolute())
    try:
        return load_source(SourceSpec(location, schema=dict.fromkeys(contract.columns, "text")),
                           con, staging)
    except SourceError:
        with contextlib.suppress(SourceError):  # unreadable either way: keep the first error
            probe = load_source(SourceSpec(location), con, staging)
            con.execute(f"DROP TABLE {quote_sql_identifier(probe.table)}")
            contract.require_columns([c.name for c in probe.columns], str(path))
        raise


def _load_contract(ws: Workspace, contract_file: Path) -> Contract:
    return Contract.load(contract_file).with_python_checks(ws.config.data.checks)


def _shown(ws: Workspace, path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ws.root))
    return str(path)


@contextlib.contextmanager
def _project_on_path(root: Path) -> Iterator[None]:
    """Let ``module:function`` checks import modules that live in the project directory."""
    entry = str(root)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)
