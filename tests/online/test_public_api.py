"""The public names of mlstrata.online, and River staying out of a plain import."""

from __future__ import annotations

import subprocess
import sys

import mlstrata.online


def test_public_names() -> None:
    assert set(mlstrata.online.__all__) == {
        "METRICS", "CheckpointCorruptError", "CheckpointPolicy", "CreateRequest", "Created",
        "EventChecker", "EventLog", "EventLogError", "EventRefusedError", "OnlineModel",
        "OnlineModelFailedError", "OnlineSpec", "OnlineStatus", "Prediction", "Recovery",
        "ReplayReport", "build_spec", "create_online", "online_status", "open_online", "replay"}
    for name in mlstrata.online.__all__:
        assert getattr(mlstrata.online, name) is not None


def test_importing_the_package_does_not_import_river() -> None:
    code = "import sys, mlstrata.online; print('river' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
