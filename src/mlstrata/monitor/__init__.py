"""Monitoring: is a deployed model still seeing the data it was trained on, and still right?

- :mod:`.reference` — the reference distributions ``mlstrata package`` stores in a package
  (``reference.json``): every input's training distribution, the validation predictions and
  metrics with bootstrap intervals;
- :mod:`.logreader` — reading the prediction log (JSON Lines or PostgreSQL) out of core with
  DuckDB, in windows;
- :mod:`.sketch`, :mod:`.stats`, :mod:`.drift` — per-window counts on the reference's bins and
  the drift statistics and verdicts (PSI, Kolmogorov-Smirnov, Wasserstein, chi-square,
  Jensen-Shannon, missing rates, new categories);
- :mod:`.decay` — live performance from feedback, against the model's gates and its validation
  intervals;
- :mod:`.check` and :mod:`.report` — one check and its terminal, JSON and HTML forms.

It is not the log *writer* (that is :mod:`mlstrata.predlog`, lean enough for a serving
process) and it never trains or packages. ``mlstrata.package`` calls it to compute a reference.
"""

from __future__ import annotations

from .check import MonitorRequest, run_monitor
from .reference import REFERENCE_FILE, MissingReferenceError, Reference, load_reference
from .report import MonitorReport, WindowResult
from .windows import Window, parse_time, parse_window

__all__ = [
    "REFERENCE_FILE",
    "MissingReferenceError",
    "MonitorReport",
    "MonitorRequest",
    "Reference",
    "Window",
    "WindowResult",
    "load_reference",
    "parse_time",
    "parse_window",
    "run_monitor",
]
