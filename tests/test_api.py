"""The Python API (``pyanomaly.load``, ``train``, ``Detector.score`` / ``stream``) on a tiny trained run."""
from __future__ import annotations

import csv
import logging

import cv2
import numpy as np
import pytest
import torch

import pyanomaly
from pyanomaly.api import Scores, StreamFrame, make_cfg
from pyanomaly.commands import export
from pyanomaly.engine.checkpoint import load_checkpoint, save_checkpoint
from pyanomaly.errors import CheckpointError, ConfigError, DatasetError

from testutils import REPO, TWO_LAYER_PREDNET

TINY = TWO_LAYER_PREDNET + """
DATASET:
  CLIP_LENGTH: 4
  IMAGE_SIZE: [32, 32]
TRAIN:
  MAX_STEPS: 4
  BATCH_SIZE: 2
  EVAL_PERIOD: 4
  CHECKPOINT_PERIOD: 4
  TENSORBOARD: False
  IMAGE_PERIOD: 0
TEST:
  CHUNK: 16
STREAM:
  NORMALIZE: {window: 20, warmup: 5}
  ALARM_THRESHOLD: 2.0
  ALARM_MIN_FRAMES: 2
EVAL:
  PLOTS: False
  REPORT: False
LOG:
  PROGRESS: False
"""


pytestmark = pytest.mark.usefixtures("restore_logging")  # the runs reconfigure the pyanomaly logger


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_synthetic):
    """A 4-step run trained with ``pyanomaly.train`` (overrides given both ways)."""
    tmp = tmp_path_factory.mktemp("api")
    yaml = tmp / "tiny.yaml"
    yaml.write_text(TINY)
    out = tmp / "run"
    log = logging.getLogger("pyanomaly")
    saved = list(log.handlers), log.level, log.propagate
    metrics = pyanomaly.train(yaml, {"DATASET.ROOT": str(tiny_synthetic)}, SYSTEM__OUTPUT_DIR=str(out))
    for h in log.handlers:
        if h not in saved[0]:
            h.close()
    log.handlers[:], log.level, log.propagate = saved
    return yaml, out, tiny_synthetic, metrics


def video_folder(root, name="01"):
    return root / "testing" / "frames" / name


def test_train_returns_the_metrics_and_checkpoints_carry_the_config(run):
    yaml, out, data, metrics = run
    assert 0.0 <= metrics["auc_micro"] <= 1.0
    ckpt = torch.load(out / "checkpoints" / "last.pth", weights_only=True)  # plain types only
    config = ckpt["meta"]["config"]
    assert config["TRAIN"]["MAX_STEPS"] == 4 and config["DATASET"]["ROOT"] == str(data)
    assert config["MODEL"]["ARGS"]["network"]["stack_sizes"] == [1, 4]


def test_overrides_both_ways():
    cfg = make_cfg(None, {"TRAIN.MAX_STEPS": 3}, TRAIN__LR=0.5, DATASET__IMAGE_SIZE="[16, 24]")
    assert (cfg.TRAIN.MAX_STEPS, cfg.TRAIN.LR, list(cfg.DATASET.IMAGE_SIZE)) == (3, 0.5, [16, 24])
    with pytest.raises(ConfigError, match="TRAIN.MAX_STEPSS"):
        make_cfg(None, TRAIN__MAX_STEPSS=3)
    again = make_cfg({"TRAIN": {"MAX_STEPS": 7}}, TRAIN__LR=0.1)
    assert (again.TRAIN.MAX_STEPS, again.TRAIN.LR) == (7, 0.1)


def test_score_without_a_yaml_matches_the_evaluation(run):
    _, out, data, _ = run
    det = pyanomaly.load(out / "checkpoints" / "last.pth")
    result = det.score(video_folder(data))
    assert isinstance(result, Scores) and len(result) == 60
    np.testing.assert_array_equal(result.frames, np.arange(60))
    assert np.isnan(result.errors[:1]).all() and np.isfinite(result.errors[-10:]).all()
    with open(out / "scores" / "frame_scores.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["video"] == "01"]
    expected = np.array([float(r["score"]) if r["score"] else np.nan for r in rows])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_score_returns_the_maps_behind_the_errors(run):
    _, out, data, _ = run
    det = pyanomaly.load(out / "checkpoints" / "last.pth", device="cpu")
    plain, result = det.score(video_folder(data)), det.score(video_folder(data), maps=True)
    assert plain.maps is None
    np.testing.assert_array_equal(result.errors, plain.errors)
    assert result.maps.shape == (60, 8, 8) and result.maps.dtype == np.float16  # EVAL.MAPS_DOWNSAMPLE 4
    scored = np.isfinite(result.errors)
    assert np.isnan(result.maps[~scored]).all() and np.isfinite(result.maps[scored]).all()
    # PSNR's map is the squared error: its frame mean is the MSE behind each frame's PSNR
    mse = result.maps[scored].astype(np.float64).mean(axis=(1, 2))
    np.testing.assert_allclose(10 * np.log10(1.0 / mse), result.errors[scored], atol=0.02)
    full = pyanomaly.load(out / "checkpoints" / "last.pth", device="cpu", EVAL__MAPS_DOWNSAMPLE=1)
    assert full.score(video_folder(data), maps=True).maps.shape == (60, 32, 32)
    one_number = pyanomaly.load(REPO / "checkpoints" / "ped2_cues.pth", device="cpu")  # a fusion: FRAME_ERROR
    with pytest.raises(ConfigError, match=r"score\(maps=True\): SCORE.ERROR FRAME_ERROR gives one error per frame"):
        one_number.score(np.zeros((6, 24, 36), np.uint8), maps=True)


def test_array_folder_and_file_give_the_same_scores(run, tmp_path):
    _, out, data, _ = run
    det = pyanomaly.load(out / "checkpoints" / "last.pth", device="cpu")
    folder = video_folder(data)
    gray = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))])
    from_folder = det.score(folder)
    np.testing.assert_array_equal(det.score(gray).errors, from_folder.errors)
    np.testing.assert_array_equal(det.score(gray[..., None]).errors, from_folder.errors)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    for img in gray:
        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert len(det.score(path)) == 60
    with pytest.raises(DatasetError, match="uint8"):
        det.score(gray.astype(np.float32))
    (tmp_path / "second.avi").write_bytes(path.read_bytes())
    with pytest.raises(DatasetError, match="holds 2 videos; score one video at a time"):
        det.score(tmp_path)


def test_stream_is_causal_chunk_invariant_and_raises_alarms(run):
    _, out, data, _ = run
    det = pyanomaly.load(out / "checkpoints" / "last.pth", STREAM__ALARM_THRESHOLD=-100.0)
    folder = video_folder(data)
    events = list(det.stream(folder))
    assert all(isinstance(e, StreamFrame) for e in events) and [e.frame for e in events] == list(range(60))
    scores = np.array([e.score for e in events])
    assert np.isfinite(scores[10:]).all()
    frames = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]
    live = list(det.stream(iter(frames)))  # frame by frame, as from a camera
    # batches of 1 and of 64 frames run different convolution kernels: predictions agree to float
    # rounding, which the z-scores magnify (the tolerance of tests/tools/test_score_video.py)
    np.testing.assert_allclose([e.score for e in live], scores, rtol=1e-4, atol=1e-4, equal_nan=True)
    # the first 40 frames' scores do not depend on what comes after them
    first = np.array([e.score for e in det.stream(np.stack(frames[:40]), chunk=7)])
    np.testing.assert_allclose(first, scores[:40], rtol=1e-4, atol=1e-4, equal_nan=True)
    assert any(e.alarm for e in events)  # every scored frame is above a threshold of -100


def test_a_checkpoint_without_its_config_needs_the_yaml(run, tmp_path):
    yaml, out, data, _ = run
    ckpt = load_checkpoint(out / "checkpoints" / "last.pth")
    ckpt["meta"] = {k: v for k, v in ckpt["meta"].items() if k != "config"}  # as written before
    old = tmp_path / "old.pth"
    save_checkpoint(old, ckpt)
    with pytest.raises(CheckpointError, match=r"carries no config.*cfg="):
        pyanomaly.load(old)
    det = pyanomaly.load(old, cfg=yaml)
    reference = pyanomaly.load(out / "checkpoints" / "last.pth")
    np.testing.assert_array_equal(det.score(video_folder(data)).errors,
                                  reference.score(video_folder(data)).errors)
    with pytest.raises(CheckpointError, match="different model"):
        pyanomaly.load(old, cfg=yaml, MODEL__ARGS__network={"stack_sizes": [1, 8], "R_stack_sizes": [8, 8]})
    # exported once with its YAML, it carries it
    with pytest.raises(SystemExit):
        export.main([str(old), str(tmp_path / "pub" / "bad.pth"), "DATASET.ROOT", "x"])  # overrides need --cfg
    export.main([str(old), str(tmp_path / "pub" / "new.pth"), "--cfg", str(yaml), "DATASET.ROOT", str(data)])
    published = pyanomaly.load(tmp_path / "pub" / "new.pth")
    assert published.cfg.DATASET.ROOT == str(data)


def test_published_checkpoints_load_alone_and_old_ones_with_their_recipe(tmp_path):
    ckpt = REPO / "checkpoints" / "ped2_convlstm.pth"
    det = pyanomaly.load(ckpt, device="cpu")  # it carries its recipe
    assert det.cfg.MODEL.NAME == "FramePredictor" and list(det.cfg.DATASET.IMAGE_SIZE) == [128, 128]
    old = torch.load(ckpt, weights_only=True)  # as written before checkpoints carried their config
    del old["meta"]["config"]
    torch.save(old, tmp_path / "old.pth")
    with pytest.raises(CheckpointError, match="carries no config"):
        pyanomaly.load(tmp_path / "old.pth")
    det = pyanomaly.load(tmp_path / "old.pth", cfg=REPO / "configs" / "ped2_convlstm.yaml", device="cpu")
    assert det.cfg.MODEL.NAME and not det.model.training
