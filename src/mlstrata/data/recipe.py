"""Cleaning recipes: ordered SQL steps, fitted on training rows, frozen, re-applied identically.

A recipe is a YAML (or JSON) file with a ``steps:`` list; each step is a one-key mapping naming
its kind::

    steps:
      - cast: {column: age, to: integer}
      - impute: {columns: [income], strategy: median}
      - outliers: {columns: [income], method: iqr, action: clip}
      - filter: {sql: "age BETWEEN 18 AND 120"}
      - join: {dataset: regions, on: zip, how: left}

Steps follow the estimator API: a step only stores its parameters; :meth:`Step.fit` computes the
statistics it needs (means, medians, modes, IQR fences...) on the training rows and returns a
:class:`FittedStep`, which turns an input query into the next one with :meth:`FittedStep.apply_sql`.
A :class:`FittedRecipe` serializes with its statistics under ``fitted:`` in every step, and
loading it applies those statistics without refitting — so a future batch is cleaned exactly as
the training data was.

Internally every stage carries the input's row position in ``__mlstrata_pos`` so that ``dedupe``
keeps first occurrences and :func:`apply_fitted` returns rows in input order.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .._yaml import dump_yaml, parse_model, read_yaml
from ..config import ColumnType
from ..errors import RecipeError
from .engine import parquet_scan, quote_identifier, quote_literal
from .types import duckdb_type, logical_type

__all__ = [
    "POSITION",
    "Cast",
    "Dedupe",
    "Derive",
    "Drop",
    "FittedRecipe",
    "FittedStep",
    "Filter",
    "Impute",
    "Join",
    "Outliers",
    "Recipe",
    "Rename",
    "Step",
    "apply_fitted",
    "load_recipe",
    "parse_recipe",
    "with_positions",
    "without_positions",
]

POSITION = "__mlstrata_pos"
SCHEMA_VERSION = 1
Scalar = bool | int | float | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _NoState(_Model):
    """The fitted state of a step that learns nothing."""


class Step(_Model):
    """One cleaning step: parameters only. Subclasses set ``kind`` and build SQL in ``_sql``."""

    kind: ClassVar[str]
    State: ClassVar[type[BaseModel]] = _NoState

    def fit(self, con: duckdb.DuckDBPyConnection, relation_sql: str) -> FittedStep:
        """Compute the statistics this step needs from ``relation_sql`` (the training rows)."""
        fitted, _ = _advance(con, with_positions(relation_sql), self, None)
        return fitted

    def changes_rows(self) -> bool:
        """Whether the step can remove rows (reports count rows only after such steps)."""
        return False

    def describe(self) -> str:
        """The step as one line, e.g. ``impute columns=['age'] strategy=mean``."""
        params = self.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return " ".join([self.kind, *(f"{key}={value!r}" for key, value in params.items())])

    def _check(self, columns: Mapping[str, str]) -> None:
        """Raise when the input lacks a column the step names (or has the wrong type)."""
        for name in self._referenced():
            _require(name, columns)

    def _referenced(self) -> list[str]:
        return []

    def _fit(self, con: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, str]
             ) -> BaseModel:
        return _NoState()

    def _verify(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Check the data itself (e.g. that a cast succeeds); runs on every input, fit or apply."""

    def _sql(self, sql: str, state: Any) -> str:
        raise NotImplementedError

    def _blame(self) -> str:
        return "the step"


@dataclass(frozen=True)
class FittedStep:
    """A step with its frozen statistics; applies them to any input without refitting."""

    step: Step
    state: BaseModel

    def apply_sql(self, input_sql: str) -> str:
        """The SQL of this step applied to ``input_sql`` (rows carrying ``__mlstrata_pos``)."""
        return self.step._sql(input_sql, self.state)

    def to_dict(self) -> dict[str, Any]:
        """``{kind: parameters, "fitted": statistics}``, the form stored in a fitted recipe."""
        params = self.step.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return {self.step.kind: params, "fitted": self.state.model_dump(mode="json")}


# -- the steps ----------------------------------------------------------------------------------


class Cast(Step):
    """Convert ``column`` to a logical type; fails naming a value that does not convert."""

    kind = "cast"
    column: str
    to: ColumnType

    def _referenced(self) -> list[str]:
        return [self.column]

    def _verify(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        col, target = quote_identifier(self.column), duckdb_type(self.to)
        bad = con.execute(
            f"SELECT CAST({col} AS VARCHAR) FROM ({sql}) WHERE {col} IS NOT NULL "
            f"AND TRY_CAST({col} AS {target}) IS NULL LIMIT 1"
        ).fetchall()
        if bad:
            raise RecipeError(
                f"column '{self.column}' has values that are not {self.to}, e.g. {bad[0][0]!r}; "
                f"fix or filter them in an earlier step, or cast to another type"
            )

    def _sql(self, sql: str, state: Any) -> str:
        col = quote_identifier(self.column)
        return f"SELECT * REPLACE (CAST({col} AS {duckdb_type(self.to)}) AS {col}) FROM ({sql})"


class Rename(Step):
    """Rename column ``from`` to ``to``."""

    kind = "rename"
    from_: str = Field(alias="from")
    to: str

    def _check(self, columns: Mapping[str, str]) -> None:
        _require(self.from_, columns)
        if self.to in columns and self.to != self.from_:
            raise RecipeError(f"column '{self.to}' already exists; pick another name for 'to' "
                              f"or drop '{self.to}' first")

    def _sql(self, sql: str, state: Any) -> str:
        return (f"SELECT * RENAME ({quote_identifier(self.from_)} AS "
                f"{quote_identifier(self.to)}) FROM ({sql})")


class Drop(Step):
    """Remove ``columns``."""

    kind = "drop"
    columns: list[str] = Field(min_length=1)

    def _check(self, columns: Mapping[str, str]) -> None:
        super()._check(columns)
        if set(columns) <= set(self.columns):
            raise RecipeError("drops every column; keep at least one")

    def _referenced(self) -> list[str]:
        return self.columns

    def _sql(self, sql: str, state: Any) -> str:
        return f"SELECT * EXCLUDE ({_names(self.columns)}) FROM ({sql})"


class _DeriveState(_Model):
    replace: bool


class Derive(Step):
    """Add (or replace) column ``name`` computed by the SQL expression ``sql``."""

    kind = "derive"
    State = _DeriveState
    name: str = Field(min_length=1)
    sql: str = Field(min_length=1)

    def _fit(self, con: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, str]
             ) -> BaseModel:
        return _DeriveState(replace=self.name in columns)

    def _sql(self, sql: str, state: Any) -> str:
        name = quote_identifier(self.name)
        if state.replace:
            return f"SELECT * REPLACE (({self.sql}) AS {name}) FROM ({sql})"
        return f"SELECT *, ({self.sql}) AS {name} FROM ({sql})"

    def _blame(self) -> str:
        return f"sql {self.sql!r}"


class Filter(Step):
    """Keep the rows where the SQL condition ``sql`` is true."""

    kind = "filter"
    sql: str = Field(min_length=1)

    def changes_rows(self) -> bool:
        """A filter removes rows."""
        return True

    def _sql(self, sql: str, state: Any) -> str:
        return f"SELECT * FROM ({sql}) WHERE ({self.sql})"

    def _blame(self) -> str:
        return f"sql {self.sql!r}"


class _Fill(_Model):
    value: Scalar
    type: str


class _ImputeState(_Model):
    values: dict[str, _Fill]


_STATISTIC = {"mean": "avg({c})", "median": "quantile_cont({c}, 0.5)"}


class Impute(Step):
    """Fill missing values of ``columns`` with their training mean, median, mode or a constant."""

    kind = "impute"
    State = _ImputeState
    columns: list[str] = Field(min_length=1)
    strategy: Literal["mean", "median", "mode", "constant"]
    value: Scalar | None = None

    @model_validator(mode="after")
    def _value_with_constant(self) -> Impute:
        if (self.strategy == "constant") != (self.value is not None):
            raise ValueError("give 'value' with strategy 'constant', and only then")
        return self

    def _referenced(self) -> list[str]:
        return self.columns

    def _check(self, columns: Mapping[str, str]) -> None:
        super()._check(columns)
        if self.strategy in _STATISTIC:
            _require_numeric(self.columns, columns, f"strategy '{self.strategy}'")

    def _fit(self, con: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, str]
             ) -> BaseModel:
        return _ImputeState(values={name: self._fill(con, sql, name, columns[name])
                                    for name in self.columns})

    def _fill(self, con: duckdb.DuckDBPyConnection, sql: str, name: str, engine_type: str
              ) -> _Fill:
        col = quote_identifier(name)
        if self.value is not None:
            query = f"SELECT TRY_CAST({_literal(self.value)} AS {engine_type})"
        elif self.strategy == "mode":
            query = (f"SELECT {col} FROM ({sql}) WHERE {col} IS NOT NULL "
                     f"GROUP BY {col} ORDER BY count(*) DESC, {col} LIMIT 1")
        else:
            query = f"SELECT {_STATISTIC[self.strategy].format(c=col)} FROM ({sql})"
        rows = con.execute(query).fetchall()
        if not rows or rows[0][0] is None:
            if self.value is not None:
                raise RecipeError(f"value {self.value!r} cannot be stored in column '{name}' "
                                  f"({logical_type(engine_type)}); give a value of that type")
            raise RecipeError(f"column '{name}' has no values in the training rows, so its "
                              f"{self.strategy} is undefined; use strategy 'constant'")
        fill_type = "DOUBLE" if self.strategy in _STATISTIC else engine_type
        return _Fill(value=_scalar(rows[0][0]), type=fill_type)

    def _sql(self, sql: str, state: Any) -> str:
        fills = ", ".join(
            f"coalesce(CAST({quote_identifier(name)} AS {fill.type}), "
            f"CAST({_literal(fill.value)} AS {fill.type})) AS {quote_identifier(name)}"
            for name, fill in state.values.items()
        )
        return f"SELECT * REPLACE ({fills}) FROM ({sql})"


class _Fence(_Model):
    lower: float | None
    upper: float | None
    type: str


class _OutliersState(_Model):
    fences: dict[str, _Fence]


_METHOD_FIELDS = {"iqr": {"k"}, "zscore": {"threshold"}, "bounds": {"lower", "upper"}}
_ALL_METHOD_FIELDS = {"k", "threshold", "lower", "upper"}


class Outliers(Step):
    """Clip, or drop rows with, values of ``columns`` outside IQR, z-score or fixed bounds."""

    kind = "outliers"
    State = _OutliersState
    columns: list[str] = Field(min_length=1)
    method: Literal["iqr", "zscore", "bounds"] = "iqr"
    action: Literal["clip", "drop"] = "clip"
    k: float = Field(1.5, gt=0)
    threshold: float = Field(3.0, gt=0)
    lower: float | None = None
    upper: float | None = None

    @model_validator(mode="after")
    def _fields_match_method(self) -> Outliers:
        foreign = self.model_fields_set & (_ALL_METHOD_FIELDS - _METHOD_FIELDS[self.method])
        if foreign:
            raise ValueError(f"'{sorted(foreign)[0]}' does not apply to method '{self.method}'")
        if self.method == "bounds" and self.lower is None and self.upper is None:
            raise ValueError("method 'bounds' needs 'lower', 'upper' or both")
        return self

    def changes_rows(self) -> bool:
        """Dropping outliers removes rows; clipping does not."""
        return self.action == "drop"

    def _referenced(self) -> list[str]:
        return self.columns

    def _check(self, columns: Mapping[str, str]) -> None:
        super()._check(columns)
        _require_numeric(self.columns, columns, "outliers")

    def _fit(self, con: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, str]
             ) -> BaseModel:
        return _OutliersState(fences={
            name: _Fence(**self._bounds(con, sql, name), type=columns[name])
            for name in self.columns
        })

    def _bounds(self, con: duckdb.DuckDBPyConnection, sql: str, name: str
                ) -> dict[str, float | None]:
        if self.method == "bounds":
            return {"lower": self.lower, "upper": self.upper}
        col = f"CAST({quote_identifier(name)} AS DOUBLE)"
        stats = ("quantile_cont({c}, 0.25), quantile_cont({c}, 0.75)" if self.method == "iqr"
                 else "avg({c}), coalesce(stddev_samp({c}), 0)").format(c=col)
        first, second = con.execute(f"SELECT {stats} FROM ({sql})").fetchall()[0]
        if first is None:
            raise RecipeError(f"column '{name}' has no values in the training rows; "
                              f"use method 'bounds' or drop the column from this step")
        if self.method == "iqr":
            spread = self.k * (second - first)
            return {"lower": first - spread, "upper": second + spread}
        return {"lower": first - self.threshold * second, "upper": first + self.threshold * second}

    def _sql(self, sql: str, state: Any) -> str:
        if self.action == "drop":
            keep = " AND ".join(_inside(name, fence) for name, fence in state.fences.items())
            return f"SELECT * FROM ({sql}) WHERE {keep}"
        clips = ", ".join(_clip(name, fence) for name, fence in state.fences.items())
        return f"SELECT * REPLACE ({clips}) FROM ({sql})"


class _DedupeState(_Model):
    columns: list[str]


class Dedupe(Step):
    """Keep the first of rows that agree on ``columns`` (default: every column)."""

    kind = "dedupe"
    State = _DedupeState
    columns: list[str] | None = Field(None, min_length=1)

    def changes_rows(self) -> bool:
        """Dedupe removes repeated rows."""
        return True

    def _referenced(self) -> list[str]:
        return self.columns or []

    def _fit(self, con: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, str]
             ) -> BaseModel:
        return _DedupeState(columns=self.columns or list(columns))

    def _sql(self, sql: str, state: Any) -> str:
        return (f"SELECT * FROM ({sql}) QUALIFY row_number() OVER "
                f"(PARTITION BY {_names(state.columns)} ORDER BY {POSITION}) = 1")


class _JoinState(_Model):
    dataset: str  # the joined version's artifact id: the sha256 of its Parquet
    ref: str
    # Where that Parquet lies inside the store: for a person or tool reading the stored recipe
    # (replays bind by id; stored recipes have it, so it stays, extra keys being refused).
    path: str
    columns: dict[str, str]  # joined column -> engine type, in output order
    rows: int
    unmatched: int  # rows the step was fitted on that found no match


class Join(Step):
    """Add columns of another dataset version, matched on the key columns ``on``.

    ``how: left`` keeps every row (no match: the joined columns are missing), ``inner`` keeps
    only rows with a match. The key must be unique on the joined side — one row per key — or
    fitting refuses it, naming an example duplicate. The joined version is found through the
    workspace (:func:`mlstrata.data.join.resolve_joins`) and frozen by id when fitted, so a replay
    reads the very same rows. The fitted state holds no absolute path: a replay binds the step to
    the version's file in the workspace at hand (:func:`mlstrata.data.join.bind_joins`), so a
    workspace moved to another folder replays as before.
    """

    kind = "join"
    State = _JoinState
    dataset: str = Field(min_length=1)
    on: list[str] = Field(min_length=1)
    how: Literal["left", "inner"] = "left"
    columns: list[str] | None = Field(None, min_length=1)
    _source: tuple[str, str, str, str] | None = PrivateAttr(None)  # id, ref, file, store path

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        """YAML 1.1 reads the key ``on`` as the boolean true; take it as ``on``."""
        if isinstance(data, Mapping) and True in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("on", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def resolved(self, dataset_id: str, ref: str, path: Path, stored_as: str) -> Join:
        """This step bound to the joined version: its id, ref, Parquet file on disk and path
        inside the workspace store — ready to fit, or to replay a fitted state."""
        bound = self.model_copy()
        bound._source = (dataset_id, ref, str(path), stored_as)
        return bound

    def changes_rows(self) -> bool:
        """An inner join removes the rows without a match."""
        return self.how == "inner"

    def _referenced(self) -> list[str]:
        return self.on

    def _fit(self, con: duckdb.DuckDBPyConnection, sql: str, columns: Mapping[str, str]
             ) -> BaseModel:
        if self._source is None:
            raise RecipeError(f"dataset {self.dataset!r} is not bound; join steps are fitted by "
                              "'mlstrata clean' or 'mlstrata ingest --join' in a workspace")
        dataset_id, ref, path, stored_as = self._source
        joined = _describe(con, f"SELECT * FROM {_parquet(path)}", f"dataset {ref}")
        for key in self.on:
            if key not in joined:
                raise RecipeError(f"key column '{key}' is not in {ref}{_hint(key, list(joined))}")
            if logical_type(joined[key]) != logical_type(columns[key]):
                raise RecipeError(f"key '{key}' is {logical_type(columns[key])} here but "
                                  f"{logical_type(joined[key])} in {ref}; cast one side first")
        added = self.columns or [name for name in joined if name not in self.on]
        if not added:
            raise RecipeError(f"{ref} has no columns besides the key; nothing to join")
        for name in added:
            _require(name, {k: v for k, v in joined.items() if k not in self.on})
            if name in columns:
                raise RecipeError(f"column '{name}' is in both the data and {ref}; list the "
                                  f"columns to bring with 'columns:', or rename one first")
        self._require_unique_key(con, path, ref)
        ((rows,),) = con.execute(f"SELECT count(*) FROM {_parquet(path)}").fetchall()
        state = _JoinState(dataset=dataset_id, ref=ref, path=stored_as,
                           columns={name: joined[name] for name in added}, rows=int(rows),
                           unmatched=0)
        return state.model_copy(update={"unmatched": self.unmatched(con, sql, state)})

    def _require_unique_key(self, con: duckdb.DuckDBPyConnection, path: str, ref: str) -> None:
        keys = _names(self.on)
        present = " AND ".join(f"{quote_identifier(k)} IS NOT NULL" for k in self.on)
        duplicate = con.execute(f"SELECT {keys}, count(*) FROM {_parquet(path)} WHERE {present} "
                                f"GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchall()
        if duplicate:
            *value, times = duplicate[0]
            shown = value[0] if len(value) == 1 else tuple(value)
            raise RecipeError(f"key {', '.join(map(repr, self.on))} is not unique in {ref}: "
                              f"{shown!r} appears {times} times; a join needs one row per key "
                              f"there, so dedupe {ref} or join on more columns")

    def unmatched(self, con: duckdb.DuckDBPyConnection, sql: str, state: Any) -> int:
        """How many rows of ``sql`` find no row with their key in the joined version."""
        match = " AND ".join(f"j.{k} = i.{k}" for k in map(quote_identifier, self.on))
        ((count,),) = con.execute(
            f"SELECT count(*) FROM ({sql}) AS i WHERE NOT EXISTS "
            f"(SELECT 1 FROM {_parquet(self._file(state))} AS j WHERE {match})").fetchall()
        return int(count)

    def _sql(self, sql: str, state: Any) -> str:
        match = " AND ".join(f"__i.{k} = __j.{k}" for k in map(quote_identifier, self.on))
        added = ", ".join(f"__j.{quote_identifier(name)}" for name in state.columns)
        return (f"SELECT __i.*, {added} FROM ({sql}) AS __i {self.how.upper()} JOIN "
                f"{_parquet(self._file(state))} AS __j ON {match}")

    def _file(self, state: Any) -> str:
        """The joined version's Parquet file in the workspace this step was bound in."""
        if self._source is None or self._source[0] != state.dataset:
            raise RecipeError(f"the join with {state.ref} is replayed outside a workspace; "
                              "apply the fitted recipe through the workspace that holds "
                              f"{state.ref} (mlstrata clean, predict or test run in the project)")
        return self._source[2]


_STEPS: dict[str, type[Step]] = {
    cls.kind: cls for cls in (Cast, Rename, Drop, Derive, Impute, Outliers, Dedupe, Filter, Join)
}


# -- recipes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """An ordered list of unfitted steps read from ``source`` (a file name, for messages)."""

    steps: tuple[Step, ...]
    source: str = "recipe"

    def fit(self, con: duckdb.DuckDBPyConnection, relation_sql: str) -> FittedRecipe:
        """Fit each step on the training rows as transformed by the steps before it."""
        sql, fitted = with_positions(relation_sql), []
        for number, step in enumerate(self.steps, start=1):
            with _step_context(self.source, number, step):
                fitted_step, sql = _advance(con, sql, step, None)
            fitted.append(fitted_step)
        return FittedRecipe(tuple(fitted), self.source)


@dataclass(frozen=True)
class FittedRecipe:
    """A recipe whose steps carry frozen statistics; applying it never refits."""

    steps: tuple[FittedStep, ...]
    source: str = "recipe"

    def stages(self, con: duckdb.DuckDBPyConnection, input_sql: str) -> list[str]:
        """The SQL after each step (rows carry ``__mlstrata_pos``), checked against the input."""
        sql, stages = with_positions(input_sql), []
        for number, fitted in enumerate(self.steps, start=1):
            with _step_context(self.source, number, fitted.step):
                _, sql = _advance(con, sql, fitted.step, fitted.state)
            stages.append(sql)
        return stages

    def to_dict(self) -> dict[str, Any]:
        """The stored form: schema version and every step with its ``fitted`` statistics."""
        return {"schema_version": SCHEMA_VERSION, "steps": [s.to_dict() for s in self.steps]}

    def to_yaml(self) -> str:
        """The stored form as YAML text (byte-identical for identical recipes and statistics)."""
        return dump_yaml(self.to_dict())


def with_positions(input_sql: str) -> str:
    """``input_sql`` with each row's position (0, 1, ...) added as ``__mlstrata_pos``."""
    return f"SELECT *, row_number() OVER () - 1 AS {POSITION} FROM ({input_sql})"


def apply_fitted(con: duckdb.DuckDBPyConnection, fitted: FittedRecipe, input_sql: str) -> str:
    """SQL for ``input_sql`` cleaned by ``fitted``, in input order, without refitting.

    >>> con = duckdb.connect()
    >>> recipe = parse_recipe({"steps": [{"impute": {"columns": ["x"], "strategy": "mean"}}]})
    >>> fitted = recipe.fit(con, "SELECT * FROM (VALUES (1.0), (3.0)) t(x)")
    >>> con.sql(apply_fitted(con, fitted, "SELECT * FROM (VALUES (NULL), (5.0)) t(x)")).fetchall()
    [(2.0,), (5.0,)]
    """
    return without_positions(fitted.stages(con, input_sql)[-1])


def without_positions(stage_sql: str) -> str:
    """The rows of a stage (see :meth:`FittedRecipe.stages`) in input order, positions removed."""
    return f"SELECT * EXCLUDE ({POSITION}) FROM ({stage_sql}) ORDER BY {POSITION}"


def load_recipe(path: Path) -> Recipe | FittedRecipe:
    """Read a recipe file (YAML or JSON); fitted when its steps carry ``fitted`` statistics."""
    return parse_recipe(read_yaml(path, RecipeError), source=path.name)


def parse_recipe(data: Any, source: str = "recipe") -> Recipe | FittedRecipe:
    """Validate parsed YAML/JSON as a recipe; every step fitted, or none."""
    if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
        raise RecipeError(f"{source}: a recipe is a mapping with a 'steps:' list; add one")
    extra = set(data) - {"steps", "schema_version", "description"}
    if extra:
        raise RecipeError(f"{source}: key '{sorted(extra)[0]}' is not allowed; "
                          f"a recipe has 'steps' (and optionally 'description')")
    if not data["steps"]:
        raise RecipeError(f"{source}: 'steps' is empty; add at least one step")
    parsed = [_parse_step(item, number, source)
              for number, item in enumerate(data["steps"], start=1)]
    states = [state for _, state in parsed]
    if all(state is None for state in states):
        return Recipe(tuple(step for step, _ in parsed), source)
    missing = next((n for n, state in enumerate(states, start=1) if state is None), None)
    if missing is not None:
        raise RecipeError(f"{source}: step {missing} ({parsed[missing - 1][0].kind}) has no "
                          f"'fitted' statistics while other steps do; remove every 'fitted' "
                          f"key to refit, or restore the stored recipe")
    return FittedRecipe(tuple(FittedStep(step, state) for step, state in parsed
                              if state is not None), source)


def _parse_step(item: Any, number: int, source: str) -> tuple[Step, BaseModel | None]:
    keys = [key for key in item if key != "fitted"] if isinstance(item, Mapping) else []
    if len(keys) != 1:
        raise RecipeError(f"{source}: step {number} must be one 'kind: {{parameters}}' mapping, "
                          f"like '- drop: {{columns: [id]}}'; got {item!r}")
    kind = str(keys[0])
    where = f"{source}: step {number} ({kind})"
    if kind not in _STEPS:
        raise RecipeError(f"{where}: unknown step kind{_hint(kind, list(_STEPS))}; "
                          f"use one of: {', '.join(_STEPS)}")
    step_class = _STEPS[kind]
    step = parse_model(item[kind] or {}, step_class, RecipeError, source=where)
    if "fitted" not in item:
        return step, None
    return step, parse_model(item["fitted"], step_class.State, RecipeError, f"{where} fitted")


# -- helpers ------------------------------------------------------------------------------------


def _advance(con: duckdb.DuckDBPyConnection, sql: str, step: Step, state: BaseModel | None
             ) -> tuple[FittedStep, str]:
    """Check ``step`` against the input, fit it unless ``state`` is given, and build its SQL."""
    columns = _describe(con, sql, "the step's input")
    step._check(columns)
    if state is None:
        state = step._fit(con, sql, columns)
    step._verify(con, sql)
    out = step._sql(sql, state)
    _describe(con, out, step._blame())
    return FittedStep(step, state), out


def _describe(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> dict[str, str]:
    """Column name → engine type of ``sql`` (binding only, no rows read)."""
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise RecipeError(f"{what} does not run: {_one_line(exc)}; fix it") from exc
    return {name: str(dtype) for name, dtype in zip(relation.columns, relation.types, strict=True)
            if name != POSITION}


@contextlib.contextmanager
def _step_context(source: str, number: int, step: Step) -> Iterator[None]:
    """Prefix errors raised inside with the recipe file, step number and step kind."""
    try:
        yield
    except RecipeError as exc:
        raise RecipeError(f"{source}: step {number} ({step.kind}): {exc}") from exc


def _require(name: str, columns: Mapping[str, str]) -> None:
    if name not in columns:
        hint = _hint(name, list(columns))
        shown = ", ".join(list(columns)[:12]) + (", ..." if len(columns) > 12 else "")
        raise RecipeError(f"column '{name}' does not exist{hint}; columns here: {shown}")


def _require_numeric(names: Sequence[str], columns: Mapping[str, str], what: str) -> None:
    for name in names:
        if logical_type(columns[name]) not in ("integer", "float"):
            raise RecipeError(f"column '{name}' is {logical_type(columns[name])}, but {what} "
                              f"needs numbers; cast it first or choose another column")


def _hint(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without its SQL excerpt, on one line."""
    text = str(exc).split("\nLINE ")[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _parquet(path: str) -> str:
    return parquet_scan(path)


def _names(columns: Sequence[str]) -> str:
    return ", ".join(quote_identifier(name) for name in columns)


def _scalar(value: Any) -> Scalar:
    """A JSON/YAML-safe form of a DuckDB value (dates, decimals... as their text)."""
    return value if isinstance(value, bool | int | float | str) else str(value)


def _literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return quote_literal(value)


def _inside(name: str, fence: _Fence) -> str:
    col = quote_identifier(name)
    tests = [f"{col} >= {fence.lower!r}" if fence.lower is not None else "",
             f"{col} <= {fence.upper!r}" if fence.upper is not None else ""]
    return f"({col} IS NULL OR ({' AND '.join(t for t in tests if t)}))"


def _clip(name: str, fence: _Fence) -> str:
    col = quote_identifier(name)
    low = f"WHEN {col} < {fence.lower!r} THEN {fence.lower!r} " if fence.lower is not None else ""
    high = f"WHEN {col} > {fence.upper!r} THEN {fence.upper!r} " if fence.upper is not None else ""
    return f"CAST(CASE {low}{high}ELSE {col} END AS {fence.type}) AS {col}"
