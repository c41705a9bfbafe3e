"""Paths, environment and helpers for tests that run the tools (as subprocesses or in this process)."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import torch

from pyanomaly.engine.hooks import HookBase
from pyanomaly.registry import HOOKS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# A two-layer PredNet of 1 and 4 channels: the smallest method that predicts frames, for tests
# that need a model but not what it learns (its MODEL section; a test adds DATASET, TRAIN, ...).
TWO_LAYER_PREDNET = """
MODEL:
  NAME: PredNetPredictor
  ARGS:
    network:
      type: PredNet
      stack_sizes: [1, 4]
      R_stack_sizes: [4, 4]
      A_filter_sizes: [3]
      Ahat_filter_sizes: [3, 3]
      R_filter_sizes: [3, 3]
"""

# The tiniest PredNet run that trains and scores (32x32 frames, clips of 6): the tools' tests use it.
TINY = """
DATASET:
  CLIP_LENGTH: 6
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: PredNetPredictor
  ARGS:
    network:
      type: PredNet
      stack_sizes: [1, 8, 16]
      R_stack_sizes: [8, 8, 16]
      A_filter_sizes: [3, 3]
      Ahat_filter_sizes: [3, 3, 3]
      R_filter_sizes: [3, 3, 3]
TRAIN:
  MAX_STEPS: 100
  BATCH_SIZE: 4
  LR: 0.003
  EVAL_PERIOD: 50
  CHECKPOINT_PERIOD: 50
  LOG_PERIOD: 10
LOG:
  PROGRESS: False
"""


def assert_same_state(a, b, path="ckpt"):
    """Nested checkpoint dicts equal, tensors bit for bit."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (path, set(a) ^ set(b))
        for k in a:
            assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def tool_env() -> dict:
    """The current environment with the repository first on PYTHONPATH, one thread per process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # tiny models; a second thread only adds contention
    return env


def run_tool(*args, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python <args>`` (a ``tools/`` script and its options) in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=tool_env(), capture_output=True, text=True,
                          timeout=600)


class VideoList:
    """What a method's ``fit`` reads of a dataset: videos of frames ``(N, C, H, W)``."""

    def __init__(self, *videos):
        self.data, self.videos = list(videos), list(range(len(videos)))
        self.lengths = [v.shape[0] for v in videos]

    def video_frames(self, i, start=0, stop=None):
        return self.data[i][start:stop]


def run_tool_in_process(capsys, monkeypatch, tool: str, *args) -> tuple[int, str]:
    """Run ``tools/<tool>`` with ``args`` as from the command line, in this process (``runpy``:
    no Python start per case); returns (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", [tool, *map(str, args)])
    capsys.readouterr()
    code = 0
    with pyanomaly_logger_kept():  # the tool's handlers write to capsys's stream, closed after the test
        try:
            runpy.run_path(str(REPO / "tools" / tool), run_name="__main__")
        except SystemExit as exc:
            code = exc.code
    return code, capsys.readouterr().err


@contextlib.contextmanager
def pyanomaly_logger_kept():
    """The ``pyanomaly`` logger's handlers, level and propagation as they were before, after the
    block; handlers the block added are closed."""
    log = logging.getLogger("pyanomaly")
    saved = list(log.handlers), log.level, log.propagate
    try:
        yield
    finally:
        for h in log.handlers:
            if h not in saved[0]:
                h.close()
        log.handlers[:], log.level, log.propagate = saved


def train_in_process(cfg_file: Path, data: Path, out: Path, *overrides: str) -> None:
    """``tools/train.py --cfg cfg_file`` on ``data`` into ``out`` in this process (``runpy``, as the
    command line runs it), outside any test's monkeypatch; the ``pyanomaly`` logger as it was after."""
    import pytest
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["train.py", "--cfg", str(cfg_file), "DATASET.ROOT", str(data),
                             "SYSTEM.OUTPUT_DIR", str(out), *overrides])
    try:
        with pyanomaly_logger_kept():
            runpy.run_path(str(REPO / "tools/train.py"), run_name="__main__")
    finally:
        mp.undo()


def assert_one_clear_error(code: int, err: str, expect: str) -> None:
    """Exit code 2, no traceback, and a last line ``error: ...`` holding ``expect``."""
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and expect in last, err[-2000:]


def moving_bar(batch: int, frames: int, size: int = 8):
    """Clips ``(batch, frames, 1, size, size)``: a bright 2-pixel bar moving right one pixel per frame."""
    import torch
    clip = torch.zeros(batch, frames, 1, size, size)
    for i in range(frames):
        clip[:, i, 0, :, i:i + 2] = 0.9
    return clip


def convlstm_cell(peephole: bool, seed: int = 0):
    """A ``ConvLSTMCell(3, 6, 3)``; with peepholes, their weights random (they start at zero)."""
    import torch

    from pyanomaly.networks.meta import ConvLSTMCell
    torch.manual_seed(seed)
    cell = ConvLSTMCell(3, 6, 3, peephole=peephole)
    if peephole:
        with torch.no_grad():
            for name in ("w_ci", "w_cf", "w_co"):
                getattr(cell, name).normal_()
    return cell



@HOOKS.register_module(force=True)
class PoisonWeightsAt(HookBase):
    """A hook that sets every weight to NaN after step ``step`` (after that step's checkpoint), so
    that the next step's loss is NaN (``TRAIN.CUSTOM_HOOKS [{type: PoisonWeightsAt, step: N}]``,
    in-process runs)."""

    def __init__(self, step: int):
        self.step = step

    def after_step(self):
        if self.trainer.step == self.step:
            with torch.no_grad():
                for p in self.trainer.model.parameters():
                    p.fill_(math.nan)


def moving_texture(frames: int, size: int = 32, speed: int = 1, seed: int = 0):
    """A video ``(frames, 1, size, size)`` in [0, 1]: a smooth random texture sliding right
    ``speed`` pixels a frame (wrapping round), so its optical flow is about ``(speed, 0)`` everywhere."""
    import torch
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, size, size, generator=g)
    texture = torch.nn.functional.avg_pool2d(noise.repeat(1, 1, 3, 3), 5, stride=1, padding=2)[..., size:2 * size,
                                                                                              size:2 * size]
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return torch.cat([texture.roll(speed * t, dims=-1) for t in range(frames)])
