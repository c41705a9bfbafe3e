"""moving_digits: generated bouncing-digit sequences (the Moving-MNIST task)."""
import numpy as np
import pytest
import torch

from pyanomaly.config import load_cfg
from pyanomaly.datasets import build_dataset
from pyanomaly.datasets.moving_digits import (TRAIN_DIGITS, MovingDigitsDataset, bouncing_sequence,
                                              digit_pool, digit_sprites)
from pyanomaly.datasets.video import DatasetError


def test_samples_shapes_range_and_determinism():
    ds = MovingDigitsDataset(split="testing", num_test=5, seed=3)
    s = ds[2]
    assert s["frames"].shape == (20, 1, 64, 64) and s["frames"].dtype == torch.float32
    assert s["video"] == 2 and s["frame"] == 19
    assert 0 <= s["frames"].min() and s["frames"].max() <= 1 and s["frames"].max() > 0.9
    again = MovingDigitsDataset(split="testing", num_test=5, seed=3)
    assert torch.equal(again[2]["frames"], s["frames"])  # same seed, same sequence
    assert not torch.equal(ds[1]["frames"], s["frames"])
    assert not torch.equal(MovingDigitsDataset(split="testing", num_test=5, seed=4)[2]["frames"], s["frames"])
    assert len(ds) == 5 and len(ds.videos) == 5 and ds.lengths == [20] * 5
    with pytest.raises(IndexError):
        ds.sequence(5)


def test_splits_draw_from_disjoint_digit_images():
    sprites, labels = digit_sprites(28)
    assert sprites.shape == (1797, 28, 28) and labels.shape == (1797,)
    train, test = digit_pool("training"), digit_pool("testing")
    assert len(train) == TRAIN_DIGITS and len(test) == 1797 - TRAIN_DIGITS
    assert not np.shares_memory(train, test)
    tr = MovingDigitsDataset(split="training", num_train=3)
    te = MovingDigitsDataset(split="testing", num_test=3)
    assert not torch.equal(tr[0]["frames"], te[0]["frames"])


def test_digits_move_and_stay_inside_the_frame():
    sprite = np.ones((1, 8, 8), np.float32)  # a white square shows the motion exactly
    frames = bouncing_sequence(np.random.default_rng(0), sprite, 60, (32, 32), num_digits=1, speed=(3.0, 3.0))
    mass = frames.sum(axis=(1, 2))
    assert np.all(mass == 64)  # never clipped by a border: it bounces
    centres = np.array([np.argwhere(f > 0).mean(0) for f in frames])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert np.median(steps) == pytest.approx(3.0, abs=0.75)
    assert centres.min() >= 3.5 and centres.max() <= 27.5
    # two digits: the brighter pixel wins where they overlap
    two = bouncing_sequence(np.random.default_rng(1), sprite, 10, (16, 16), num_digits=2, speed=(0.0, 0.0))
    assert two.max() == 1.0


def test_built_from_the_config_with_dataset_args():
    cfg = load_cfg(None, ["DATASET.NAME", "moving_digits", "DATASET.CLIP_LENGTH", "12",
                          "DATASET.IMAGE_SIZE", "[48, 40]", "DATASET.CHANNELS", "3"])
    cfg.defrost()
    cfg.DATASET.ARGS.num_test = 4
    cfg.DATASET.ARGS.digit_size = 20
    ds = build_dataset(cfg, "testing")
    assert len(ds) == 4 and ds[0]["frames"].shape == (12, 3, 48, 40)
    assert torch.equal(ds[0]["frames"][:, 0], ds[0]["frames"][:, 2])
    from pyanomaly.datasets.summary import summarize  # what tools/prepare_data.py prints
    summary = summarize(ds)
    assert (summary.videos, summary.frames, summary.decoded) == (4, 48, "48x40x3")


def test_bad_arguments_are_named():
    with pytest.raises(DatasetError, match="split"):
        MovingDigitsDataset(split="train")
    with pytest.raises(DatasetError, match="digit_size"):
        MovingDigitsDataset(image_size=(20, 20))
    with pytest.raises(DatasetError, match="speed"):
        MovingDigitsDataset(speed=(3.0, 1.0))
