"""Shared fixtures: tiny generated data and a private frame cache."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from a second thread, and a busy machine makes it much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's ~/.cache/pyanomaly."""
    monkeypatch.setenv("PYANOMALY_CACHE", str(tmp_path_factory.getbasetemp() / "frame-cache"))


@pytest.fixture
def restore_logging():
    """Runs and tools reconfigure the ``pyanomaly`` logger (handlers, level); give other tests theirs back."""
    import logging
    log = logging.getLogger("pyanomaly")
    saved = list(log.handlers), log.level, log.propagate
    yield
    for h in log.handlers:
        if h not in saved[0]:
            h.close()
    log.handlers[:], log.level, log.propagate = saved


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A small generated dataset: 32x32 frames, 2 training and 4 test videos of 60 frames."""
    from pyanomaly.datasets.synthetic import make_synthetic
    root = tmp_path_factory.mktemp("data") / "synthetic"
    return make_synthetic(root, seed=1, size=32, num_train=2, num_test=4, frames_per_video=60)
