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
from pyanomaly.engine.streaming import Stream, score_video
from pyanomaly.models.build import build_model, model_meta
from pyanomaly.scoring.build import build_scorer, build_stream_pipeline
from pyanomaly.scoring.video import VideoScorer
from pyanomaly.models.base import VADModel
from pyanomaly.registry import MODELS

from testutils import REPO, TWO_LAYER_PREDNET, tool_env

TINY = TWO_LAYER_PREDNET + """
DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [24, 32]
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


def frame(t: int, flash=FLASH) -> np.ndarray:
    """BGR uint8: a grey square moving right; a white block during ``flash``."""
    img = np.full((H, W, 3), (40, 60, 80), np.uint8)
    x = 2 + (3 * t) // 4  # never wraps: no abrupt change but the block
    img[18:28, x:x + 10] = (170, 170, 170)
    if t in flash:
        img[4:20, 40:60] = 255
    return img


def write_clip(path: Path, n: int, flash=FLASH) -> Path:
    """An ``n``-frame MJPG AVI at ``FPS``, 64x48, of :func:`frame`."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert w.isOpened()
    for t in range(n):
        w.write(frame(t, flash))
    w.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 60-frame MJPG AVI at 10 fps, 64x48."""
    return write_clip(tmp_path_factory.mktemp("video") / "clip.avi", N)


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


# three videos of different lengths, each with its flash elsewhere; with TEST.CHUNK 16 their last
# chunks differ in length (12, 5, 7 frames)
MULTI = {"a": (60, range(40, 46)), "b": (37, range(20, 24)), "c": (23, range(12, 15))}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    return [write_clip(folder / f"{name}.avi", n, flash) for name, (n, flash) in MULTI.items()]


def _rows(out: Path) -> dict[str, list[dict]]:
    with open(out / "frame_scores.csv") as f:
        rows = list(csv.DictReader(f))
    by_video: dict[str, list[dict]] = {}
    for r in rows:
        by_video.setdefault(r["video"], []).append(r)
    assert list(by_video) == [r["video"] for r in rows if int(r["frame"]) == 0]  # one block per video, in order
    return by_video


def _floats(rows: list[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r[key] else np.nan for r in rows])


@pytest.mark.parametrize("mode", ["window", "stream"])
def test_several_videos_together_score_as_each_alone(clips, tiny, tmp_path, restore_logging, mode):
    cfg_path, _, ckpt = tiny
    # window: each frame from the 3 before it; stream: PredNet's state carried through the video
    cfg = load_cfg(cfg_path, ["MODEL.ARGS.test_window", 0 if mode == "stream" else 4])
    summary = score_video(cfg, ckpt, clips, tmp_path / "together", render=True)
    assert summary["complete"] and [v["video"] for v in summary["videos"]] == list(MULTI)
    together = _rows(tmp_path / "together")
    assert {v: len(r) for v, r in together.items()} == {v: n for v, (n, _) in MULTI.items()}
    alarms = 0
    for path, entry in zip(clips, summary["videos"]):
        alone_summary = score_video(cfg, ckpt, path, tmp_path / f"alone-{path.stem}")
        (alone_entry,) = alone_summary["videos"]
        (alone,) = _rows(tmp_path / f"alone-{path.stem}").values()
        ours = together[path.stem]
        assert [r["frame"] for r in ours] == [r["frame"] for r in alone]
        for key in ("error", "score"):
            np.testing.assert_allclose(_floats(ours, key), _floats(alone, key), rtol=1e-5, atol=1e-5, equal_nan=True,
                                       err_msg=f"{path.stem}: {key}")
        timing = ("raised_latency_ms",)  # wall-clock, not a result
        assert [{k: v for k, v in a.items() if k not in timing} for a in entry["alarms"]] == \
            [{k: v for k, v in a.items() if k not in timing} for a in alone_entry["alarms"]]
        assert (entry["frames"], entry["frames_scored"], entry["fps"]) == (
            alone_entry["frames"], alone_entry["frames_scored"], alone_entry["fps"])
        alarms += len(entry["alarms"])
        cap = cv2.VideoCapture(str(tmp_path / "together" / entry["annotated"]))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == entry["frames"]
        assert (tmp_path / "together" / entry["plot"]).is_file()
    assert alarms > 0  # the flashes alarm: the comparison of alarms is not one of empty lists


@MODELS.register_module(force=True)
class OneAtATimeTestModel(CopyLastTestModel):
    """Copies the last frame, and holds its stream in the module: never two videos at once."""

    concurrent_streams = False

    def __init__(self):
        super().__init__()
        self.calls = []

    def predict_stream(self, frames, state=None):
        self.calls.append(state is None)
        return super().predict_stream(frames, state)


def test_a_method_that_streams_one_video_at_a_time_scores_them_in_turn(clips, tmp_path, restore_logging):
    cfg_path = tmp_path / "one.yaml"
    cfg_path.write_text("DATASET:\n  IMAGE_SIZE: [24, 32]\nMODEL:\n  NAME: OneAtATimeTestModel\nTEST:\n  CHUNK: 8\n"
                        "SCORE:\n  ERROR: MSE\nLOG:\n  PROGRESS: False\n")
    cfg = load_cfg(cfg_path)
    ckpt = tmp_path / "one.pth"
    save_checkpoint(ckpt, {"model": {}, "step": 0, "meta": model_meta(cfg)})
    summary = score_video(cfg, ckpt, clips[:2], tmp_path / "out")  # two at once would raise ValueError
    assert [v["frames"] for v in summary["videos"]] == [MULTI["a"][0], MULTI["b"][0]]
    rows = _rows(tmp_path / "out")
    assert list(rows) == ["a", "b"] and [len(r) for r in rows.values()] == [MULTI["a"][0], MULTI["b"][0]]


def test_a_stream_of_chunks_from_anywhere_is_scored_and_names_must_differ(clip, tiny, tmp_path, restore_logging):
    cfg_path, cfg, ckpt = tiny
    frames = np.concatenate([f for f, _ in read_chunks(find_sources(clip)[0], 64, (24, 32), 1)])
    # chunks of 10 frames, each followed by an empty one (a live source with nothing new yet)
    chunks = [(part, None) for s in range(0, N, 10) for part in (frames[s:s + 10], frames[:0])]
    live = Stream("camera", "test://camera", FPS, "test", chunks)
    summary = score_video(cfg, ckpt, [live, clip], tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert [v["video"] for v in summary["videos"]] == ["camera", "clip"] and summary["videos"][0]["source"] == "test://camera"
    # the same frames, in chunks of 10 instead of TEST.CHUNK 16: the same scores
    np.testing.assert_allclose(_floats(rows["camera"], "score"), _floats(rows["clip"], "score"), rtol=1e-4,
                               atol=1e-4, equal_nan=True)
    with pytest.raises(DatasetError, match="two videos are named 'clip'"):
        score_video(cfg, ckpt, [clip, clip], tmp_path / "twice")
    assert not (tmp_path / "twice").exists()
