"""The model card: what the model is for, what it was learned from, how good it is, its limits.

Built from the model artifact's meta and its lineage, rendered to Markdown and to one
self-contained HTML page. Metrics with confidence intervals appear once the acceptance test has
recorded them (``meta["acceptance"]``); gates once ``mlstrata evaluate`` has (``meta["gates"]``).

>>> card = ModelCard("credit", 1, "ab" * 32, "binary", "default", "logistic", [], {}, None, None,
...                  {"max_abs_diff": 1e-8, "label_mismatches": 0, "rows": 10}, [])
>>> "# Model card: credit@1" in card.to_markdown()
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..reports import html_page, paragraph, table

__all__ = ["ModelCard"]


@dataclass(frozen=True)
class ModelCard:
    """The facts a model card shows; :meth:`to_markdown` and :meth:`to_html` render them."""

    name: str
    version: int
    model_id: str
    task: str
    target: str | None
    candidate: str
    lineage: list[dict[str, str]]
    cv: Mapping[str, Any]
    acceptance: Mapping[str, Any] | None
    gates: Mapping[str, Any] | None
    parity: Mapping[str, Any]
    excluded: list[Mapping[str, Any]]
    flavour: str = "onnx"
    """``onnx``, or ``river`` for an online model frozen by ``mlstrata online snapshot``
    (its parity then compares the frozen model with the live one)."""
    notes: tuple[str, ...] = ()
    """Further limitations (a River snapshot's event range, quarantine, warm-start overlap)."""

    @property
    def parity_title(self) -> str:
        """The heading of the parity section."""
        return "ONNX parity" if self.flavour == "onnx" else "Snapshot parity (frozen vs live)"

    @property
    def intended_use(self) -> str:
        """What the model is meant for, in one paragraph."""
        what = {"binary": "a yes/no outcome", "multiclass": "one of several classes",
                "regression": "a numeric value", "clustering": "a segment (cluster)"}
        target = f" '{self.target}'" if self.target else ""
        return (f"Predicts {what.get(self.task, self.task)}{target} for one record or a batch of "
                f"records shaped like the training data ({self.task}, {self.candidate}). Meant "
                "for decision support on data from the same population; validate new data "
                "against the packaged contract before scoring it.")

    @property
    def limitations(self) -> list[str]:
        """Known limits: untested status, excluded features, precision of the ONNX graph."""
        items = ["Learned from historical data: it inherits that data's biases and will drift "
                 "as the population changes; monitor it."]
        if self.acceptance is None:
            items.append("No acceptance test recorded yet: the metrics below are cross-validation "
                         "estimates, not sealed-test results.")
        for item in self.excluded:
            items.append(f"Feature '{item.get('column')}' is not used ({item.get('reason')}).")
        which = "ONNX scores differ from the native model" if self.flavour == "onnx" else \
            "The frozen River model's scores differ from the live model's"
        items.append(f"{which} by at most {self.parity.get('max_abs_diff', 0):.2g} on "
                     f"{self.parity.get('rows')} rows ({self.parity.get('label_mismatches')} "
                     "flipped labels).")
        return [*items, *self.notes]

    def to_markdown(self) -> str:
        """The card as Markdown."""
        lines = [f"# Model card: {self.name}@{self.version}", "",
                 f"- id: `{self.model_id}`", f"- task: {self.task}",
                 f"- target: {self.target or '(none)'}", f"- candidate: {self.candidate}", "",
                 "## Intended use", "", self.intended_use, "", "## Data lineage", ""]
        lines += [f"- {e['role']}: {e['kind']} {e['ref']} `{e['id']}`" for e in self.lineage]
        lines += ["", "## Metrics", "", *_md_table(_metric_rows(self.cv, self.acceptance)), "",
                  "## Gates", "", *_md_table(_gate_rows(self.gates)), "",
                  "## Limitations", "", *[f"- {item}" for item in self.limitations], "",
                  f"## {self.parity_title}", "", *_md_table([dict(self.parity)]), ""]
        return "\n".join(lines)

    def to_html(self) -> str:
        """The card as one self-contained HTML page."""
        facts = {"id": self.model_id, "task": self.task, "target": self.target or "(none)",
                 "candidate": self.candidate}
        sections = [
            ("Intended use", [paragraph(self.intended_use)]),
            ("Data lineage", [table(self.lineage, ["role", "kind", "ref", "id"])]),
            ("Metrics", [table(_metric_rows(self.cv, self.acceptance))]),
            ("Gates", [table(_gate_rows(self.gates))]),
            ("Limitations", [paragraph(item) for item in self.limitations]),
            (self.parity_title, [table([dict(self.parity)])]),
        ]
        return html_page(f"Model card: {self.name}@{self.version}", sections, facts=facts)


def _metric_rows(
    cv: Mapping[str, Any], acceptance: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"metric": name, "source": "cross-validation", "value": _get(v, "mean"),
         "spread": f"± {_get(v, 'std')}", "interval": ""} for name, v in cv.items()]
    metrics = (acceptance or {}).get("metrics", acceptance or {})
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            low = value.get("low", value.get("ci_low"))
            high = value.get("high", value.get("ci_high"))
            rows.append({"metric": name, "source": "acceptance test",
                         "value": value.get("value", value.get("estimate")), "spread": "",
                         "interval": f"[{low}, {high}]" if low is not None else ""})
        elif isinstance(value, int | float):
            rows.append({"metric": name, "source": "acceptance test", "value": value,
                         "spread": "", "interval": ""})
    return rows


def _gate_rows(gates: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not gates:
        return [{"gate": "(not evaluated yet: run 'mlstrata evaluate MODEL')", "result": ""}]
    return [{"gate": name, "result": json.dumps(value, default=str)}
            for name, value in gates.items()]


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else value


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = list(rows[0])
    return ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
            *["| " + " | ".join(_md_cell(row.get(k, "")) for k in keys) + " |" for row in rows]]


def _md_cell(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|")
