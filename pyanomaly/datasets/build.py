"""Build a dataset split from the config (the one place that reads ``DATASET.*``)."""
from __future__ import annotations

from yacs.config import CfgNode

from pyanomaly.registry import DATASETS, build

from .base import VideoDataset


def build_dataset(cfg: CfgNode, split: str) -> VideoDataset:
    """The ``split`` (``"training"`` / ``"testing"``) of ``DATASET.NAME`` at ``DATASET.ROOT``."""
    d = cfg.DATASET
    args = dict(type=d.NAME, root=d.ROOT, split=split, clip_length=d.CLIP_LENGTH,
                image_size=tuple(d.IMAGE_SIZE), channels=d.CHANNELS, clip_stride=d.CLIP_STRIDE,
                frame_step=d.FRAME_STEP, cache_dir=d.CACHE_DIR)
    args.update(d.ARGS)
    return build(DATASETS, args)
