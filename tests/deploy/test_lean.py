"""The lean serving distribution: what the wheel holds, that its code imports nothing outside it
but its declared requirements, and the env-configured entry point."""

from __future__ import annotations

import ast
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from mlstrata.deploy.lean import (
    BASE_REQUIREMENTS,
    EXTRAS,
    build_lean_wheel,
    requirements,
    wheel_name,
)
from mlstrata.deploy.output import DeployError
from mlstrata.serve.__main__ import config_from, main

TRAINING_STACK = {"sklearn", "pandas", "mlflow", "duckdb", "pyarrow", "scipy", "skl2onnx",
                  "lightgbm", "xgboost", "typer", "rich", "pydantic", "yaml", "jinja2"}
# Import names of the requirements (base and every extra) beyond the standard library.
REQUIRED_IMPORTS = {"numpy", "onnxruntime", "orjson", "prometheus_client", "uvicorn", "uvloop",
                    "httptools", "grpc", "google", "psycopg", "swagger_ui_bundle",
                    # imported lazily by the serverless front ends of the platform that runs them
                    "flask", "azure"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lean_wheel(tmp_path_factory.mktemp("dist"))


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _read(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name).decode("utf-8")


def test_the_wheel_holds_the_serving_subset_only(wheel: Path) -> None:
    assert wheel.name == wheel_name()
    modules = {name for name in _names(wheel) if name.startswith("mlstrata/")}
    for needed in ("mlstrata/__init__.py", "mlstrata/errors.py", "mlstrata/runtime/model.py",
                   "mlstrata/predlog/writer.py", "mlstrata/serve/app.py",
                   "mlstrata/serve/server.py", "mlstrata/serve/__main__.py",
                   "mlstrata/serve/_proto/grpc_predict_v2_pb2.py"):
        assert needed in modules
    subpackages = {name.split("/")[1] for name in modules if name.count("/") > 1}
    assert subpackages == {"runtime", "predlog", "serve"}
    assert "mlstrata/api.py" not in modules and "mlstrata/cli/main.py" not in modules
    lean_init = _read(wheel, "mlstrata/__init__.py")
    assert "api" not in lean_init.replace("__all__", "")


def test_every_module_of_the_wheel_imports_only_the_wheel_and_its_requirements(
        wheel: Path) -> None:
    modules = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
               for name in _names(wheel) if name.endswith(".py")}
    outside: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".py"):
                package = name.removesuffix(".py").replace("/", ".")
                if not name.endswith("__init__.py"):
                    package = package.rpartition(".")[0]
                else:
                    package = package.removesuffix(".__init__")
                for imported in _imports(archive.read(name), package):
                    top = imported.partition(".")[0]
                    if top == "mlstrata":
                        if imported not in modules and imported.rpartition(".")[0] not in modules:
                            outside.add(f"{name}: {imported}")
                    elif top not in sys.stdlib_module_names and top not in REQUIRED_IMPORTS:
                        outside.add(f"{name}: {imported}")
    assert not outside


def _imports(source: bytes, package: str) -> set[str]:
    """Every module a file imports (at any depth: lazy imports count too), absolute names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if not name.startswith("__future__")}


def test_the_metadata_declares_the_base_and_the_extras(wheel: Path) -> None:
    info = wheel.name.removesuffix("-py3-none-any.whl") + ".dist-info"
    meta = Parser().parsestr(_read(wheel, f"{info}/METADATA"))
    assert meta["Name"] == "mlstrata-serving"
    required = meta.get_all("Requires-Dist")
    assert [r for r in required if "extra" not in r] == list(BASE_REQUIREMENTS)
    assert sorted(meta.get_all("Provides-Extra")) == sorted(EXTRAS)
    assert "uvicorn>=0.30; extra == 'server'" in required
    assert ("uvloop>=0.19; (sys_platform != 'win32') and extra == 'server'" in required)
    assert not any(name in r.lower() for r in required for name in TRAINING_STACK)
    entry_points = _read(wheel, f"{info}/entry_points.txt")
    assert "mlstrata-serve = mlstrata.serve.__main__:main" in entry_points
    record = _read(wheel, f"{info}/RECORD").splitlines()
    assert len(record) == len(_names(wheel))


def test_the_wheel_is_reproducible(wheel: Path, tmp_path: Path) -> None:
    assert build_lean_wheel(tmp_path).read_bytes() == wheel.read_bytes()


def test_requirements_and_bad_extras() -> None:
    assert requirements("server")[-1] == "protobuf>=7.35.1"
    with pytest.raises(DeployError, match="unknown extra 'gpu'.*server"):
        requirements("gpu")


def test_an_unwritable_dist_is_refused_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DeployError, match="cannot write the serving wheel there"):
        build_lean_wheel(blocker / "dist")


def _config(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str):  # type: ignore[no-untyped-def]
    from mlstrata.serve.__main__ import _parser

    _environment(monkeypatch, env)
    return config_from(_parser().parse_args(list(argv)))


def _environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("MLSTRATA_MODEL", "MLSTRATA_HOST", "MLSTRATA_PORT", "MLSTRATA_GRPC_PORT",
                 "MLSTRATA_WORKERS", "MLSTRATA_THREADS", "MLSTRATA_API_KEY", "MLSTRATA_LOG",
                 "MLSTRATA_STRICT", "MLSTRATA_MAX_BODY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_entry_point_reads_the_environment_and_flags_override(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = _config(monkeypatch, {"MLSTRATA_MODEL": str(tmp_path)})
    assert (config.host, config.port, config.grpc_port, config.workers) == ("127.0.0.1", 8080,
                                                                            8081, 1)
    assert config.api_key_env is None and config.log is None and not config.strict
    config = _config(monkeypatch, {
        "MLSTRATA_MODEL": str(tmp_path), "MLSTRATA_HOST": "0.0.0.0", "MLSTRATA_PORT": "9000",
        "MLSTRATA_GRPC_PORT": "", "MLSTRATA_WORKERS": "3", "MLSTRATA_API_KEY": "k",
        "MLSTRATA_LOG": str(tmp_path / "log"), "MLSTRATA_STRICT": "1"}, "--port", "9001")
    assert (config.host, config.port, config.grpc_port, config.workers) == ("0.0.0.0", 9001,
                                                                            None, 3)
    assert config.api_key_env == "MLSTRATA_API_KEY" and config.api_key() == "k"
    assert config.log == str(tmp_path / "log") and config.strict
    assert config.source is not None and config.source.args == (str(tmp_path.resolve()),)


@pytest.mark.parametrize(("env", "argv", "message"), [
    ({"MLSTRATA_PORT": "80a"}, [], "MLSTRATA_PORT='80a': must be a whole number >= 0"),
    ({}, ["--workers", "0"], "--workers '0': must be a whole number >= 1"),
    ({"MLSTRATA_STRICT": "yes"}, [], "MLSTRATA_STRICT='yes': must be 1 or 0"),
    ({"MLSTRATA_MODEL": "/nonexistent/model"}, [],
     "MLSTRATA_MODEL='/nonexistent/model': no such package directory"),
])
def test_a_bad_setting_ends_the_entry_point_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        env: dict[str, str], argv: list[str], message: str) -> None:
    _environment(monkeypatch, {"MLSTRATA_MODEL": str(tmp_path), **env})
    assert main(["--check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_check_verifies_the_package(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], credit_package: Path,
                                    tmp_path: Path) -> None:
    _environment(monkeypatch, {})
    assert main(["--check", "--model", str(credit_package)]) == 0
    assert "credit.model version 1" in capsys.readouterr().out
    altered = tmp_path / "pkg"
    import shutil

    shutil.copytree(credit_package, altered)
    with (altered / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    assert main(["--check", "--model", str(altered)]) == 2
    assert "model.onnx: sha256" in capsys.readouterr().err


def test_the_server_without_its_extra_is_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        credit_package: Path) -> None:
    """The base install (serverless) has no uvicorn or gRPC: the server says which extra."""
    import importlib.util

    import mlstrata.serve.__main__ as entry

    _environment(monkeypatch, {"MLSTRATA_MODEL": str(credit_package)})
    real = importlib.util.find_spec
    monkeypatch.setattr(entry, "find_spec",
                        lambda name: None if name in ("uvicorn", "grpc") else real(name))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "the server needs uvicorn, grpc, not installed here" in err
    assert "mlstrata-serving[server]" in err
