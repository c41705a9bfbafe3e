"""``ped1`` and ``ped2``: the UCSD Anomaly Detection Dataset, in either published layout.

Source: V. Mahadevan, W. Li, V. Bhalodia, N. Vasconcelos, "Anomaly Detection in Crowded
Scenes", CVPR 2010 (UCSD SVCL). Fixed cameras over pedestrian walkways; anomalies are
non-pedestrians (bikes, skaters, carts) and unusual motion.

The layout is detected from what is under ``ROOT``:

Official tree (``ROOT`` = ``UCSDpedN`` or the folder holding it)::

    Train/Train001/001.tif ...          normal footage
    Test/Test001/001.tif ...            test footage
    Test/Test001_gt/001.bmp ...         pixel masks, one per frame (not every video has them)
    Test/UCSDpedN.m                     frame intervals: TestVideoFile{end+1}.gt_frame = [61:180];

    A frame is anomalous if its mask has a positive pixel; a video without ``_gt`` masks
    (most of Ped1's) takes its frames from the ``.m`` intervals (1-based, inclusive).

Frame-folder layout (common since 2018)::

    training/frames/01/000.jpg ...
    testing/frames/01/000.jpg ...
    pedN.mat                            key gt: 1xV cell, per video 2xK [start; end] (1-based, inclusive)

``DATASET.ARGS.label_file`` replaces the default ground-truth file (a ``.m`` or a ``.mat``,
relative to ``ROOT``). Frame ``k`` (0-based position in its video) is anomalous when
``start <= k + 1 <= end`` for one of its intervals.

Example:
    >>> ds = Ped2Dataset("../shared/data/ped2", split="testing", clip_length=5, image_size=(64, 64))
    >>> len(ds.names), sum(ds.lengths), int(sum(ds.labels(i).sum() for i in range(12)))
    (12, 2010, 1648)
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from pyanomaly.registry import DATASETS

from .base import DatasetError, VideoDataset, VideoRecord, check_frame_files, sorted_frames
from .folder import find_videos
from .matlab_labels import Intervals, read_interval_mat, read_ucsd_m, to_zero_based


def mask_labels(masks: list[Path]) -> np.ndarray:
    """Per-frame labels ``(N,)`` uint8 from N mask images: 1 if any pixel is positive."""
    labels = np.zeros(len(masks), dtype=np.uint8)
    for t, path in enumerate(masks):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise DatasetError(f"unreadable mask file {path}")
        labels[t] = bool(np.any(mask > 0))
    return labels


def read_intervals(path: Path) -> list[Intervals]:
    """Per test video, 0-based inclusive intervals from a UCSD ``.m`` or a ``gt`` ``.mat`` file."""
    raw = read_ucsd_m(path) if Path(path).suffix.lower() == ".m" else read_interval_mat(path)
    return [to_zero_based(v) for v in raw]


class UCSDPedDataset(VideoDataset):
    """UCSD Ped1/Ped2 in the official or the frame-folder layout (see the module docstring)."""

    ped = 0  # 1 or 2, set by the registered subclasses

    def list_videos(self) -> list[VideoRecord]:
        official = self._official_root()
        if official is not None:
            return self._list_official(official)
        if (self.root / "training").is_dir() or (self.root / "testing").is_dir():
            return self._list_frame_folders()
        raise DatasetError(
            f"ped{self.ped}: {self.root} holds neither the official UCSD layout (Train/, Test/, or "
            f"UCSDped{self.ped}/Train, UCSDped{self.ped}/Test) nor the frame-folder layout "
            "(training/frames/, testing/frames/)")

    def _official_root(self) -> Path | None:
        for base in (self.root, self.root / f"UCSDped{self.ped}"):
            if (base / "Train").is_dir() and (base / "Test").is_dir():
                return base
        return None

    # -- official tree ----------------------------------------------------------------
    def _list_official(self, base: Path) -> list[VideoRecord]:
        folder = base / ("Train" if self.split == "training" else "Test")
        records = find_videos(folder, skip=lambda p: p.name.endswith("_gt"))
        if self.split == "training" or not records:
            return records
        intervals, m_path = None, None
        for rec in records:
            gt_dir = folder / f"{rec.name}_gt"
            if gt_dir.is_dir():
                masks = sorted_frames(gt_dir)
                check_frame_files(gt_dir.name, masks)
                if len(masks) != len(rec.source):
                    raise DatasetError(
                        f"video '{rec.name}': {len(rec.source)} frames but {len(masks)} masks in {gt_dir}")
                rec.labels = self.cached_array(f"ped{self.ped}-{rec.name}", masks, lambda m=masks: mask_labels(m))
                rec.label_source = gt_dir
                continue
            if intervals is None:
                m_path = self._m_file(base, rec.name)
                intervals = read_intervals(m_path)
                if len(intervals) != len(records):
                    raise DatasetError(
                        f"{m_path}: {len(intervals)} gt_frame entries but {folder} holds {len(records)} test videos")
            number = _video_number(rec.name)
            if number is None or not 1 <= number <= len(intervals):
                raise DatasetError(f"video '{rec.name}': cannot match it to an entry of {m_path} "
                                   f"(expected names Test001..Test{len(intervals):03d})")
            rec.intervals, rec.label_source = intervals[number - 1], m_path
        return records

    def _m_file(self, base: Path, video: str) -> Path:
        if self.label_file is not None:
            return self.label_file
        name = f"UCSDped{self.ped}.m"
        for path in (base / "Test" / name, base / name):
            if path.is_file():
                return path
        found = sorted(base.glob("Test/*.m")) + sorted(base.glob("*.m"))
        if len(found) == 1:
            return found[0]
        raise DatasetError(
            f"video '{video}' has no pixel masks ({base / 'Test' / (video + '_gt')}) and no "
            f"{name} with frame intervals was found in {base / 'Test'} or {base}"
            + (f" (several .m files: {[p.name for p in found]}; set DATASET.ARGS.label_file)" if found else ""))

    # -- frame folders ----------------------------------------------------------------
    def _list_frame_folders(self) -> list[VideoRecord]:
        folder = self.root / self.split
        if not folder.is_dir():
            raise DatasetError(f"ped{self.ped}: missing split folder {folder}")
        records = find_videos(folder)
        if self.split == "training" or not records:
            return records
        path = self.label_file
        if path is None:
            name = f"ped{self.ped}.mat"
            path = next((p for p in (self.root / name, folder / name) if p.is_file()), None)
            if path is None:
                raise DatasetError(f"ped{self.ped}: ground truth {self.root / name} not found "
                                   "(or set DATASET.ARGS.label_file)")
        intervals = read_intervals(path)
        if len(intervals) != len(records):
            raise DatasetError(f"{path}: ground truth for {len(intervals)} videos but {folder} "
                               f"holds {len(records)} test videos")
        for rec, iv in zip(records, intervals):
            rec.intervals, rec.label_source = iv, path
        return records


def _video_number(name: str) -> int | None:
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else None


@DATASETS.register_module(name="ped1")
class Ped1Dataset(UCSDPedDataset):
    """UCSD Ped1: 34 training and 36 test videos of 200 frames, 238x158 (official archive)."""

    ped = 1


@DATASETS.register_module(name="ped2")
class Ped2Dataset(UCSDPedDataset):
    """UCSD Ped2: 16 training and 12 test videos, 360x240.

    ``reference`` holds the counts of the official annotation; ``tools/prepare_data.py``
    warns when a copy differs (edited ``ped2.mat`` files circulate).
    """

    ped = 2
    reference = {"training": {"videos": 16, "frames": 2550},
                 "testing": {"videos": 12, "frames": 2010, "anomalous": 1648}}
