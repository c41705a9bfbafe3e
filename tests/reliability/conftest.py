"""Shared parts of the bad-input catalogue: the tiny config, a finished tiny run, the tool runner."""
from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

import pytest
import torch

from testutils import REPO, TINY

# Steps, periods and outputs that keep a run to a few seconds.
FAST = ["TRAIN.MAX_STEPS", "2", "TRAIN.CHECKPOINT_PERIOD", "2", "TRAIN.EVAL_PERIOD", "0", "EVAL.PLOTS", "False",
        "EVAL.REPORT", "False", "TRAIN.TENSORBOARD", "False"]


@pytest.fixture(autouse=True)
def _restore_logging(restore_logging):
    """The runs reconfigure the ``pyanomaly`` logger."""


@pytest.fixture(scope="session")
def cfg_file(tmp_path_factory) -> Path:
    """The tiny PredNet config as a YAML file."""
    path = tmp_path_factory.mktemp("reliability-cfg") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="session")
def finished(tmp_path_factory, cfg_file, tiny_synthetic) -> Path:
    """A finished tiny run directory (2 steps): checkpoints/last.pth and best.pth, metrics.json, scores/."""
    out = tmp_path_factory.mktemp("reliability-run") / "run"
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["train.py", "--cfg", str(cfg_file), "DATASET.ROOT", str(tiny_synthetic),
                             "SYSTEM.OUTPUT_DIR", str(out), *FAST])
    log = logging.getLogger("pyanomaly")
    saved = list(log.handlers), log.level, log.propagate
    try:
        runpy.run_path(str(REPO / "tools/train.py"), run_name="__main__")
    finally:
        mp.undo()
        for h in log.handlers:
            if h not in saved[0]:
                h.close()
        log.handlers[:], log.level, log.propagate = saved
    assert torch.load(out / "checkpoints/last.pth", weights_only=True)["step"] == 2
    return out
