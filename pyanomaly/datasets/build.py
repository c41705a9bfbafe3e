"""Build a dataset split from the config (the one place that reads ``DATASET.*``)."""
from __future__ import annotations

from yacs.config import CfgNode

from pyanomaly.registry import DATASETS, build

from .base import VideoDataset
from .pseudo import FastObjectAnomalies, FrameSkipAnomalies, PseudoAnomalies


def build_dataset(cfg: CfgNode, split: str) -> VideoDataset:
    """The ``split`` (``"training"`` / ``"testing"``) of ``DATASET.NAME`` at ``DATASET.ROOT``."""
    d = cfg.DATASET
    args = dict(type=d.NAME, root=d.ROOT, split=split, clip_length=d.CLIP_LENGTH,
                image_size=tuple(d.IMAGE_SIZE), channels=d.CHANNELS, clip_stride=d.CLIP_STRIDE,
                frame_step=d.FRAME_STEP, cache_dir=d.CACHE_DIR)
    args.update(d.ARGS)
    return build(DATASETS, args)


def build_test_dataset(cfg: CfgNode) -> VideoDataset | PseudoAnomalies:
    """The split scored by ``tools/test.py``: ``TEST.SPLIT``, with pseudo-anomalies where
    ``TEST.PSEUDO_ANOMALY`` asks for them (their segments placed by ``SYSTEM.SEED`` and
    ``TEST.PSEUDO_MARGIN``)."""
    data = build_dataset(cfg, cfg.TEST.SPLIT)
    margin = cfg.TEST.PSEUDO_MARGIN or cfg.DATASET.CLIP_LENGTH
    if cfg.TEST.PSEUDO_ANOMALY == "frame_skip":
        data = FrameSkipAnomalies(data, cfg.TEST.PSEUDO_SKIP, cfg.TEST.PSEUDO_LENGTH, margin=margin,
                                  seed=cfg.SYSTEM.SEED)
    elif cfg.TEST.PSEUDO_ANOMALY == "fast_object":
        data = FastObjectAnomalies(data, cfg.TEST.PSEUDO_SPEED, cfg.TEST.PSEUDO_SIZE, cfg.TEST.PSEUDO_LENGTH,
                                   margin=margin, seed=cfg.SYSTEM.SEED)
    return data
