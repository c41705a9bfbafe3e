"""Pseudo-anomalies: labelled fast segments and fast objects made from normal videos, scored as a test split."""
import numpy as np
import pytest
import torch
from yacs.config import CfgNode

from pyanomaly.config import load_cfg
from pyanomaly.datasets import FastObjectAnomalies, FrameSkipAnomalies, build_dataset, build_test_dataset
from pyanomaly.datasets.base import VideoDataset
from pyanomaly.registry import PSEUDO_ANOMALIES, RegistryError, registered_names


def _cfg(root, *opts):
    """The tiny split with 3x-too-fast segments of 8 frames; ``opts`` override last (``KEY VALUE``)."""
    return load_cfg(None, ["DATASET.NAME", "synthetic", "DATASET.ROOT", str(root), "DATASET.IMAGE_SIZE", "[32, 32]",
                           "DATASET.CLIP_LENGTH", "4", "TEST.SPLIT", "training",
                           "TEST.PSEUDO_ANOMALY", "{'type': 'frame_skip', 'skip': 3, 'length': 8}", *opts], freeze=False)


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
    starts = {}
    for clip, margin in ((4, 0), (4, 11), (11, 0), (6, 11)):
        cfg = _cfg(tiny_synthetic, "TEST.PSEUDO_ANOMALY", "{'type': 'fast_object', 'length': 8}",
                   "DATASET.CLIP_LENGTH", str(clip), "TEST.PSEUDO_ANOMALY.margin", str(margin))
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
    cfg = _cfg(tiny_synthetic, *(["TEST.PSEUDO_ANOMALY", kind, "TEST.PSEUDO_ANOMALY.length", "8"]
                                 if kind == "fast_object" else []))
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


def test_a_bare_name_on_the_command_line_is_a_spec_with_the_default_arguments(tiny_synthetic):
    cfg = load_cfg(None, ["TEST.PSEUDO_ANOMALY", "fast_object"])
    assert cfg.TEST.PSEUDO_ANOMALY == {"type": "fast_object"}
    data = build_test_dataset(_cfg(tiny_synthetic, "TEST.PSEUDO_ANOMALY", "fast_object"))
    assert isinstance(data, FastObjectAnomalies)
    assert (data.speed, data.size, data.length, data.margin) == (0.012, 0.15, 20, 4)  # margin 0 = DATASET.CLIP_LENGTH
    cfg = load_cfg(None, ["TEST.PSEUDO_ANOMALY", "frame_skip", "TEST.PSEUDO_ANOMALY.length", "5"])
    assert cfg.TEST.PSEUDO_ANOMALY == {"type": "frame_skip", "length": 5}


def test_the_default_is_the_split_as_it_is(tiny_synthetic):
    assert load_cfg(None).TEST.PSEUDO_ANOMALY == {"type": "none"}
    cfg = _cfg(tiny_synthetic, "TEST.PSEUDO_ANOMALY", "none")
    data, base = build_test_dataset(cfg), build_dataset(cfg, "training")
    assert isinstance(data, VideoDataset) and data.names == base.names and data.lengths == base.lengths
    assert {"none", "frame_skip", "fast_object"} <= set(registered_names(PSEUDO_ANOMALIES))


def test_bad_pseudo_settings_are_refused(tiny_synthetic, tmp_path):
    # an unknown kind fails before the split is read (there is none at this root)
    missing = _cfg(tmp_path / "none_here", "DATASET.NAME", "folder", "TEST.PSEUDO_ANOMALY", "fast_objet")
    with pytest.raises(RegistryError, match="TEST.PSEUDO_ANOMALY: unknown pseudo-anomaly kind 'fast_objet'. "
                                            "Did you mean 'fast_object'?.*fast_object, frame_skip, none"):
        build_test_dataset(missing)
    with pytest.raises(RegistryError, match=r"TEST.PSEUDO_ANOMALY: .*unknown argument\(s\) \['sped'\]"):
        build_test_dataset(_cfg(tiny_synthetic, "TEST.PSEUDO_ANOMALY.sped", "0.1"))
    with pytest.raises(RegistryError, match=r"TEST.PSEUDO_ANOMALY: .*unknown argument\(s\) \['length'\]"):
        build_test_dataset(_cfg(tiny_synthetic, "TEST.PSEUDO_ANOMALY", "none", "TEST.PSEUDO_ANOMALY.length", "5"))
    with pytest.raises(ValueError, match="TEST.PSEUDO_ANOMALY.margin must be >= 0"):
        build_test_dataset(_cfg(tiny_synthetic, "TEST.PSEUDO_ANOMALY.margin", "-1"))
    base = build_dataset(_cfg(tiny_synthetic), "training")
    with pytest.raises(ValueError, match="TEST.PSEUDO_ANOMALY.skip"):
        FrameSkipAnomalies(base, skip=1)
    with pytest.raises(ValueError, match="TEST.PSEUDO_ANOMALY.speed"):
        FastObjectAnomalies(base, speed=0.0)
    with pytest.raises(ValueError, match="TEST.PSEUDO_ANOMALY.size"):
        FastObjectAnomalies(base, size=1.0)
    with pytest.raises(ValueError, match="TEST.PSEUDO_ANOMALY.length"):
        FastObjectAnomalies(base, length=0)


def _object_centre(diff: torch.Tensor) -> np.ndarray:
    """Centre (y, x) of the pixels where a frame differs from the original."""
    ys, xs = np.nonzero(diff.abs().sum(0).numpy() > 0)
    return np.array([ys.mean(), xs.mean()])


def test_a_fast_object_slides_through_its_segment_only(tiny_synthetic, tmp_path):
    (tmp_path / "fast.yaml").write_text("DATASET: {IMAGE_SIZE: [48, 64], CLIP_LENGTH: 4}\n"
                                        "TEST: {SPLIT: training, PSEUDO_ANOMALY: {type: fast_object, speed: 0.05, size: 0.3}}\n")
    cfg = load_cfg(tmp_path / "fast.yaml", ["DATASET.ROOT", str(tiny_synthetic), "TEST.PSEUDO_ANOMALY.length", "6"])
    assert cfg.TEST.PSEUDO_ANOMALY == {"type": "fast_object", "speed": 0.05, "size": 0.3, "length": 6}
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
