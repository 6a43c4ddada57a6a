"""What an online model is, frozen when it is created: contract, target, task, features, model.

An :class:`OnlineSpec` is stored as a workspace artifact (kind ``online``, named for the model)
and never changes afterwards: recovery rebuilds the very same pipeline from it, whatever
``mlstrata.yaml`` says later. It decides:

- the task — a classifier when the target is boolean, text, or a number the contract lists
  ``allowed`` values for (``mlstrata.data.target.classify_task`` decides binary or multiclass as
  for batch training), a regressor otherwise — and, for a classifier, the ordered classes;
- each feature's role: ``numbers`` (integer, float, boolean), ``categories`` (text) and
  ``dates`` (expanded into the parts ``model.features.date_parts`` names, as at training time);
  the target and the columns in ``online.drop`` are left out, and so are, unless ``online.keep``
  names them, identifiers, hashed or masked PII and text with too many categories
  (:mod:`mlstrata.online.columns` finds them, by the rules of batch training); ``excluded``
  records each column left out with the reason.

>>> from mlstrata.contract import Contract
>>> contract = Contract.model_validate({"columns": {
...     "age": {"type": "integer"}, "city": {"type": "text"}, "opened": {"type": "date"},
...     "paid": {"type": "text", "allowed": ["no", "yes"]}}})
>>> spec = build_spec("loans", contract, "paid", "knn")
>>> spec.task, spec.classes, spec.numbers, spec.categories, spec.dates
('classification', ('no', 'yes'), ('age',), ('city',), ('opened',))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..contract import Contract, did_you_mean
from ..errors import ConfigError, ContractError
from .estimators import check_model_kind

__all__ = ["SPEC_KIND", "SPEC_VERSION", "OnlineSpec", "Task", "build_spec"]

SPEC_KIND = "online"
SPEC_VERSION = 1
Task = Literal["classification", "regression"]
_NUMBERS = ("integer", "float", "boolean")
_DATES = ("date", "timestamp")
_DEFAULT_DATE_PARTS = ("year", "month", "dayofweek", "cyclical")


@dataclass(frozen=True)
class OnlineSpec:
    """The frozen definition of one online model (see the module docstring)."""

    name: str
    contract: Contract
    target: str
    task: Task
    model: str
    classes: tuple[Any, ...] = ()
    numbers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    date_parts: tuple[str, ...] = _DEFAULT_DATE_PARTS
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    warm_start: str | None = None
    """The id of the dataset version whose rows the model learnt before its first event."""
    excluded: tuple[Mapping[str, str], ...] = ()
    """``{column, reason, detail}`` of each contract column left out (the target excepted)."""

    def to_json(self) -> str:
        """The spec as the JSON text of its artifact (contract columns in their order)."""
        body = {"schema_version": SPEC_VERSION, "name": self.name, "target": self.target,
                "task": self.task, "model": self.model, "classes": list(self.classes),
                "numbers": list(self.numbers), "categories": list(self.categories),
                "dates": list(self.dates), "date_parts": list(self.date_parts),
                "params": dict(self.params), "seed": self.seed, "warm_start": self.warm_start,
                "excluded": [dict(e) for e in self.excluded],
                "contract": self.contract.model_dump(mode="json")}
        return json.dumps(body, indent=2)

    @classmethod
    def from_json(cls, text: str) -> OnlineSpec:
        """Read a spec written by :meth:`to_json`."""
        body = json.loads(text)
        if body.get("schema_version") != SPEC_VERSION:
            raise ContractError(f"online model spec version {body.get('schema_version')!r} is "
                                f"not {SPEC_VERSION}; upgrade mlstrata to read it")
        return cls(name=body["name"], contract=Contract.model_validate(body["contract"]),
                   target=body["target"], task=body["task"], model=body["model"],
                   classes=tuple(body["classes"]),
                   numbers=tuple(body["numbers"]), categories=tuple(body["categories"]),
                   dates=tuple(body["dates"]), date_parts=tuple(body["date_parts"]),
                   params=body["params"], seed=body["seed"], warm_start=body["warm_start"],
                   excluded=tuple(body.get("excluded", ())))

    @property
    def features(self) -> tuple[str, ...]:
        """Every input column the model reads, in contract order."""
        used = {*self.numbers, *self.categories, *self.dates}
        return tuple(name for name in self.contract.columns if name in used)


def build_spec(name: str, contract: Contract, target: str, model: str, *,
               classes: Sequence[Any] | None = None, params: Mapping[str, Any] | None = None,
               seed: int = 0, drop: Sequence[str] = (), keep: Sequence[str] = (),
               findings: Sequence[Mapping[str, str]] | None = None,
               date_parts: Sequence[str] = _DEFAULT_DATE_PARTS,
               warm_start: str | None = None) -> OnlineSpec:
    """The spec of a new online model; ``classes`` (e.g. counted in a dataset) override the
    contract's for a classifier. ``findings`` are :func:`mlstrata.online.columns.left_out`'s
    (default: from the contract alone); those ``keep`` names are not left out, ``drop`` always
    is. Errors name the column or setting and the fix."""
    if target not in contract.columns:
        raise ContractError(f"target '{target}' is not a column of the contract"
                            f"{did_you_mean(target, list(contract.columns))}; pass --target "
                            "with one of its columns")
    found = _classes(contract, target) if classes is None else tuple(classes)
    task: Task = "classification" if found else "regression"
    check_model_kind(model, task)
    excluded = _excluded(contract, target, drop, keep, findings)
    roles = _roles(contract, {target, *(e["column"] for e in excluded)})
    return OnlineSpec(name=name, contract=contract, target=target, task=task, model=model,
                      classes=found, numbers=roles["numbers"], categories=roles["categories"],
                      dates=roles["dates"], date_parts=tuple(date_parts),
                      params=dict(params or {}), seed=seed, warm_start=warm_start,
                      excluded=tuple(excluded))


def _excluded(contract: Contract, target: str, drop: Sequence[str], keep: Sequence[str],
              findings: Sequence[Mapping[str, str]] | None) -> list[dict[str, str]]:
    """The columns left out: ``online.drop``, then the findings ``online.keep`` does not name.

    Both settings serve every online model of the project, so a name another model's contract
    has is passed over here; the target, or a near miss of one of this contract's columns (a
    typo), is refused."""
    from .columns import left_out

    for key, names in (("drop", drop), ("keep", keep)):
        for column in names:
            hint = did_you_mean(column, [c for c in contract.columns if c != target])
            if column == target or (column not in contract.columns and hint):
                raise ConfigError(f"mlstrata.yaml: online.{key} names '{column}', which is not "
                                  f"a feature column of the contract{hint}; name one of its "
                                  "columns or remove it")
    drop = [c for c in drop if c in contract.columns]
    out = [{"column": c, "reason": "dropped", "detail": "listed in online.drop"} for c in drop]
    found = left_out(contract, target) if findings is None else findings
    out += [dict(f) for f in found if f["column"] not in {*drop, *keep}]
    return sorted(out, key=lambda e: list(contract.columns).index(e["column"]))


def _classes(contract: Contract, target: str) -> tuple[Any, ...]:
    """The target's classes as the contract declares them, or () for a regression target."""
    from ..data.target import classify_task

    spec = contract.columns[target]
    if spec.type == "boolean":
        return (False, True)
    if spec.allowed is None:
        if spec.type == "text":
            raise ContractError(f"target '{target}' is text but the contract lists no allowed "
                                "classes; add allowed: [...] to it, or create from --dataset")
        return ()
    integral = all(float(v).is_integer() for v in spec.allowed) if spec.type != "text" else False
    task = classify_task(spec.type, len(spec.allowed), integral)
    return tuple(sorted(spec.allowed)) if task in ("binary", "multiclass") else ()


def _roles(contract: Contract, excluded: set[str]) -> dict[str, tuple[str, ...]]:
    """The feature columns by role, in contract order."""
    roles: dict[str, list[str]] = {"numbers": [], "categories": [], "dates": []}
    for column, spec in contract.columns.items():
        if column in excluded:
            continue
        role = ("numbers" if spec.type in _NUMBERS else "dates" if spec.type in _DATES
                else "categories")
        roles[role].append(column)
    return {role: tuple(columns) for role, columns in roles.items()}

