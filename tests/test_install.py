"""A regular (not editable) install works away from the repository: the package, its console
command and its Python API come from site-packages, with nothing read from the source tree.

The virtual environment borrows the already installed dependencies (``--system-site-packages``)
so that only pyanomaly itself is built and installed; a run from a folder outside the clone
then trains a tiny model with ``pyanomaly train`` and scores a clip with ``pyanomaly.load``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from testutils import REPO, TWO_LAYER_PREDNET

pytestmark = pytest.mark.slow

TINY = TWO_LAYER_PREDNET + """
DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [32, 32]
TRAIN:
  MAX_STEPS: 2
  BATCH_SIZE: 2
  EVAL_PERIOD: 0
  TENSORBOARD: False
EVAL:
  PLOTS: False
LOG:
  PROGRESS: False
"""

API = """
import sys
import numpy as np
import pyanomaly
print(pyanomaly.__file__)
det = pyanomaly.load("run/checkpoints/last.pth")
frames = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 1), dtype=np.uint8)
result = det.score(frames)
print(len(result.scores), pyanomaly.__version__)
"""


def test_a_regular_install_runs_outside_the_clone(tmp_path, tiny_synthetic):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # pip of the outer interpreter installs into the venv's prefix (a venv without its own pip)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # built from a copy of what a source distribution holds, so that nothing left in the
    # clone (a build/ folder of an earlier build) can slip into the install
    src = tmp_path / "src"
    shutil.copytree(REPO / "pyanomaly", src / "pyanomaly", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--no-build-isolation", "--target", site, str(src)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    installed = Path(site) / "pyanomaly"
    assert (installed / "__init__.py").is_file() and not (installed / "__init__.py").is_symlink()
    bin_ = Path(site) / "bin" / "pyanomaly"  # --target puts the console script here
    assert bin_.is_file(), sorted(p.name for p in Path(site).iterdir())

    work = tmp_path / "elsewhere"  # no configs/, no tools/, no pyanomaly/ source beside it
    work.mkdir()
    cfg = work / "tiny.yaml"
    cfg.write_text(TINY)
    r = subprocess.run([str(py), str(bin_), "train", "--cfg", str(cfg), "SYSTEM.OUTPUT_DIR", "run",
                        "DATASET.ROOT", str(tiny_synthetic)],
                       cwd=work, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (work / "run" / "checkpoints" / "last.pth").is_file() and (work / "run" / "metrics.json").is_file()

    r = subprocess.run([str(py), "-c", API], cwd=work, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    where, scored = r.stdout.strip().splitlines()[-2:]
    assert Path(where).resolve().is_relative_to(Path(site).resolve()), where  # not the clone's source
    assert scored.split()[0] == "6"
