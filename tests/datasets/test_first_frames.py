"""TRAIN.FIT_MAX_FRAMES and TRAIN.MAX_FRAMES: what a method fitted to the training videos, and a
step-trained one, read of them."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from fake_layouts import load  # noqa: F401 (a fixture)
from fake_layouts import make_shanghaitech, make_ucsd_frames, make_ucsd_official
from pyanomaly.config import load_cfg
from pyanomaly.datasets import (DatasetError, VideoDataset, VideoRecord, build_dataset, build_fit_dataset,
                                build_train_dataset)
from pyanomaly.datasets.first_frames import FirstFrames, limit_frames
from pyanomaly.engine import launch
from pyanomaly.registry import DATASETS
from testutils import REPO


def cut_file(path, fraction: float) -> None:
    os.truncate(path, int(os.path.getsize(path) * fraction))


class Videos:
    """Three videos of 5, 9 and 2 frames; frame t of video i holds the value 100 i + t."""
    lengths = [5, 9, 2]
    names = ["a", "b", "c"]

    def video_frames(self, i, start=0, stop=None):
        stop = self.lengths[i] if stop is None else min(stop, self.lengths[i])
        return torch.arange(start, stop, dtype=torch.float32).add(100 * i).view(-1, 1, 1, 1)


def test_the_first_frames_of_every_video_and_nothing_else(caplog):
    videos = Videos()
    assert limit_frames(videos, 0) is videos and limit_frames(videos, 16) is videos  # within the budget
    with caplog.at_level(logging.INFO, logger="pyanomaly"):
        view = limit_frames(videos, 10)  # ceil(10 / 3) = 4 a video
    assert isinstance(view, FirstFrames) and view.per_video == 4 and view.lengths == [4, 4, 2]
    assert "reading the first 4 frames of each of the 3 training videos (10 of 16 frames)" in caplog.text
    assert view.video_frames(1).flatten().tolist() == [100, 101, 102, 103]
    assert view.video_frames(1, 2, 64).flatten().tolist() == [102, 103]  # a chunk past the end stops at it
    assert view.video_frames(1, 6, 9).shape[0] == 0
    assert view.names == ["a", "b", "c"]  # the rest is the split's own


def test_a_fitted_method_reads_only_the_budget(tmp_path, tiny_synthetic, restore_logging):
    """configs/cues.yaml (a Fusion of flow speed and copy-last) on 2 training videos of 60 frames:
    the statistics of a budget of 40 frames are those of the first 20 frames of each video; a
    baseline of EVAL.BASELINES that fits quantiles reads the same 40 (38 with a flow)."""
    opts = ["DATASET.NAME", "synthetic", "DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[32, 32]",
            "EVAL.PLOTS", "False", "EVAL.REPORT", "False", "LOG.PROGRESS", "False"]
    cfg = load_cfg(str(REPO / "configs/cues.yaml"), [*opts, "SYSTEM.OUTPUT_DIR", str(tmp_path / "run"),
                                                     "TRAIN.FIT_MAX_FRAMES", "40", "EVAL.BASELINES",
                                                     "[{'type': 'FlowSpeed', 'excess': 0.9, 'score': {'ERROR': 'CELL_MAX', 'PATCH': 16}}]"])
    launch.train(cfg)
    log = (tmp_path / "run/log.txt").read_text()
    assert "cell's mean speed over 38 training frames" in log
    # the split itself was read so: its other 80 frames never decoded
    assert "max_frames 40: reading the first 20 frames of each of the 2 'training' videos (2 cut; 120 frames" in log
    ckpt = torch.load(tmp_path / "run/checkpoints/last.pth", weights_only=True)
    assert ckpt["step"] == 40  # frames read

    from pyanomaly.models.build import build_model
    model = build_model(cfg, torch.device("cpu"))
    assert model.fit(FirstFrames(build_dataset(cfg, "training"), 20), torch.device("cpu"), progress=False) == 40
    assert torch.equal(ckpt["model"]["mean"], model.mean) and torch.equal(ckpt["model"]["std"], model.std)
    model.fit(build_dataset(cfg, "training"), torch.device("cpu"), progress=False)
    assert not torch.equal(ckpt["model"]["mean"], model.mean)  # all 120 frames give other statistics


# -- the budget inside the dataset: what is never read is never decoded ------------------------

def _cache_arrays(ds) -> list[np.ndarray]:
    return [np.load(ds._cache_paths[i]) for i in range(len(ds.videos))]


def test_a_split_over_the_budget_decodes_only_the_first_frames_of_each_video(tmp_path, load):
    """ShanghaiTech's layout (training videos are .avi files): 2 videos of 30 frames under a budget
    of 20 frames are the first 10 of each, equal to the whole decode's, and only those are cached."""
    make_shanghaitech(tmp_path / "st", train_length=30)
    whole = load("shanghaitech", tmp_path / "st", "training", clip_length=4)
    cut = load("shanghaitech", tmp_path / "st", "training", clip_length=4, max_frames=20)
    assert whole.lengths == [30, 30] and cut.lengths == [10, 10] and cut.per_video == 10
    assert len(cut) == 2 * (10 - 4 + 1)  # clips lie within what was read
    for i in range(2):
        assert torch.equal(cut.video_frames(i), whole.video_frames(i, 0, 10))
    assert [a.shape[0] for a in _cache_arrays(cut)] == [10, 10]  # only 10 frames were decoded and cached
    assert set(cut._cache_paths.values()).isdisjoint(whole._cache_paths.values())

    # Frames past the first 10 are never read: a video cut short after them is refused whole, not cut.
    cut_file(whole.videos[0].source, 0.6)
    with pytest.raises(DatasetError, match=r"01_001\.avi decodes to \d+ frames but its container claims 30"):
        load("shanghaitech", tmp_path / "st", "training", cache_dir=str(tmp_path / "cache2"))
    again = load("shanghaitech", tmp_path / "st", "training", max_frames=20, cache_dir=str(tmp_path / "cache3"))
    assert again.lengths == [10, 10] and again.truncated == {}


def test_a_cut_frame_file_past_the_budget_is_not_read(tmp_path, load):
    make_ucsd_frames(tmp_path / "ped2", lengths=(12, 12), intervals=([(3, 8)], []))  # testing: two frame folders of 12 frames
    whole = load("ped2", tmp_path / "ped2", "testing")
    files = whole.videos[1].source
    files[9].write_bytes(files[9].read_bytes()[:40])
    with pytest.raises(DatasetError, match=r"009\.\w+ is truncated"):
        load("ped2", tmp_path / "ped2", "testing", cache_dir=str(tmp_path / "cache2"))
    cut = load("ped2", tmp_path / "ped2", "testing", max_frames=10, cache_dir=str(tmp_path / "cache3"))
    assert cut.lengths == [5, 5] and cut.truncated == {}


def test_labels_are_cut_with_the_frames(tmp_path, load):
    """Per-frame masks (ShanghaiTech) and 1-based intervals (UCSD's .m file) alike: the labels of
    the frames read, an interval starting past them dropped, one running past them cut."""
    masks = make_shanghaitech(tmp_path / "st", tests={"01_0014": [(2, 6)], "01_0015": [(4, 5)], "02_0128": []},
                              lengths={"01_0014": 8, "01_0015": 6, "02_0128": 7})
    cut = load("shanghaitech", tmp_path / "st", "testing", max_frames=12)  # 4 a video
    assert cut.lengths == [4, 4, 4]
    for i, name in enumerate(cut.names):
        assert cut.labels(i).tolist() == masks[name][:4].tolist()
    assert cut.labels(0).tolist() == [0, 0, 1, 1] and cut.labels(1).tolist() == [0, 0, 0, 0]

    labels = make_ucsd_official(tmp_path / "ped2", lengths=(8, 6, 7), masks=(False, False, False))
    whole = load("ped2", tmp_path / "ped2", "testing")
    cut = load("ped2", tmp_path / "ped2", "testing", max_frames=9)  # 3 a video
    assert cut.lengths == [3, 3, 3]
    for i in range(3):
        assert cut.labels(i).tolist() == whole.labels(i)[:3].tolist() == list(labels.values())[i][:3].tolist()
    assert [cut.labels(i).tolist() for i in range(3)] == [[0, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_a_split_within_the_budget_is_read_whole_from_the_same_cache(tmp_path, load):
    make_shanghaitech(tmp_path / "st", train_length=30)
    whole = load("shanghaitech", tmp_path / "st", "training")
    within = load("shanghaitech", tmp_path / "st", "training", max_frames=60)
    assert within.lengths == [30, 30] and within.per_video is None
    assert within._cache_paths == whole._cache_paths


class FixedArguments(VideoDataset):
    """A dataset plugin whose constructor names its arguments (no ``max_frames``)."""

    def __init__(self, root, split, clip_length, image_size, channels, clip_stride, frame_step, cache_dir):
        super().__init__(root, split, clip_length, image_size, channels, clip_stride, frame_step, cache_dir)

    def list_videos(self):
        return [VideoRecord(p.stem, p) for p in sorted((self.root / "training" / "videos").glob("*.avi"))]


def test_build_fit_dataset_cuts_any_registered_dataset(tmp_path):
    make_shanghaitech(tmp_path / "st", train_length=30)
    DATASETS.register_module(name="fixed_arguments_for_test", module=FixedArguments, force=True)
    opts = ["DATASET.ROOT", str(tmp_path / "st"), "DATASET.IMAGE_SIZE", "[8, 8]", "DATASET.CLIP_LENGTH", "2",
            "DATASET.CACHE_DIR", str(tmp_path / "cache"), "TRAIN.FIT_MAX_FRAMES", "20"]
    native = build_fit_dataset(load_cfg(None, ["DATASET.NAME", "shanghaitech", *opts]))
    assert isinstance(native, VideoDataset) and native.lengths == [10, 10]
    plugin = build_fit_dataset(load_cfg(None, ["DATASET.NAME", "fixed_arguments_for_test", *opts]))
    assert isinstance(plugin, FirstFrames) and plugin.lengths == [10, 10]  # decoded whole, then cut
    assert torch.equal(plugin.video_frames(1), native.video_frames(1))
    every = build_fit_dataset(load_cfg(None, ["DATASET.NAME", "shanghaitech", *opts, "TRAIN.FIT_MAX_FRAMES", "0"]))
    assert every.lengths == [30, 30]


# -- a step-trained method: TRAIN.MAX_FRAMES -------------------------------------------------

def test_build_train_dataset_indexes_clips_only_within_the_budget(tmp_path, caplog):
    make_shanghaitech(tmp_path / "st", train_length=30)
    DATASETS.register_module(name="fixed_arguments_for_test", module=FixedArguments, force=True)
    opts = ["DATASET.ROOT", str(tmp_path / "st"), "DATASET.IMAGE_SIZE", "[8, 8]", "DATASET.CLIP_LENGTH", "3",
            "DATASET.CACHE_DIR", str(tmp_path / "cache"), "TRAIN.MAX_FRAMES", "20", "TRAIN.FIT_MAX_FRAMES", "0"]
    cut = build_train_dataset(load_cfg(None, ["DATASET.NAME", "shanghaitech", *opts]))
    assert cut.lengths == [10, 10] and len(cut) == 2 * (10 - 3 + 1)
    assert max(start + 3 for _, start in cut.index) == 10  # every clip within the first 10 frames
    whole = build_fit_dataset(load_cfg(None, ["DATASET.NAME", "shanghaitech", *opts]))  # FIT_MAX_FRAMES 0: whole
    assert whole.lengths == [30, 30] and len(whole) == 2 * (30 - 3 + 1)
    sample = cut[len(cut) - 1]
    assert torch.equal(sample["frames"], whole.video_frames(1, 7, 10))
    every = build_train_dataset(load_cfg(None, ["DATASET.NAME", "shanghaitech", *opts, "TRAIN.MAX_FRAMES", "0"]))
    assert every.lengths == [30, 30]
    # a plugin that cannot take the budget is read whole, and the log says so
    with caplog.at_level(logging.INFO, logger="pyanomaly"):
        plugin = build_train_dataset(load_cfg(None, ["DATASET.NAME", "fixed_arguments_for_test", *opts]))
    assert isinstance(plugin, FixedArguments) and plugin.lengths == [30, 30]
    assert "TRAIN.MAX_FRAMES 20 does not apply to DATASET.NAME fixed_arguments_for_test" in caplog.text
    assert "whole training split of 60 frames" in caplog.text


class PassesArguments(FixedArguments):
    """A plugin that passes ``**kwargs`` on to a parent which takes no ``max_frames``."""

    def __init__(self, root, *args, **kwargs):
        super().__init__(root, *args, **kwargs)


class PassesToVideoDataset(VideoDataset):
    def __init__(self, root, *args, **kwargs):
        super().__init__(root, *args, **kwargs)


def test_a_budget_reaches_only_constructors_that_take_it():
    from pyanomaly.datasets.build import _takes
    assert _takes(VideoDataset, "max_frames") and _takes(PassesToVideoDataset, "max_frames")
    assert not _takes(FixedArguments, "max_frames") and not _takes(PassesArguments, "max_frames")
    assert all(_takes(DATASETS.get(name), "max_frames") for name in ("ped2", "shanghaitech", "kth", "motion_digits"))


def test_a_step_trained_method_trains_on_the_budget(tmp_path, tiny_synthetic, restore_logging):
    """configs/convlstm.yaml on 2 training videos of 60 frames under TRAIN.MAX_FRAMES 40: its clips
    of 5 come from the first 20 frames of each video, the rest never decoded; the test split whole."""
    cfg = load_cfg(str(REPO / "configs/convlstm.yaml"), [
        "DATASET.ROOT", str(tiny_synthetic), "DATASET.IMAGE_SIZE", "[16, 16]", "SYSTEM.OUTPUT_DIR", str(tmp_path / "run"),
        "DATASET.CACHE_DIR", str(tmp_path / "cache"), "TRAIN.MAX_FRAMES", "40", "TRAIN.MAX_STEPS", "2",
        "TRAIN.EVAL_PERIOD", "0", "TRAIN.IMAGE_PERIOD", "0", "EVAL.PLOTS", "False", "EVAL.REPORT", "False",
        "LOG.PROGRESS", "False"])
    metrics = launch.train(cfg)
    log = (tmp_path / "run/log.txt").read_text()
    assert "max_frames 40: reading the first 20 frames of each of the 2 'training' videos (2 cut; 120 frames" in log
    assert f"training split: 2 videos, {2 * (20 - 5 + 1)} clips of 5 frames; test split: 4 videos, 240 frames" in log
    assert metrics["frames_evaluated"] + metrics["frames_unscored"] == 4 * 60
    cached = sorted(np.load(p).shape[0] for p in (tmp_path / "cache").rglob("*.npy"))
    assert cached == [20, 20, 60, 60, 60, 60]  # the training videos' first 20 frames, the test videos whole


def test_the_training_split_is_scored_as_training_reads_it(tmp_path):
    """TEST.SPLIT training (the pseudo-anomaly validation) builds the split under TRAIN.MAX_FRAMES."""
    from pyanomaly.datasets import build_test_dataset
    make_shanghaitech(tmp_path / "st", train_length=30)
    opts = ["DATASET.NAME", "shanghaitech", "DATASET.ROOT", str(tmp_path / "st"), "DATASET.IMAGE_SIZE", "[8, 8]",
            "DATASET.CLIP_LENGTH", "2", "DATASET.CACHE_DIR", str(tmp_path / "cache"), "TEST.SPLIT", "training"]
    assert build_test_dataset(load_cfg(None, [*opts, "TRAIN.MAX_FRAMES", "20"])).lengths == [10, 10]
    assert build_test_dataset(load_cfg(None, [*opts, "TRAIN.MAX_FRAMES", "0"])).lengths == [30, 30]
    pseudo = build_test_dataset(load_cfg(None, [*opts, "TRAIN.MAX_FRAMES", "20", "TEST.PSEUDO_ANOMALY", "frame_skip",
                                                "TEST.PSEUDO_ANOMALY.length", "3"]))
    assert pseudo.base.lengths == [10, 10]  # the segments are cut from the frames training reads
