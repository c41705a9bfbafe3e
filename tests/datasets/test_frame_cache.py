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

import pyanomaly.datasets.array_cache as array_cache
import pyanomaly.datasets.base as base
from pyanomaly.datasets import DatasetError


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


# -- room for the cache, told before any decoding ----------------------------------------------

@pytest.fixture
def free_disk(monkeypatch):
    """``free_disk(n)``: the file system reports ``n`` bytes free from then on."""
    real = shutil.disk_usage

    def set_free(n: int):
        monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=n))
    return set_free


def test_a_cache_that_would_not_fit_is_refused_before_decoding(tmp_path, load, counted_decode, free_disk):
    make_ucsd_frames(tmp_path / "ped2")  # training: 2 videos of 9 frames, decoded at 8x8 gray = 1,152 bytes
    free_disk(array_cache.HEADROOM_BYTES + 1151)
    with pytest.raises(DatasetError) as exc:
        load("ped2", tmp_path / "ped2", "training")
    assert str(exc.value) == (f"decoding 2 'training' videos (18 frames at 8x8x1, uint8) needs about 0.0 GB in "
                              f"{tmp_path / 'cache'}, which has 0.3 GB free; set DATASET.CACHE_DIR to a folder with "
                              "room, or lower DATASET.IMAGE_SIZE")
    assert counted_decode() == 0 and not (tmp_path / "cache").exists()
    free_disk(array_cache.HEADROOM_BYTES + 1152)  # just enough
    load("ped2", tmp_path / "ped2", "training")
    assert counted_decode() == 2
    free_disk(0)  # what is cached needs no room
    load("ped2", tmp_path / "ped2", "training")
    assert counted_decode() == 2


def test_videos_kept_in_memory_must_fit_in_memory(tmp_path, load, counted_decode, monkeypatch):
    make_ucsd_frames(tmp_path / "ped2")
    meminfo = tmp_path / "meminfo"
    monkeypatch.setattr(array_cache, "MEMINFO", str(meminfo))
    meminfo.write_text(f"MemTotal:  16000000 kB\nMemAvailable:  {array_cache.HEADROOM_BYTES // 1024} kB\n")
    with pytest.raises(DatasetError, match=r"^decoding 2 'training' videos .* in memory, which has 0\.3 GB free; set "
                                           r"DATASET.CACHE_DIR to a folder on disk"):
        load("ped2", tmp_path / "ped2", "training", cache_dir=None)
    assert counted_decode() == 0
    meminfo.write_text(f"MemAvailable:  {array_cache.HEADROOM_BYTES // 1024 + 2} kB\n")
    assert load("ped2", tmp_path / "ped2", "training", cache_dir=None).lengths == [9, 9]
    meminfo.write_text("nothing that says\n")  # a system that does not say: no check
    assert load("ped2", tmp_path / "ped2", "training", cache_dir=None).lengths == [9, 9]


def test_a_flow_cache_that_would_not_fit_is_refused_before_any_flow(tmp_path, load, free_disk):
    make_ucsd_frames(tmp_path / "ped2")
    load("ped2", tmp_path / "ped2", "training", image_size=(16, 16))  # the frames are cached
    flow_bytes = 18 * 16 * 16 * 2 * 2  # float16 (dx, dy) per pixel
    free_disk(array_cache.HEADROOM_BYTES + flow_bytes - 1)
    flow = {"type": "dis", "preset": "ultrafast"}
    with pytest.raises(DatasetError, match=r"^the optical flow of 2 'training' videos \(18 frames at 16x16, 2 "
                                           r"float16\) needs about 0\.0 GB in .*flow, which has"):
        load("ped2", tmp_path / "ped2", "training", image_size=(16, 16), flow=flow)
    assert not (tmp_path / "cache" / "flow").exists()
    free_disk(array_cache.HEADROOM_BYTES + flow_bytes)
    ds = load("ped2", tmp_path / "ped2", "training", image_size=(16, 16), flow=flow)
    assert ds.video_flow(1).shape == (9, 2, 16, 16)


def test_decoding_and_flow_show_progress_when_asked(tmp_path, load, capsys):
    make_ucsd_frames(tmp_path / "ped2")
    flow = {"type": "dis", "preset": "ultrafast"}
    with array_cache.showing_progress(False):
        load("ped2", tmp_path / "ped2", "testing", image_size=(16, 16))
    assert capsys.readouterr().err == ""
    with array_cache.showing_progress(True):
        load("ped2", tmp_path / "ped2", "training", image_size=(16, 16), flow=flow)
        err = capsys.readouterr().err
        assert "decoding 'training':" in err and "dis-ultrafast flow of 'training':" in err and "/2 [" in err  # 2 videos
        load("ped2", tmp_path / "ped2", "training", image_size=(16, 16), flow=flow)  # all cached: nothing to show
        assert capsys.readouterr().err == ""
