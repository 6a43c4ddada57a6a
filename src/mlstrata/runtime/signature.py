"""A package's ``signature.json``: what a model takes and what it answers, for every consumer.

The signature is written by ``mlstrata package`` from the data contract and the fitted pipeline,
and read by everything that serves the model — the REST/gRPC server, the model wheel, batch
scoring — so that one description decides what a valid request is:

- ``inputs``: one field per model input column, with its logical type (text, integer, float,
  boolean, date, timestamp), nullability and the contract's rules (``allowed`` categories and
  whether unknown ones are refused — ``strict`` —, ``min``/``max``, ``pattern``), and for a
  number the range its training rows covered (``training_min``/``training_max``: not a rule, it
  names the fields that drove a prediction out of range, see :mod:`.outputs`), and each rule's
  ``severity`` (``{"max": "warn"}``: a value above the maximum is scored with a warning; rules
  not named are errors, except ``allowed`` with ``strict: false``, which warns);
- ``dates``: which date inputs become which numeric parts before the ONNX graph;
- ``onnx_inputs``: the graph's input tensors, in order, with their element type;
- ``outputs``: ``label`` + ``probabilities`` (with the class order) for classifiers, ``value``
  for regressors, ``label`` + ``scores`` for clustering.

Standard library only (part of the lean runtime).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import MlstrataError

__all__ = ["SIGNATURE_FILE", "DateSpec", "InputField", "Severity", "Signature", "SignatureError",
           "class_key"]

Severity = Literal["error", "warn"]
_SEVERITIES = ("error", "warn")

SIGNATURE_FILE = "signature.json"
_LOGICAL_TYPES = ("text", "integer", "float", "boolean", "date", "timestamp")


class SignatureError(MlstrataError):
    """``signature.json`` is missing or does not describe a model mlstrata can serve."""


@dataclass(frozen=True)
class InputField:
    """One model input and the contract's rules for it."""

    name: str
    logical_type: str
    nullable: bool = True
    allowed: tuple[Any, ...] | None = None
    strict: bool = False
    min: Any = None
    max: Any = None
    pattern: str | None = None
    training_min: float | None = None
    training_max: float | None = None
    warn: frozenset[str] = frozenset()
    """The rule kinds (``type``, ``not_null``, ``min``, ``max``, ``allowed``, ``pattern``) whose
    violations are scored with a warning instead of refused."""

    def severity(self, kind: str, strict: bool = False) -> Severity:
        """``warn`` when breaking rule ``kind`` only warns (never under ``strict``), else ``error``.

        >>> field = InputField("lines", "integer", max=13, warn=frozenset({"max"}))
        >>> field.severity("max"), field.severity("max", strict=True), field.severity("type")
        ('warn', 'error', 'error')
        """
        if strict:
            return "error"
        warns = kind in self.warn or (kind == "allowed" and not self.strict)
        return "warn" if warns else "error"

    def enforced(self, strict: bool = False) -> InputField:
        """This field with only the rules that refuse a value (what an OpenAPI document can
        promise): warn rules are dropped, unless ``strict`` makes every rule refuse.

        >>> InputField("lines", "integer", False, max=13, warn=frozenset({"max", "not_null"})
        ...            ).enforced()
        InputField(name='lines', logical_type='integer', nullable=True, allowed=None, \
strict=False, min=None, max=None, pattern=None, training_min=None, training_max=None, \
warn=frozenset())
        """
        def kept(kind: str, value: Any) -> Any:
            return value if self.severity(kind, strict) == "error" else None

        allowed = kept("allowed", self.allowed)
        return dataclasses.replace(
            self, nullable=self.nullable or self.severity("not_null", strict) == "warn",
            allowed=allowed, strict=allowed is not None, min=kept("min", self.min),
            max=kept("max", self.max), pattern=kept("pattern", self.pattern), warn=frozenset())

    @property
    def is_numeric(self) -> bool:
        """True for integer, float and boolean fields (fed to the graph as numbers)."""
        return self.logical_type in ("integer", "float", "boolean")

    @property
    def is_date(self) -> bool:
        """True for date and timestamp fields (ISO 8601 strings on the wire)."""
        return self.logical_type in ("date", "timestamp")


@dataclass(frozen=True)
class DateSpec:
    """A date input and the parts it is expanded into (see :mod:`mlstrata.runtime.dates`)."""

    column: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Signature:
    """The parsed ``signature.json`` of a model package."""

    model: str
    task: str
    target: str | None
    inputs: tuple[InputField, ...]
    dates: tuple[DateSpec, ...]
    onnx_inputs: tuple[tuple[str, str], ...]
    outputs: tuple[dict[str, Any], ...]

    @property
    def input_names(self) -> list[str]:
        """The names of the model's input fields, in signature order."""
        return [field.name for field in self.inputs]

    @property
    def classes(self) -> list[Any] | None:
        """The class labels in probability-column order (classifiers), else None."""
        for output in self.outputs:
            if output.get("name") == "probabilities":
                return list(output.get("classes") or [])
        return None

    def user_labels(self, labels: Any) -> Any:
        """The graph's ``label`` output as the user's labels: ONNX has no boolean class labels,
        so a boolean target comes out of the graph as 0/1 and goes back to False/True here."""
        classes = self.classes
        if classes and all(isinstance(c, bool) for c in classes):
            return labels.astype(bool)
        return labels

    @classmethod
    def from_file(cls, path: Path) -> Signature:
        """Read and check ``signature.json``; a :class:`SignatureError` names what is wrong."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SignatureError(f"{path}: missing; rebuild the package with "
                                 "'mlstrata package MODEL'") from exc
        except (OSError, ValueError) as exc:
            raise SignatureError(f"{path}: unreadable ({exc}); rebuild the package") from exc
        try:
            return cls._from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise SignatureError(f"{path}: not a valid signature ({exc}); rebuild the package "
                                 "with 'mlstrata package MODEL'") from exc

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Signature:
        inputs = tuple(_input_field(item) for item in data["inputs"])
        dates = tuple(DateSpec(str(d["column"]), tuple(d["parts"])) for d in data.get("dates", []))
        onnx_inputs = tuple((str(i["name"]), str(i["onnx_type"])) for i in data["onnx_inputs"])
        return cls(model=str(data["model"]), task=str(data["task"]), target=data.get("target"),
                   inputs=inputs, dates=dates, onnx_inputs=onnx_inputs,
                   outputs=tuple(dict(o) for o in data["outputs"]))


def class_key(label: Any) -> str:
    """A class label as a JSON object key or column-name suffix, spelled as JSON spells it.

    >>> [class_key(c) for c in (True, 2, "yes")]
    ['true', '2', 'yes']
    """
    return json.dumps(label) if isinstance(label, bool) else str(label)


def _input_field(item: dict[str, Any]) -> InputField:
    logical = str(item.get("logical_type") or "text")
    if logical not in _LOGICAL_TYPES:
        raise ValueError(f"input {item.get('name')!r} has unknown logical_type {logical!r}")
    allowed = item.get("allowed")
    severity = item.get("severity") or {}
    if not isinstance(severity, dict) or any(v not in _SEVERITIES for v in severity.values()):
        raise ValueError(f"input {item.get('name')!r} has a severity that is not a mapping of "
                         f"rules to error or warn: {severity!r}")
    strict = bool(item.get("strict", False))
    warn = {kind for kind, level in severity.items() if level == "warn"}
    if "allowed" in severity:  # the severity decides; strict is for older runtimes
        strict = severity["allowed"] == "error"
    return InputField(
        name=str(item["name"]), logical_type=logical, nullable=bool(item.get("nullable", True)),
        allowed=tuple(allowed) if allowed is not None else None,
        strict=strict, min=item.get("min"), max=item.get("max"),
        pattern=item.get("pattern"), training_min=_number(item.get("training_min")),
        training_max=_number(item.get("training_max")), warn=frozenset(warn))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
