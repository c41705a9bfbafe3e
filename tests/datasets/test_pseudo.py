"""Frame-skip pseudo-anomalies: labelled fast segments made from normal videos, scored as a test split."""
import numpy as np
import pytest
import torch
from yacs.config import CfgNode

from pyanomaly.config import ConfigError, get_cfg, load_cfg
from pyanomaly.datasets import FrameSkipAnomalies, build_dataset, build_test_dataset


def _cfg(root):
    cfg = get_cfg()
    cfg.DATASET.NAME, cfg.DATASET.ROOT, cfg.DATASET.IMAGE_SIZE = "synthetic", str(root), [32, 32]
    cfg.DATASET.CLIP_LENGTH = 4
    cfg.TEST.SPLIT, cfg.TEST.PSEUDO_ANOMALY, cfg.TEST.PSEUDO_SKIP, cfg.TEST.PSEUDO_LENGTH = "training", "frame_skip", 3, 8
    return cfg


def test_each_video_gets_one_fast_segment_labelled_where_it_plays(tiny_synthetic):
    cfg = _cfg(tiny_synthetic)
    base = build_dataset(cfg, "training")
    pseudo = build_test_dataset(cfg)
    assert isinstance(pseudo, FrameSkipAnomalies) and pseudo.names == base.names
    for i, n in enumerate(base.lengths):
        labels = pseudo.labels(i)
        assert pseudo.lengths[i] == len(labels) == n - 8 * (3 - 1)  # 24 base frames shown as 8
        (where,) = np.nonzero(labels)
        a = int(where[0]) - 1  # the last frame shown as in the original
        assert list(where) == list(range(a + 1, a + 9)) and a >= cfg.DATASET.CLIP_LENGTH
        frames, original = pseudo.video_frames(i), base.video_frames(i)
        assert torch.equal(frames[:a + 1], original[:a + 1])
        assert torch.equal(frames[a:a + 9], original[a:a + 25:3])  # a, then 8 jumps of 3 frames
        assert torch.equal(frames[a + 8:], original[a + 24:])
        assert torch.equal(pseudo.video_frames(i, a - 2, a + 3), frames[a - 2:a + 3])  # chunks read the same


def test_segments_follow_the_seed_and_short_videos_stay_normal(tiny_synthetic):
    base = build_dataset(_cfg(tiny_synthetic), "training")
    starts = {seed: [int(np.argmax(FrameSkipAnomalies(base, 3, 8, seed=seed).labels(i))) for i in range(2)]
              for seed in (0, 0, 1, 2, 3)}
    assert len({tuple(s) for s in starts.values()}) > 1  # seeds move the segments
    assert starts[0] == [int(np.argmax(FrameSkipAnomalies(base, 3, 8, seed=0).labels(i))) for i in range(2)]
    too_long = FrameSkipAnomalies(base, skip=10, length=10)  # 100 frames needed, videos have 60
    assert all(too_long.labels(i).sum() == 0 and too_long.lengths[i] == base.lengths[i] for i in range(2))


def test_pseudo_anomalies_score_like_a_test_split(tiny_synthetic):
    from pyanomaly.engine.inference import evaluate
    from pyanomaly.engine.launch import build_model
    cfg = _cfg(tiny_synthetic)
    cfg.MODEL.NAME = "PredNetPredictor"
    cfg.MODEL.ARGS.network = CfgNode(dict(type="PredNet", stack_sizes=[1, 8], R_stack_sizes=[8, 8],
                                          A_filter_sizes=[3], Ahat_filter_sizes=[3, 3], R_filter_sizes=[3, 3]))
    cfg.LOG.PROGRESS = False
    torch.manual_seed(0)
    data = build_test_dataset(cfg)
    metrics = evaluate(build_model(cfg, torch.device("cpu")), data, cfg, torch.device("cpu"))
    assert 0.0 <= metrics["auc_micro"] <= 1.0
    assert metrics["frames_evaluated"] + metrics["frames_unscored"] == sum(data.lengths)


def test_bad_pseudo_settings_are_refused(tiny_synthetic):
    with pytest.raises(ConfigError, match="TEST.PSEUDO_ANOMALY.* must be one of"):
        load_cfg(None, ["TEST.PSEUDO_ANOMALY", "reverse"])
    with pytest.raises(ValueError, match="TEST.PSEUDO_SKIP"):
        FrameSkipAnomalies(build_dataset(_cfg(tiny_synthetic), "training"), skip=1)
