"""Champion and shadow challenger on the same live traffic, from the prediction log.

A server started with ``serve NAME@champion --shadow NAME@challenger`` logs every request twice:
the champion's answer and the challenger's shadow prediction (source ``shadow``), under the same
request id and record number (see :mod:`mlstrata.serve.shadow`). This view pairs the two lines of
each record and reports how often the two models agree, how far apart their probabilities are,
and — on the records that got feedback labels — each model's accuracy (and ROC AUC for a binary
model), so a team can judge the challenger on real requests before promoting it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from ..errors import DataError, MlstrataError
from ..monitor.logreader import LogQuery, open_log
from ..monitor.windows import Window
from ..reports import Report, html_page, paragraph, table
from ..runtime.manifest import load_manifest

__all__ = ["ShadowReport", "shadow_report"]

_SHADOW = "shadow"


@dataclass
class ShadowReport(Report):
    """The paired view of one champion and its shadow on logged traffic."""

    model: str
    champion: int
    challenger: int
    champion_records: int
    pairs: int
    agreement: float | None
    mean_probability_gap: float | None
    labelled: int
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"model": self.model, "champion_version": self.champion,
                "challenger_version": self.challenger,
                "champion_records": self.champion_records, "paired_records": self.pairs,
                "shadowed_share": self.pairs / self.champion_records
                if self.champion_records else None,
                "agreement": self.agreement, "mean_probability_gap": self.mean_probability_gap,
                "labelled_pairs": self.labelled, "metrics": self.metrics}

    def summary(self) -> str:
        """One line: pairs, agreement and the labelled comparison."""
        if not self.pairs:
            return (f"no shadowed record of {self.model} v{self.challenger} beside v"
                    f"{self.champion} in the log yet")
        line = (f"{self.pairs} of {self.champion_records} records shadowed; the models agree on "
                f"{self.agreement:.1%}")
        if self.labelled:
            old = self.metrics["champion"].get("accuracy")
            new = self.metrics["challenger"].get("accuracy")
            line += (f"; on {self.labelled} labelled records accuracy {old:.3f} (champion) vs "
                     f"{new:.3f} (challenger)")
        return line

    def render_terminal(self, console: Console) -> None:
        """The metric table and the summary line."""
        grid = Table("", f"champion v{self.champion}", f"challenger v{self.challenger}",
                     title=f"{self.model}: champion vs shadow challenger on live traffic")
        for metric in sorted({m for values in self.metrics.values() for m in values}):
            grid.add_row(metric, *(_fmt(self.metrics.get(side, {}).get(metric))
                                   for side in ("champion", "challenger")))
        if self.metrics:
            console.print(grid)
        console.print(self.summary(), highlight=False)

    def to_html(self) -> str:
        """One page with the same figures."""
        rows = [{"model": side, **values} for side, values in self.metrics.items()]
        return html_page(f"{self.model}: champion vs shadow challenger",
                         [("Summary", [paragraph(self.summary())]),
                          ("Labelled records", [table(rows)] if rows else [])],
                         facts=self.to_dict())


def shadow_report(log: str | Path, champion: Path, challenger: Path) -> ShadowReport:
    """Pair the champion's and the shadow's lines of the packages ``champion`` and
    ``challenger`` in the prediction log ``log``: a directory or a ``postgresql://`` URL."""
    name, old = load_manifest(champion).log_identity
    other, new = load_manifest(challenger).log_identity
    if other != name:
        raise MlstrataError(f"{challenger} is a version of {other}, not of {name}; shadow a "
                            "challenger of the same model")
    served, shadowed, given = _logged(log, name, old, new)
    keys = [key for key in served if key in shadowed]
    labels = {k: given.get(k, given.get((k[0], None))) for k in keys}  # per record or request
    agree = [str(served[k]["prediction"]) == str(shadowed[k]["prediction"]) for k in keys]
    gaps = [g for k in keys if (g := _gap(served[k], shadowed[k])) is not None]
    labelled = [k for k in keys if labels.get(k) is not None]
    metrics = {side: _metrics([lines[k] for k in labelled], [labels[k] for k in labelled])
               for side, lines in (("champion", served), ("challenger", shadowed))
               } if labelled else {}
    return ShadowReport(name, old, new, len(served), len(keys),
                        sum(agree) / len(agree) if agree else None,
                        sum(gaps) / len(gaps) if gaps else None, len(labelled), metrics)


_Keyed = dict[tuple[Any, Any], dict[str, Any]]


def _logged(log: str | Path, name: str, old: int, new: int
            ) -> tuple[_Keyed, _Keyed, dict[tuple[Any, Any], Any]]:
    """Version ``old``'s served lines, version ``new``'s shadow lines (by request id and
    record) and the model's feedback labels, read as ``mlstrata monitor`` reads a log (a
    PostgreSQL log copied out through a server-side cursor)."""
    query = LogQuery(name, old, None, None, Window(seconds=86_400))
    with open_log(log, query) as champion, \
            open_log(log, dataclasses.replace(query, version=new)) as challenger:
        served = {_key(line): line for line in _read(champion.prediction_files)
                  if line.get("source") != _SHADOW}
        shadowed = {_key(line): line for line in _read(challenger.prediction_files)
                    if line.get("source") == _SHADOW}
        given = {_key(line): line.get("label") for line in _read(champion.feedback_files)}
    return served, shadowed, given


def _key(line: dict[str, Any]) -> tuple[Any, Any]:
    return line.get("request_id"), line.get("record")


def _read(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The JSON lines of ``files``; a line that does not parse (one being written) is skipped,
    a file that cannot be read is an error naming it (a silently shorter report would compare
    other pairs)."""
    for path in files:
        try:
            with path.open("rb") as handle:
                for raw in handle:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        yield orjson.loads(raw)
        except OSError as exc:
            raise DataError(f"{path}: the prediction log could not be read ({exc.strerror}); "
                            "fix its permissions or restore it, then run the report again") \
                from exc


def _gap(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """The largest absolute difference between the two lines' class probabilities."""
    p, q = a.get("probabilities"), b.get("probabilities")
    if not isinstance(p, dict) or not isinstance(q, dict) or set(p) != set(q):
        return None
    return max(abs(float(p[c]) - float(q[c])) for c in p)


def _metrics(lines: list[dict[str, Any]], labels: list[Any]) -> dict[str, float | None]:
    """Accuracy, and ROC AUC when the lines hold two class probabilities."""
    accuracy = sum(str(line["prediction"]) == str(label) for line, label in zip(
        lines, labels, strict=True)) / len(lines)
    found: dict[str, float | None] = {"accuracy": accuracy}
    probabilities = [line.get("probabilities") for line in lines]
    if all(isinstance(p, dict) and len(p) == 2 for p in probabilities):
        from sklearn.metrics import roc_auc_score

        positive = list(probabilities[0])[1]  # type: ignore[arg-type]
        truth = [str(label) == str(positive) for label in labels]
        scores = [float(p[positive]) for p in probabilities]  # type: ignore[index]
        found["roc_auc"] = roc_auc_score(truth, scores) if len(set(truth)) == 2 else None
    return found


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
