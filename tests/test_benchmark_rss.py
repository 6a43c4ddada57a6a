"""The benchmarks' peak RSS is the measured command's own, not the benchmark process's memory."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

RSS = Path(__file__).resolve().parents[1] / "benchmarks" / "_rss.py"
TINY = [sys.executable, "-S", "-c", "pass"]
MB = 1 << 20


@pytest.fixture(scope="module")
def rss() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_rss", RSS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and the trap are Linux's")
def test_a_fat_parent_does_not_leak_into_the_childs_peak(rss: ModuleType) -> None:
    fat = b"\x01" * (500 * MB)  # resident: bytes are written, not lazily mapped
    pid = os.posix_spawn(TINY[0], TINY, os.environ)  # what subprocess does (vfork + exec)
    _, _, usage = os.wait4(pid, 0)
    # The trap is real here, else this test would prove nothing: spawn + wait4 reads ~500 MB.
    assert usage.ru_maxrss / 1024 >= 500
    measured = rss.run_measured(TINY)
    del fat
    assert measured.exit_code == 0
    assert measured.peak_rss_mb < 100, measured


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and the trap are Linux's")
def test_the_childs_own_peak_output_exit_code_and_cpu_are_reported(
        rss: ModuleType, tmp_path: Path) -> None:
    code = ("import os, sys; big = b'\\x01' * (200 << 20); del big; "
            "print(sorted(os.sched_getaffinity(0)), os.getcwd()); sys.exit(3)")
    measured = rss.run_measured([sys.executable, "-S", "-c", code], cwd=tmp_path, cpus="0",
                                capture=True)
    assert measured.peak_rss_mb >= 200
    assert measured.stdout.split() == ["[0]", str(tmp_path)]
    assert measured.exit_code == 3 and measured.seconds > 0


def test_a_command_that_cannot_start_is_an_error(rss: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="could not run 'no-such-command-here'"):
        rss.run_measured(["no-such-command-here"])
