"""Fixtures of the deployment tests: the Docker build context of the credit package and the
fresh venv its Dockerfile's own install commands build (one per session: it downloads and
installs the serving dependencies once)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mlstrata.deploy.docker import DockerContext, render_docker

from ._dockerfile import Replayed, replay


@pytest.fixture(scope="session")
def docker_context(credit_package: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> DockerContext:
    """``mlstrata deploy docker`` of the credit package, rendered once."""
    return render_docker(credit_package, tmp_path_factory.mktemp("docker") / "context")


@pytest.fixture(scope="session")
def image_venv(docker_context: DockerContext, tmp_path_factory: pytest.TempPathFactory
               ) -> Replayed:
    """The image's venv, built by the Dockerfile's builder-stage RUN lines in a fresh venv of
    the base Python, with no mlstrata installed; the package where MLSTRATA_MODEL points."""
    root = tmp_path_factory.mktemp("image")
    shim = root / "base-bin"  # the base image's PATH: `python` is the base interpreter
    shim.mkdir()
    base = Path(getattr(sys, "_base_executable", sys.executable))
    for name in ("python", "python3"):
        (shim / name).symlink_to(base)
    mapped = {"MLSTRATA_VENV": str(root / "opt/mlstrata/venv"),
              "MLSTRATA_MODEL": str(docker_context.out / "model"),
              "MLSTRATA_HOST": "127.0.0.1"}
    return replay(docker_context.out / "Dockerfile", mapped,
                  base_path=os.pathsep.join([str(shim), "/usr/local/bin", "/usr/bin", "/bin"]))
