"""Optical flow as a modality of a dataset: in every clip, cached once under a versioned key."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import pyanomaly.datasets.base as base
from pyanomaly.config import get_defaults
from pyanomaly.datasets import build_dataset
from pyanomaly.datasets.video import DatasetError
from pyanomaly.engine.hooks import prediction_grid
from pyanomaly.errors import ConfigError
from pyanomaly.models import CopyLast


def _cfg(root, cache, flow=None, **extra):
    cfg = get_defaults()
    cfg.DATASET.ROOT, cfg.DATASET.CACHE_DIR = str(root), str(cache)
    cfg.DATASET.IMAGE_SIZE, cfg.DATASET.CLIP_LENGTH = [32, 32], 4
    if flow is not None:
        cfg.DATASET.FLOW.update(flow)
    for key, value in extra.items():
        setattr(cfg.DATASET, key, value)
    return cfg


@pytest.fixture
def counted_flow(monkeypatch):
    """Count the videos whose flow is computed (not read from the cache), per algorithm key."""
    calls: list[str] = []
    real = base.OpticalFlow.video

    def video(self, frames):
        calls.append(self.key())
        return real(self, frames)

    monkeypatch.setattr(base.OpticalFlow, "video", video)
    return calls


def test_clips_carry_the_flow_between_their_frames(tiny_synthetic, tmp_path):
    ds = build_dataset(_cfg(tiny_synthetic, tmp_path, {"type": "dis", "preset": "fast"}), "training")
    sample = ds[0]  # the first clip of a video: its flow is between its own frames, all there
    assert sample["frames"].shape == (4, 1, 32, 32) and sample["flow"].shape == (3, 2, 32, 32)
    assert torch.isfinite(sample["flow"]).all()
    whole = ds.video_flow(0)
    assert whole.shape == (ds.lengths[0], 2, 32, 32)
    assert torch.isnan(whole[0]).all()  # the first frame has no flow: marked, not zero-filled
    torch.testing.assert_close(sample["flow"], whole[1:4])
    batch = next(iter(DataLoader(ds, batch_size=3)))  # a method reads it as input or target
    assert batch["flow"].shape == (3, 3, 2, 32, 32)
    grid = prediction_grid(CopyLast(), batch["frames"][0], batch["flow"][0])  # TensorBoard: a row of colour wheels
    assert grid.shape == (3, 4 * 33 + 1, 4 * 33 + 1)


def test_the_flow_cache_is_reused_for_the_same_algorithm_and_never_for_another(tiny_synthetic, tmp_path,
                                                                               counted_flow):
    fast = {"type": "dis", "preset": "fast"}
    first = build_dataset(_cfg(tiny_synthetic, tmp_path, fast), "testing")
    n = len(first.videos)
    assert counted_flow == ["dis-fast"] * n
    paths = [first.flow_cache_path(i) for i in range(n)]
    assert all(p.is_file() and "dis-fast-v" in p.name for p in paths)
    again = build_dataset(_cfg(tiny_synthetic, tmp_path, fast), "testing")
    assert counted_flow == ["dis-fast"] * n  # read, not computed
    torch.testing.assert_close(again.video_flow(1), first.video_flow(1), equal_nan=True)
    other = build_dataset(_cfg(tiny_synthetic, tmp_path, {"type": "dis", "preset": "ultrafast"}), "testing")
    assert counted_flow[n:] == ["dis-ultrafast"] * n  # another preset: computed, into its own files
    assert {other.flow_cache_path(i) for i in range(n)}.isdisjoint(paths)
    build_dataset(_cfg(tiny_synthetic, tmp_path, {"type": "farneback"}), "testing")
    assert counted_flow[2 * n:] == ["farneback-default"] * n
    # the format version is part of the key: a flow of an older format is not read
    assert paths[0].name.endswith(f"-v{base._FLOW_CACHE_VERSION}.npy")


def test_a_damaged_flow_cache_file_is_computed_again(tiny_synthetic, tmp_path, counted_flow):
    spec = {"type": "dis", "preset": "ultrafast"}
    ds = build_dataset(_cfg(tiny_synthetic, tmp_path, spec), "testing")
    ds.flow_cache_path(0).write_bytes(b"not an array")
    np.save(ds.flow_cache_path(1), np.zeros((3, 32, 32, 2), dtype=np.float16))  # wrong length
    n = len(ds.videos)
    again = build_dataset(_cfg(tiny_synthetic, tmp_path, spec), "testing")
    assert counted_flow == ["dis-ultrafast"] * (n + 2)
    assert again.video_flow(1).shape[0] == again.lengths[1]


def test_without_a_cache_the_flow_is_kept_in_memory(tiny_synthetic, tmp_path):
    cfg = _cfg(tiny_synthetic, tmp_path, {"type": "dis", "preset": "ultrafast"})
    cfg.DATASET.CACHE_DIR = ""  # the private cache of the tests (conftest); then none at all
    ds = build_dataset(cfg, "testing")
    ds.cache_dir = None
    assert ds.flow_cache_path(0) is None
    assert torch.isnan(ds.video_flow(0)[0]).all()


def test_bad_flow_settings_are_one_clear_error(tiny_synthetic, tmp_path):
    with pytest.raises(DatasetError, match=r"DATASET.FLOW .*presets"):
        build_dataset(_cfg(tiny_synthetic, tmp_path, {"type": "dis", "preset": "slowest"}), "testing")
    with pytest.raises(DatasetError, match="FRAME_STEP 1"):
        build_dataset(_cfg(tiny_synthetic, tmp_path, {"type": "dis"}, FRAME_STEP=2), "testing")
    with pytest.raises(ConfigError, match="TRAIN_TRANSFORMS"):
        build_dataset(_cfg(tiny_synthetic, tmp_path, {"type": "dis"},
                           TRAIN_TRANSFORMS=[{"type": "RandomCrop", "size": [16, 16]}]), "training")
    no_flow = build_dataset(_cfg(tiny_synthetic, tmp_path), "testing")
    assert "flow" not in no_flow[0]
    with pytest.raises(DatasetError, match="DATASET.FLOW"):
        no_flow.video_flow(0)


def test_training_with_flow_puts_colour_wheels_in_the_tensorboard_grid(tiny_synthetic, tmp_path, restore_logging):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pyanomaly.config import load_cfg
    from pyanomaly.engine import launch
    out = tmp_path / "run"
    cfg = load_cfg(None, [
        "DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[32, 32]", "DATASET.CLIP_LENGTH", "3",
        "DATASET.FLOW.type", "dis", "DATASET.FLOW.preset", "ultrafast", "MODEL.NAME", "FramePredictor",
        "MODEL.ARGS.network", "{'type': 'UNet', 'in_channels': 1, 'base_channels': 4, 'depth': 2}",
        "TRAIN.MAX_STEPS", "2", "TRAIN.IMAGE_PERIOD", "1", "TRAIN.EVAL_PERIOD", "0", "EVAL.PLOTS", "False",
        "EVAL.REPORT", "False", "LOG.PROGRESS", "False", "SYSTEM.OUTPUT_DIR", str(out)])
    launch.train(cfg)
    ea = EventAccumulator(str(out / "tb"), size_guidance={"images": 0})
    ea.Reload()
    image = ea.Images("train/input_prediction_error")[-1]
    # rows: frames, predictions, errors and the flows' colour wheels; 3 columns of 32 pixels, 1-pixel padding
    assert (image.height, image.width) == (4 * 33 + 1, 3 * 33 + 1)
