"""Run a rendered Dockerfile's own commands outside Docker (no engine runs on these machines).

:func:`parse` reads the instructions (continuations joined, comments dropped, JSON arrays for
exec form); :func:`replay` plays the install of the builder stage — its ``RUN`` lines, verbatim,
under ``/bin/sh -c`` — and the final stage's exec-form ``RUN`` in a fresh venv, with the image's
paths mapped to a directory through the environment variables the Dockerfile itself uses
(``MLSTRATA_VENV``, ``MLSTRATA_MODEL``), and returns the environment and the argv of the
``ENTRYPOINT``/``CMD`` and ``HEALTHCHECK`` the image would run.

Not replayed: the final stage's shell-form ``RUN`` (creating user 10001 and its directories,
which needs root and changes the machine; the tests check those lines as text) and ``COPY``
(the builder's copies keep the context's relative names, so its ``RUN`` lines run in the
context directory; the final stage's copy the venv and the package to where the variables
point already).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ``ARG`` defaults and the stages of a Dockerfile."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    assert not pending, "a continuation runs past the end of the Dockerfile"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(expand(words[0], args), name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, value = rest.strip().partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, rest.strip()))
    return args, stages


def expand(text: str, env: dict[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` replaced as Docker does in ENV, COPY and friends."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m[1] or m[2], ""), text)


def apply_env(instruction: Instruction, env: dict[str, str], keep: dict[str, str]) -> None:
    """One ``ENV`` instruction (``K=V`` pairs, values quoted as a shell would); variables in
    ``keep`` keep the value given there (the image's paths mapped to a directory)."""
    pairs: dict[str, str] = {}
    for word in shlex.split(instruction.arguments):
        key, sep, value = word.partition("=")
        assert sep, f"ENV {instruction.arguments!r}: use the KEY=VALUE form"
        pairs[key] = keep.get(key, expand(value, env))
    env.update(pairs)  # every pair sees the values from before the instruction, as in Docker


@dataclass(frozen=True)
class Replayed:
    """What the image would run, mapped to this machine."""

    env: dict[str, str]
    entrypoint: list[str]
    healthcheck: list[str]
    venv: Path
    log: str


def replay(dockerfile: Path, mapped: dict[str, str], base_path: str,
           timeout: float = 900) -> Replayed:
    """Install as the builder stage does and prepare the final stage (see the module doc).

    ``mapped`` gives the variables that hold the image's paths (and any other setting the test
    wants); ``base_path`` is the ``PATH`` of the base image (a directory whose ``python`` is
    the base's Python).
    """
    _, stages = parse(dockerfile.read_text())
    assert len(stages) == 2 and stages[0].name == "builder", "a builder and a final stage"
    context = dockerfile.parent
    builder, final = stages
    log: list[str] = []
    env = {"PATH": base_path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    for instruction in builder.instructions:
        if instruction.keyword == "ENV":
            apply_env(instruction, env, mapped)
        elif instruction.keyword == "COPY":
            source, target = shlex.split(instruction.arguments)
            assert source.rstrip("/") == target.rstrip("/").removeprefix("./") or target == "./"
        elif instruction.keyword == "RUN":
            assert instruction.exec_form is None
            log.append(_run(["/bin/sh", "-c", instruction.arguments], env, context, timeout))
    env = {"PATH": base_path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    entrypoint: list[str] = []
    command: list[str] = []
    healthcheck: list[str] = []
    for instruction in final.instructions:
        if instruction.keyword == "ENV":
            apply_env(instruction, env, mapped)
        elif instruction.keyword == "RUN" and instruction.exec_form is not None:
            log.append(_run(instruction.exec_form, env, context, timeout))
        elif instruction.keyword == "ENTRYPOINT":
            entrypoint = instruction.exec_form or []
        elif instruction.keyword == "CMD":
            command = instruction.exec_form or []
        elif instruction.keyword == "HEALTHCHECK":
            healthcheck = json.loads(instruction.arguments[instruction.arguments.index("CMD")
                                                           + 3:].strip())
    assert entrypoint, "the final stage has an exec-form ENTRYPOINT"
    return Replayed(env=env, entrypoint=entrypoint + command, healthcheck=healthcheck,
                    venv=Path(env["MLSTRATA_VENV"]), log="\n".join(log))


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr
