"""Paths and environment for tests that run the tools as subprocesses."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tool_env() -> dict:
    """The current environment with the repository first on PYTHONPATH, one thread per process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # tiny models; a second thread only adds contention
    return env


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
