"""Pseudo-anomalies: labelled fast segments and fast objects made from normal videos, scored as a test split."""
import numpy as np
import pytest
import torch
from yacs.config import CfgNode

from pyanomaly.config import ConfigError, get_cfg, load_cfg
from pyanomaly.datasets import FastObjectAnomalies, FrameSkipAnomalies, build_dataset, build_test_dataset


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


def test_the_margin_places_the_segments_whatever_the_clip_length(tiny_synthetic):
    cfg = _cfg(tiny_synthetic)
    cfg.TEST.PSEUDO_ANOMALY = "fast_object"
    starts = {}
    for clip, margin in ((4, 0), (4, 11), (11, 0), (6, 11)):
        cfg.DATASET.CLIP_LENGTH, cfg.TEST.PSEUDO_MARGIN = clip, margin
        starts[clip, margin] = build_test_dataset(cfg).starts
    assert starts[4, 11] == starts[11, 0] == starts[6, 11] != starts[4, 0]
    assert min(starts[4, 11]) >= 11


def test_segments_follow_the_seed_and_short_videos_stay_normal(tiny_synthetic):
    base = build_dataset(_cfg(tiny_synthetic), "training")
    starts = {seed: [int(np.argmax(FrameSkipAnomalies(base, 3, 8, seed=seed).labels(i))) for i in range(2)]
              for seed in (0, 0, 1, 2, 3)}
    assert len({tuple(s) for s in starts.values()}) > 1  # seeds move the segments
    assert starts[0] == [int(np.argmax(FrameSkipAnomalies(base, 3, 8, seed=0).labels(i))) for i in range(2)]
    too_long = FrameSkipAnomalies(base, skip=10, length=10)  # 100 frames needed, videos have 60
    assert all(too_long.labels(i).sum() == 0 and too_long.lengths[i] == base.lengths[i] for i in range(2))


@pytest.mark.parametrize("kind", ["frame_skip", "fast_object"])
def test_pseudo_anomalies_score_like_a_test_split(tiny_synthetic, kind):
    from pyanomaly.evaluation.build import build_task
    from pyanomaly.models.build import build_model
    cfg = _cfg(tiny_synthetic)
    cfg.TEST.PSEUDO_ANOMALY = kind
    cfg.MODEL.NAME = "PredNetPredictor"
    cfg.MODEL.ARGS.network = CfgNode(dict(type="PredNet", stack_sizes=[1, 8], R_stack_sizes=[8, 8],
                                          A_filter_sizes=[3], Ahat_filter_sizes=[3, 3], R_filter_sizes=[3, 3]))
    cfg.LOG.PROGRESS = False
    torch.manual_seed(0)
    data = build_test_dataset(cfg)
    assert isinstance(data, FastObjectAnomalies if kind == "fast_object" else FrameSkipAnomalies)
    metrics = build_task(cfg).evaluate(build_model(cfg), data, torch.device("cpu"))
    assert 0.0 <= metrics["auc_micro"] <= 1.0
    assert metrics["frames_evaluated"] + metrics["frames_unscored"] == sum(data.lengths)


def test_bad_pseudo_settings_are_refused(tiny_synthetic):
    with pytest.raises(ConfigError, match="TEST.PSEUDO_ANOMALY.* must be one of"):
        load_cfg(None, ["TEST.PSEUDO_ANOMALY", "reverse"])
    assert load_cfg(None, ["TEST.PSEUDO_ANOMALY", "fast_object"]).TEST.PSEUDO_ANOMALY == "fast_object"
    with pytest.raises(ConfigError, match="TEST.PSEUDO_MARGIN"):
        load_cfg(None, ["TEST.PSEUDO_MARGIN", "-1"])
    with pytest.raises(ValueError, match="TEST.PSEUDO_SKIP"):
        FrameSkipAnomalies(build_dataset(_cfg(tiny_synthetic), "training"), skip=1)
    base = build_dataset(_cfg(tiny_synthetic), "training")
    with pytest.raises(ValueError, match="TEST.PSEUDO_SPEED"):
        FastObjectAnomalies(base, speed=0.0)
    with pytest.raises(ValueError, match="TEST.PSEUDO_SIZE"):
        FastObjectAnomalies(base, size=1.0)
    with pytest.raises(ValueError, match="TEST.PSEUDO_LENGTH"):
        FastObjectAnomalies(base, length=0)


def _object_centre(diff: torch.Tensor) -> np.ndarray:
    """Centre (y, x) of the pixels where a frame differs from the original."""
    ys, xs = np.nonzero(diff.abs().sum(0).numpy() > 0)
    return np.array([ys.mean(), xs.mean()])


def test_a_fast_object_slides_through_its_segment_only(tiny_synthetic):
    cfg = _cfg(tiny_synthetic)
    cfg.DATASET.IMAGE_SIZE = [48, 64]
    cfg.TEST.PSEUDO_ANOMALY, cfg.TEST.PSEUDO_LENGTH, cfg.TEST.PSEUDO_SPEED, cfg.TEST.PSEUDO_SIZE = "fast_object", 6, 0.05, 0.3
    base = build_dataset(cfg, "training")
    pseudo = build_test_dataset(cfg)
    assert pseudo.lengths == base.lengths and pseudo.names == base.names
    for i, n in enumerate(base.lengths):
        (where,) = np.nonzero(pseudo.labels(i))
        a = int(where[0])
        assert list(where) == list(range(a, a + 6)) and a >= cfg.DATASET.CLIP_LENGTH
        frames, original = pseudo.video_frames(i), base.video_frames(i)
        outside = np.ones(n, dtype=bool)
        outside[a:a + 6] = False
        assert torch.equal(frames[outside], original[outside])  # nothing else is touched
        diff = frames[a:a + 6] - original[a:a + 6]
        assert all(d.abs().amax() > 0.05 for d in diff)  # the object is visible in every frame
        assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
        centres = np.stack([_object_centre(d) for d in diff])
        steps = np.hypot(*np.diff(centres, axis=0).T)
        # 0.05 frame widths = 3.2 px a frame; the soft edge over changing backgrounds blurs the centre
        assert 1.5 < float(np.median(steps)) < 5.0
        assert torch.equal(pseudo.video_frames(i, a - 2, a + 3), frames[a - 2:a + 3])  # chunks read the same
    seeds = {s: tuple(FastObjectAnomalies(base, length=6, seed=s).starts) for s in (0, 1, 2)}
    assert len(set(seeds.values())) > 1 and seeds[0] == tuple(FastObjectAnomalies(base, length=6, seed=0).starts)
    too_long = FastObjectAnomalies(base, length=base.lengths[0])
    assert all(too_long.labels(i).sum() == 0 for i in range(len(base.lengths)))
    assert torch.equal(too_long.video_frames(0), base.video_frames(0))
