"""Anomaly-map files: :class:`~pyanomaly.evaluation.maps.MapRecorder` (block means, float16, NaN kept,
spooled then written whole) and ``EVAL.SAVE_MAPS`` in a test run (``scores/maps/<stem>.npy``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyanomaly.evaluation.maps import MapRecorder, downsample_maps

from testutils import run_tool_in_process, train_in_process

pytestmark = pytest.mark.usefixtures("restore_logging")  # the runs reconfigure the pyanomaly logger


def test_maps_are_block_means_in_float16_with_nan_frames_kept(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.random((5, 7, 10)).astype(np.float32)
    maps[2] = np.nan  # a frame without a prediction
    small = downsample_maps(maps, 3)
    assert small.shape == (5, 3, 4) and small.dtype == np.float16
    np.testing.assert_allclose(small[0, 0, 0], maps[0, :3, :3].mean(), rtol=1e-3)
    np.testing.assert_allclose(small[1, 2, 3], maps[1, 6:, 9:].mean(), rtol=1e-3)  # a block cut short
    assert np.isnan(small[2]).all() and np.isfinite(small[[0, 1, 3, 4]]).all()
    np.testing.assert_array_equal(downsample_maps(maps, 1), maps.astype(np.float16))

    rec = MapRecorder(downsample=3)
    for s in (0, 2, 3):  # chunks of 2, 1 and 2 frames
        rec.add(maps[s:s + (2 if s != 2 else 1)])
    np.testing.assert_array_equal(rec.array(), small)
    rec.save(tmp_path / "maps" / "v.npy")
    rec.add(maps[:1])  # the spool goes on after a save
    assert rec.array().shape == (6, 3, 4)
    rec.close()
    saved = np.load(tmp_path / "maps" / "v.npy")
    assert saved.dtype == np.float16
    np.testing.assert_array_equal(saved, small)
    assert not [p for p in (tmp_path / "maps").iterdir() if p.name != "v.npy"]  # no temporary left
    with pytest.raises(ValueError, match="maps of .* after maps of another size"):
        r = MapRecorder(2)
        r.add(maps)
        r.add(maps[:, :4])


COPY_LAST = """
DATASET:
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: CopyLast
SCORE:
  ERROR: MSE
EVAL:
  PLOTS: False
  REPORT: False
LOG:
  PROGRESS: False
"""


def test_a_test_run_with_save_maps_writes_one_map_file_per_video(tiny_synthetic, tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "copy_last.yaml"
    cfg.write_text(COPY_LAST)
    train_in_process(cfg, tiny_synthetic, tmp_path / "run")  # CopyLast: nothing to fit, the checkpoint and scores
    assert (tmp_path / "run/scores/frame_scores.csv").is_file() and not (tmp_path / "run/scores/maps").exists()
    out = tmp_path / "test"
    code, err = run_tool_in_process(capsys, monkeypatch, "test.py", "--cfg", cfg, "--checkpoint",
                                    tmp_path / "run/checkpoints/last.pth", "DATASET.ROOT", tiny_synthetic,
                                    "SYSTEM.OUTPUT_DIR", out, "EVAL.SAVE_MAPS", "True", "EVAL.MAPS_DOWNSAMPLE", "4")
    assert code == 0, err[-2000:]
    index = json.loads((out / "scores/index.json").read_text())
    assert len(index["videos"]) == 4
    for v in index["videos"]:
        maps = np.load(out / "scores/maps" / f"{v['npy']}.npy")
        assert maps.shape == (v["frames"], 8, 8) and maps.dtype == np.float16
        error = np.load(out / "scores/npy" / f"{v['npy']}_error.npy")
        # frames without a prediction (CopyLast: the first) are NaN, never 0
        assert (np.isnan(maps).all(axis=(1, 2)) == np.isnan(error)).all() and np.isnan(error[0])
        # 4 x 4 blocks of a 32 x 32 map: the mean of the block means is the frame's MSE
        ok = np.isfinite(error)
        np.testing.assert_allclose(maps[ok].astype(np.float64).mean(axis=(1, 2)), error[ok], rtol=2e-3, atol=1e-6)
        assert error[ok].max() > 0
