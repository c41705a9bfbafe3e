"""``shanghaitech``: the ShanghaiTech Campus dataset, in its published layout.

Source: W. Liu, W. Luo, D. Lian, S. Gao, "Future Frame Prediction for Anomaly Detection --
A New Baseline", CVPR 2018 (ShanghaiTech University). 13 scenes, each seen by its own
camera; a video's name starts with its scene id: ``01_0014`` is scene ``01``.

Layout under ``ROOT``::

    training/videos/01_001.avi ...      normal footage, one video file each
                                        (training/frames/01_001/*.jpg is accepted instead)
    testing/frames/01_0014/000.jpg ...  test footage as frame folders
    testing/test_frame_mask/01_0014.npy ground truth: (N,) 0/1, one per frame, frame k (0-based)
                                        anomalous when mask[k] == 1 (ROOT/test_frame_mask/ also found)

``DATASET.ARGS.label_file`` may name another folder of ``<video>.npy`` files. Per-scene
results: :attr:`VideoDataset.groups` gives each video's scene id.

Example:
    >>> ds = ShanghaiTechDataset("data/shanghaitech", split="testing", clip_length=5, image_size=(64, 64))
    >>> ds.names[0], ds.groups[0]
    ('01_0014', '01')
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pyanomaly.registry import DATASETS

from .base import DatasetError, VideoDataset, VideoRecord
from .folder import find_videos


def scene_of(name: str) -> str:
    """Scene id of a ShanghaiTech video name: the part before the first ``_`` (``"01_0014"`` -> ``"01"``)."""
    return name.split("_", 1)[0]


def read_frame_mask(path: Path) -> np.ndarray:
    """Labels ``(N,)`` uint8 from a ``test_frame_mask/<video>.npy`` file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"unreadable label file {path} ({exc})") from None
    if arr.ndim != 1:
        raise DatasetError(f"{path}: frame mask has shape {arr.shape}, expected (N,): one 0/1 per frame")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DatasetError(f"{path}: frame mask has dtype {arr.dtype}, expected numbers 0/1")
    bad = np.setdiff1d(np.unique(arr), [0, 1])
    if bad.size:
        raise DatasetError(f"{path}: frame mask must hold 0 or 1, found {bad[:5].tolist()}")
    return arr.astype(np.uint8)


@DATASETS.register_module(name="shanghaitech")
class ShanghaiTechDataset(VideoDataset):
    """ShanghaiTech Campus (see the module docstring); ``groups`` are scene ids."""

    def list_videos(self) -> list[VideoRecord]:
        folder = self.root / self.split
        if self.split == "training":
            candidates = [folder / "videos", folder / "frames"]
        else:
            candidates = [folder / "frames"]
        source = next((p for p in candidates if p.is_dir()), None)
        if source is None:
            raise DatasetError(f"shanghaitech: missing {' or '.join(str(p) for p in candidates)}")
        records = find_videos(source)
        for rec in records:
            rec.group = scene_of(rec.name)
        if self.split == "testing" and records:
            masks = self.label_file or next(
                (p for p in (folder / "test_frame_mask", self.root / "test_frame_mask") if p.is_dir()),
                folder / "test_frame_mask")
            if not masks.is_dir():
                raise DatasetError(f"shanghaitech: ground-truth folder {masks} not found "
                                   "(one <video>.npy per test video)")
            for rec in records:
                path = masks / f"{rec.name}.npy"
                if not path.is_file():
                    raise DatasetError(f"shanghaitech: test video '{rec.name}' has no label file {path}")
                rec.labels, rec.label_source = read_frame_mask(path), path
        return records
