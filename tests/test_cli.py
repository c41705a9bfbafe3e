"""The ``pyanomaly`` command: declared in pyproject, ``python -m pyanomaly``, every sub-command's ``--help``."""
from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

import pyanomaly
from pyanomaly.cli import COMMANDS

from testutils import REPO, tool_env

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def run_module(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyanomaly", *args], cwd=REPO, env=env or tool_env(),
                          capture_output=True, text=True, timeout=120)


def test_the_console_script_is_declared():
    assert PYPROJECT["project"]["scripts"] == {"pyanomaly": "pyanomaly.cli:main"}


def test_the_version_is_written_once():
    assert "version" in PYPROJECT["project"]["dynamic"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pyanomaly.__version__"}
    assert pyanomaly.__version__.count(".") == 2


def test_dependencies_are_those_of_requirements_and_torch_is_pinned():
    pins = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines() if line.strip()]
    declared = PYPROJECT["project"]["dependencies"]
    export = PYPROJECT["project"]["optional-dependencies"]["export"]  # ONNX: an extra, but installed by CI
    test = PYPROJECT["project"]["optional-dependencies"]["test"]  # pytest and its workers: an extra, installed by CI
    assert "torch==2.14.1" in declared and "torch" in {d.split("==")[0] for d in declared}
    assert all("==" in d for d in declared + export + test), declared + export + test  # never a bare torch
    assert set(declared) | set(export) | set(test) == set(pins)


def test_every_tool_has_its_command():
    assert set(COMMANDS) == {"train", "test", "score", "export", "prepare", "benchmark", "synth"}
    assert {script for _, script, _ in COMMANDS.values()} == {p.name for p in (REPO / "tools").glob("*.py")}


def test_overview():
    done = run_module("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: pyanomaly <command>")
    assert all(name in done.stdout for name in COMMANDS)
    version = run_module("--version")
    assert version.stdout.strip() == f"pyanomaly {pyanomaly.__version__}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help(command):
    done = run_module(command, "--help")
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.startswith(f"usage: pyanomaly {command}")


def test_unknown_command_names_the_closest():
    done = run_module("trian")
    assert done.returncode == 2 and "did you mean 'train'" in done.stderr


def test_import_is_light_and_benchmark_sets_the_wait_policy_before_torch():
    env = {k: v for k, v in tool_env().items() if k != "OMP_WAIT_POLICY"}
    code = ("import os, sys\n"
            "import pyanomaly, pyanomaly.cli\n"
            "assert 'torch' not in sys.modules\n"
            "try:\n    pyanomaly.cli.main(['benchmark', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "PASSIVE True"
