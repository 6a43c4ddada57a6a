"""The public names of the package are exactly the documented ones, and the CLI loads fast."""

from __future__ import annotations

import subprocess
import sys

import mlstrata

EXPECTED = {
    "MlstrataError", "__version__", "clean", "infer_contract", "ingest", "init", "load_contract",
    "open_workspace", "profile", "run", "split", "synth_credit", "validate",
}


def test_public_names() -> None:
    assert set(mlstrata.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(mlstrata, name) is not None


def test_cli_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from mlstrata.cli.main import app\n"
        "heavy = {'matplotlib', 'pandas', 'sklearn', 'mlflow', 'onnxruntime'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
