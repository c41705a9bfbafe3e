"""TRAIN.FIT_MAX_FRAMES: what a method fitted to the training videos reads of them."""
from __future__ import annotations

import logging

import torch

from pyanomaly.config import load_cfg
from pyanomaly.datasets import build_dataset
from pyanomaly.datasets.first_frames import FirstFrames, limit_frames
from pyanomaly.engine import launch
from testutils import REPO


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
    assert "cell's mean speed over 38 training frames" in (tmp_path / "run/log.txt").read_text()
    ckpt = torch.load(tmp_path / "run/checkpoints/last.pth", weights_only=True)
    assert ckpt["step"] == 40  # frames read

    from pyanomaly.models.build import build_model
    model = build_model(cfg, torch.device("cpu"))
    assert model.fit(FirstFrames(build_dataset(cfg, "training"), 20), torch.device("cpu"), progress=False) == 40
    assert torch.equal(ckpt["model"]["mean"], model.mean) and torch.equal(ckpt["model"]["std"], model.std)
    model.fit(build_dataset(cfg, "training"), torch.device("cpu"), progress=False)
    assert not torch.equal(ckpt["model"]["mean"], model.mean)  # all 120 frames give other statistics
