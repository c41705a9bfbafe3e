"""Decode once: later epochs, new dataset objects and DataLoader workers read the cache."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fake_layouts import load  # noqa: F401 (a fixture)
from fake_layouts import make_ucsd_frames, write_frames

import pyanomaly.datasets.base as base


@pytest.fixture
def counted_decode(tmp_path, monkeypatch):
    """Replace the decode function by one that appends a line to a file per call (any process)."""
    log = tmp_path / "decode-calls.txt"
    real = base.decode

    def decode(record, size, channels, *args):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {record.name}\n")
        return real(record, size, channels, *args)

    monkeypatch.setattr(base, "decode", decode)
    return lambda: len(log.read_text().splitlines()) if log.exists() else 0


def _epochs(ds, workers, epochs=2, **kw):
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers, **kw)
    seen = 0
    for _ in range(epochs):
        for batch in loader:
            assert batch["frames"].dtype == torch.float32
            seen += batch["frames"].shape[0]
    return seen


@pytest.mark.parametrize("workers", [0, 2])
def test_second_epoch_never_decodes(tmp_path, load, counted_decode, workers):
    make_ucsd_frames(tmp_path / "ped2")
    ds = load("ped2", tmp_path / "ped2", "training", clip_length=3)
    assert counted_decode() == 2  # once per video, when the dataset is built
    assert _epochs(ds, workers) == 2 * len(ds)
    assert counted_decode() == 2
    again = load("ped2", tmp_path / "ped2", "training", clip_length=3)  # e.g. the next run
    assert counted_decode() == 2
    np.testing.assert_array_equal(again.video_frames(1).numpy(), ds.video_frames(1).numpy())


def test_spawned_workers_reopen_the_cache(tmp_path, load):
    """Workers that get the dataset by pickling open cache files; sources are not needed."""
    make_ucsd_frames(tmp_path / "ped2")
    ds = load("ped2", tmp_path / "ped2", "training", clip_length=3)
    shutil.rmtree(tmp_path / "ped2" / "training")  # any decode would now fail
    assert _epochs(ds, 1, epochs=1, multiprocessing_context="spawn") == len(ds)


def test_changed_file_decodes_again(tmp_path, load, counted_decode):
    root = tmp_path / "data"
    write_frames(root / "training" / "a", 4)
    write_frames(root / "training" / "b", 4)
    load("folder", root, "training")
    assert counted_decode() == 2
    write_frames(root / "training" / "b", 4, size=(20, 30))  # same names, new content
    load("folder", root, "training")
    assert counted_decode() == 3
    load("folder", root, "training", image_size=(4, 4))  # other decode settings: other cache entry
    assert counted_decode() == 5


def test_no_cache_in_memory_with_workers(tmp_path, load, counted_decode):
    make_ucsd_frames(tmp_path / "ped2")
    ds = load("ped2", tmp_path / "ped2", "training", cache_dir=None)
    assert _epochs(ds, 2) == 2 * len(ds)
    assert counted_decode() == 2
    assert not (tmp_path / "cache").exists()


def test_damaged_cache_file_is_replaced(tmp_path, load, counted_decode):
    make_ucsd_frames(tmp_path / "ped2")
    ds = load("ped2", tmp_path / "ped2", "training")
    before = ds.video_frames(0).numpy()
    path = next((tmp_path / "cache").glob("01-*.npy"))
    path.unlink()  # a new file (inode): overwriting in place would also corrupt ds's mmap
    path.write_bytes(b"garbage")
    again = load("ped2", tmp_path / "ped2", "training")
    assert counted_decode() == 3
    np.testing.assert_array_equal(again.video_frames(0).numpy(), before)


def test_default_cache_dir_comes_from_environment(tmp_path, load, monkeypatch):
    monkeypatch.setenv("PYANOMALY_CACHE", str(tmp_path / "default-cache"))
    make_ucsd_frames(tmp_path / "ped2")
    load("ped2", tmp_path / "ped2", "training", cache_dir="")
    assert any((tmp_path / "default-cache").glob("*.npy"))
