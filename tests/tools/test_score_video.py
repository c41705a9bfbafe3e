"""tools/score_video.py and the stream scorer behind it, on short generated videos."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.datasets.video import DatasetError, VideoRecord, decode, sorted_frames
from pyanomaly.engine.checkpoint import save_checkpoint
from pyanomaly.datasets.sources import find_sources, prepare, read_chunks, to_tensor
from pyanomaly.engine.streaming import score_video
from pyanomaly.models.build import build_model, model_meta
from pyanomaly.scoring.build import build_scorer, build_stream_pipeline
from pyanomaly.scoring.video import VideoScorer
from pyanomaly.models.base import VADModel
from pyanomaly.registry import MODELS

from testutils import REPO, tool_env

TINY = """
DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [24, 32]
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
TEST:
  CHUNK: 16
STREAM:
  NORMALIZE: {window: 20, warmup: 5}
  ALARM_THRESHOLD: 2.0
  ALARM_MIN_FRAMES: 2
LOG:
  PROGRESS: False
"""

H, W, N, FPS = 48, 64, 60, 10.0
FLASH = range(40, 46)  # frames where a bright block appears: the anomaly


def frame(t: int) -> np.ndarray:
    """BGR uint8: a grey square moving right; a white block during FLASH."""
    img = np.full((H, W, 3), (40, 60, 80), np.uint8)
    x = 2 + (3 * t) // 4  # never wraps: no abrupt change but the block
    img[18:28, x:x + 10] = (170, 170, 170)
    if t in FLASH:
        img[4:20, 40:60] = 255
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 60-frame MJPG AVI at 10 fps, 64x48."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert w.isOpened()
    for t in range(N):
        w.write(frame(t))
    w.release()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny config and a checkpoint of an untrained PredNetPredictor in the trainer's format."""
    tmp = tmp_path_factory.mktemp("tiny")
    cfg_path = tmp / "tiny.yaml"
    cfg_path.write_text(TINY)
    cfg = load_cfg(cfg_path)
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu"))
    ckpt = tmp / "untrained.pth"
    save_checkpoint(ckpt, {"model": model.state_dict(), "step": 0, "meta": model_meta(cfg), "metrics": None})
    return cfg_path, cfg, ckpt


def test_frames_are_prepared_as_the_datasets_decode_them(clip, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(12):
        cv2.imwrite(str(folder / f"{t:03d}.jpg"), frame(t))
    for channels in (1, 3):
        for source, record in ((find_sources(clip)[0], VideoRecord("clip", clip)),
                               (find_sources(folder)[0], VideoRecord("frames", sorted_frames(folder)))):
            ours = np.concatenate([f for f, _ in read_chunks(source, 5, (24, 32), channels)])
            np.testing.assert_array_equal(ours, decode(record, (24, 32), channels))
    assert prepare(frame(0), (24, 32), 1).shape == (24, 32, 1)


class Counting(VADModel):
    """Wraps a method and records every predict_stream call's frame count."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def predict_stream(self, frames, state=None):
        self.calls.append((frames.shape[0], state is None))
        return self.inner.predict_stream(frames, state)


def test_stream_is_stateful_and_chunk_invariant(clip, tiny):
    _, cfg, _ = tiny
    torch.manual_seed(0)
    model = build_model(cfg, torch.device("cpu")).eval()
    scorer = build_scorer(cfg)
    frames = np.concatenate([f for f, _ in read_chunks(find_sources(clip)[0], 64, (24, 32), 1)])
    results = []
    for chunk in (7, 64):
        counting = Counting(model)
        s = VideoScorer(counting, scorer, build_stream_pipeline(cfg, scorer.higher_is_anomalous),
                        torch.device("cpu")).start()
        out = [s.push(to_tensor(frames[a:a + chunk])) for a in range(0, N, chunk)]
        results.append((np.concatenate([c.errors for c in out]), np.concatenate([c.scores for c in out])))
        assert sum(n for n, _ in counting.calls) == N  # every frame fed once
        assert [fresh for _, fresh in counting.calls] == [True] + [False] * (len(counting.calls) - 1)
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-4, equal_nan=True)
    first = 3 + 5  # CLIP_LENGTH - 1 frames without prediction, then STREAM.NORMALIZE.warmup
    assert np.isnan(results[0][1][:first]).all() and np.isfinite(results[0][1][first:]).all()


@MODELS.register_module(force=True)
class CopyLastTestModel(VADModel):
    """Predicts each frame as a copy of the one before: the error is the frame-to-frame change."""

    def __init__(self):
        super().__init__()

    def predict_stream(self, frames, state=None):
        prev = torch.cat([frames[:1] if state is None else state, frames[:-1]])
        valid = torch.ones(frames.shape[0], dtype=torch.bool)
        if state is None:
            valid[0] = False
        return prev, valid, frames[-1:].clone()


def test_alarms_and_rendering_in_process(clip, tmp_path):
    cfg_path = tmp_path / "copy.yaml"
    cfg_path.write_text("DATASET:\n  IMAGE_SIZE: [24, 32]\nMODEL:\n  NAME: CopyLastTestModel\nTEST:\n  CHUNK: 9\n"
                        "SCORE:\n  ERROR: MSE\nSTREAM:\n  NORMALIZE: {warmup: 10}\n  ALARM_THRESHOLD: 5.0\n  ALARM_MIN_FRAMES: 1\n"
                        "LOG:\n  PROGRESS: False\n")
    cfg = load_cfg(cfg_path)
    ckpt = tmp_path / "copy.pth"
    save_checkpoint(ckpt, {"model": {}, "step": 0, "meta": model_meta(cfg)})
    out = tmp_path / "out"
    summary = score_video(cfg, ckpt, clip, out, render=True)
    (video,) = summary["videos"]
    assert video["fps"] == FPS and video["fps_source"] == "the video file" and video["frames"] == N
    # the block appears at frame 40 and vanishes at 46: both changes alarm, nothing else does
    starts = [a["start_frame"] for a in video["alarms"]]
    assert starts == [40, 46], video["alarms"]
    assert video["alarms"][0]["start_time_s"] == 4.0
    cap = cv2.VideoCapture(str(out / "annotated/clip.mp4"))
    imgs = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        imgs.append(img)
    assert len(imgs) == N and imgs[0].shape == (H + 48, W, 3)
    red = lambda img: img[H // 2, 1, 2] > 150 and img[H // 2, 1, 1] < 100  # noqa: E731  left border pixel
    assert red(imgs[40]) and not red(imgs[30])
    assert json.loads((out / "alarms.json").read_text())["complete"] is True


def test_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        find_sources(tmp_path / "missing.avi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither image files nor video files"):
        find_sources(tmp_path / "empty")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video")
    with pytest.raises(DatasetError):
        list(read_chunks(find_sources(junk)[0], 8, (24, 32), 1))


def test_score_video_tool_end_to_end(clip, tiny, tmp_path):
    cfg_path, cfg, ckpt = tiny
    out = tmp_path / "scored"
    r = subprocess.run([sys.executable, "tools/score_video.py", "--cfg", str(cfg_path), "--checkpoint", str(ckpt),
                        "--video", str(clip), "--out", str(out), "--render"],
                       cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(out / "frame_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "frame", "time_s", "error", "score"]
    assert len(rows) == N and [int(x["frame"]) for x in rows] == list(range(N))
    assert all(abs(float(x["time_s"]) - int(x["frame"]) / FPS) < 1e-6 for x in rows)
    assert sum(x["error"] == "" for x in rows) == 3 and sum(x["score"] == "" for x in rows) == 3 + 5
    alarms = json.loads((out / "alarms.json").read_text())
    assert alarms["threshold"] == 2.0 and alarms["min_frames"] == 2 and alarms["complete"]
    assert alarms["protocol"]["normalization"] == "causal running z-score" and alarms["protocol"]["causal"]
    (video,) = alarms["videos"]
    assert video["video"] == "clip" and video["frames"] == N and video["fps"] == FPS
    for a in video["alarms"]:
        assert a["end_frame"] - a["start_frame"] + 1 >= 2
        assert float(rows[a["peak_frame"]]["score"]) == pytest.approx(a["peak_score"], rel=1e-4)
    cap = cv2.VideoCapture(str(out / video["annotated"]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N
    assert (out / video["plot"]).is_file() and (out / "config.yaml").is_file()
    assert "frames/s" in (out / "log.txt").read_text()
