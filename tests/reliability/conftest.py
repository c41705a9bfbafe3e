"""Shared parts of the bad-input catalogue: the tiny config, a finished tiny run, the tool runner."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from testutils import TINY, train_in_process

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
    train_in_process(cfg_file, tiny_synthetic, out, *FAST)
    assert torch.load(out / "checkpoints/last.pth", weights_only=True)["step"] == 2
    return out
