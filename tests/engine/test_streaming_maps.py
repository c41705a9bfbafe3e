"""``pyanomaly score --maps`` (``tools/score_video.py``): ``maps/<stem>.npy`` per video, and with
``--render`` the map drawn as a heat overlay on the annotated frames where it is high, for
several ``--video`` sources at once; a scorer without maps refused at once."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pyanomaly.config import load_cfg
from pyanomaly.engine.checkpoint import save_checkpoint
from pyanomaly.engine.streaming import score_video
from pyanomaly.evaluation.heatmap import HeatScale
from pyanomaly.models.build import model_meta

from testutils import assert_one_clear_error, run_tool_in_process

pytestmark = pytest.mark.usefixtures("restore_logging")  # the runs reconfigure the pyanomaly logger

H, W = 48, 64
BLOCK = (slice(8, 24), slice(36, 56))  # where the white block flashes, in source pixels
CFG = """
DATASET:
  IMAGE_SIZE: [24, 32]
MODEL:
  NAME: CopyLast
SCORE:
  ERROR: MSE
TEST:
  CHUNK: 8
STREAM:
  NORMALIZE: {warmup: 5}
  RENDER_FORMAT: avi
LOG:
  PROGRESS: False
"""


def _write_clip(path: Path, n: int, flash: range) -> Path:
    """An ``n``-frame MJPG AVI, 64x48, of a still scene with a white block during ``flash``."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    assert w.isOpened()
    for t in range(n):
        img = np.full((H, W, 3), (40, 60, 80), np.uint8)
        img[30:40, 6:20] = (150, 150, 150)
        if t in flash:
            img[BLOCK] = 255
        w.write(img)
    w.release()
    return path


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            return out
        out.append(img.astype(np.int16))


@pytest.fixture
def setup(tmp_path):
    cfg_path = tmp_path / "copy.yaml"
    cfg_path.write_text(CFG)
    ckpt = tmp_path / "copy.pth"
    save_checkpoint(ckpt, {"model": {}, "step": 0, "meta": model_meta(load_cfg(cfg_path))})
    clips = [_write_clip(tmp_path / "a.avi", 30, range(20, 26)), _write_clip(tmp_path / "b.avi", 17, range(9, 12))]
    return cfg_path, ckpt, clips


def test_score_maps_render_writes_maps_and_draws_them_where_high(setup, tmp_path, capsys, monkeypatch):
    cfg_path, ckpt, clips = setup
    out = tmp_path / "out"
    code, err = run_tool_in_process(capsys, monkeypatch, "score_video.py", "--cfg", cfg_path, "--checkpoint", ckpt,
                                    "--video", *clips, "--out", out, "--render", "--maps", "EVAL.MAPS_DOWNSAMPLE", "2")
    assert code == 0, err[-2000:]
    summary = json.loads((out / "alarms.json").read_text())
    assert [v["maps"] for v in summary["videos"]] == ["maps/a.npy", "maps/b.npy"]
    for v, n in zip(summary["videos"], (30, 17)):
        maps = np.load(out / v["maps"])
        assert maps.shape == (n, 12, 16) and maps.dtype == np.float16
        assert np.isnan(maps[0]).all() and np.isfinite(maps[1:]).all()  # CopyLast: no prediction of frame 0
    maps = np.load(out / "maps/a.npy").astype(np.float32)
    block = (slice(2, 6), slice(9, 14))  # the block in the maps: 48x64 -> 24x32 -> 12x16
    assert maps[20][block].min() > 20 * np.median(maps[20])  # the flash is where the map is high

    # the same video rendered without maps: the frames differ where the map is high, only there
    plain = score_video(load_cfg(cfg_path), ckpt, clips[0], tmp_path / "plain", render=True)
    assert plain["videos"][0]["maps"] is None and not (tmp_path / "plain/maps").exists()
    heat, bare = _frames(out / "annotated/a.avi"), _frames(tmp_path / "plain/annotated/a.avi")
    assert len(heat) == len(bare) == 30
    diff = [np.abs(x - y).max(axis=2)[:H] for x, y in zip(heat, bare)]
    assert diff[20][BLOCK].mean() > 60  # the block as it appears: coloured
    assert diff[20][40:, :].mean() < 6 and diff[20][:, :4].mean() < 6  # the still background: as it was
    assert diff[10].mean() < 6  # a frame where nothing changed: nothing drawn


def test_the_heat_scale_reads_no_future_frame():
    rng = np.random.default_rng(0)
    maps = rng.random((12, 6, 8)).astype(np.float32)
    maps[7, 2:4, 3:6] = 10.0  # an anomaly later on, ten times the rest
    alone = HeatScale()
    first = [alone.push(m) for m in maps[:5]]
    whole = HeatScale()
    later = [whole.push(m) for m in maps]
    for a, b in zip(first, later[:5]):
        np.testing.assert_array_equal(a, b)  # the heat of frame t is the same whatever follows t
    assert whole.push(np.full((6, 8), np.nan, np.float32)) is None
    # only the anomaly is hot enough to be drawn (heat > 0.5: twice the reference), fully
    assert (later[7][2:4, 3:6] == 1.0).all() and (later[7] > 0.5).sum() == 6
    assert max(h.max() for h in later[:7]) < 0.5


def test_maps_with_a_scorer_without_maps_is_one_clear_error(setup, tmp_path, capsys, monkeypatch):
    cfg_path, ckpt, clips = setup
    code, err = run_tool_in_process(capsys, monkeypatch, "score_video.py", "--cfg", cfg_path, "--checkpoint", ckpt,
                                    "--video", clips[0], "--out", tmp_path / "no", "--maps", "SCORE.ERROR",
                                    "FRAME_ERROR")
    assert_one_clear_error(code, err, "--maps: SCORE.ERROR FRAME_ERROR gives one error per frame")
    assert not (tmp_path / "no").exists()
