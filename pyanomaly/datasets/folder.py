"""``folder``: a user's own videos, as video files or frame folders, with optional labels.

Layout (``ROOT``)::

    training/           normal footage: video files (any OpenCV-readable format) or
                        frame folders, one per video (a frames/ level is optional)
    testing/            footage to score, same forms
    testing/labels.csv  optional; header ``video,start,end``: anomalous frames start..end,
                        0-based inclusive, one row per interval; a video absent = all normal

``video`` is the file name without extension or the folder name. ``DATASET.ARGS.label_file``
points to another CSV for the test split (relative to ``ROOT``).

Example:
    >>> ds = FolderDataset("my_cams", split="testing", clip_length=5, image_size=(64, 64))
    >>> ds.names, ds.lengths
    (['cam1', 'cam2'], [900, 1200])
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from pyanomaly.registry import DATASETS

from .base import VIDEO_EXTENSIONS, DatasetError, VideoDataset, VideoRecord, sorted_frames


def find_videos(folder: Path, skip: Callable[[Path], bool] | None = None) -> list[VideoRecord]:
    """Video files and frame folders directly inside ``folder`` (or ``folder/frames``), by name.

    A sub-folder is a video (its image files are the frames, in natural order); ``skip``
    excludes entries that are not videos (e.g. UCSD's ``Test001_gt`` mask folders). Hidden
    entries are ignored. A sub-folder without image files is an error, not silently dropped.
    """
    folder = Path(folder)
    if (folder / "frames").is_dir():
        folder = folder / "frames"
    records = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or (skip is not None and skip(entry)):
            continue
        if entry.is_dir():
            frames = sorted_frames(entry)
            if not frames:
                raise DatasetError(f"video folder {entry} holds no image files (empty video)")
            records.append(VideoRecord(entry.name, frames))
        elif entry.suffix.lower() in VIDEO_EXTENSIONS:
            records.append(VideoRecord(entry.stem, entry))
    names = [r.name for r in records]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DatasetError(f"{folder}: several videos share the name(s) {dup} (a file and a folder?)")
    return records


def read_interval_csv(path: Path, names: list[str]) -> dict[str, list[tuple[int, int]]]:
    """``video,start,end`` rows -> per video the list of ``(start, end)``, 0-based inclusive.

    Whether an interval fits its video is checked by the dataset once the video's length is
    known (see :class:`~pyanomaly.datasets.base.VideoDataset`).
    """
    intervals: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or [c.strip() for c in reader.fieldnames][:3] != ["video", "start", "end"]:
            raise DatasetError(f"{path}: header must be 'video,start,end', got {reader.fieldnames}")
        reader.fieldnames = [c.strip() for c in reader.fieldnames]
        for line, row in enumerate(reader, start=2):
            name = (row["video"] or "").strip()
            try:
                start, end = int(row["start"]), int(row["end"])
            except (TypeError, ValueError):
                raise DatasetError(f"{path} line {line}: start/end must be integers, got {dict(row)}") from None
            if name not in intervals:
                raise DatasetError(f"{path} line {line}: no video named '{name}' (videos: {', '.join(names)})")
            if start < 0 or end < start:
                raise DatasetError(f"{path} line {line}: interval {start}..{end} needs 0 <= start <= end (0-based)")
            intervals[name].append((start, end))
    return intervals


@DATASETS.register_module(name="folder")
class FolderDataset(VideoDataset):
    """Videos under ``ROOT/<split>/``; labels from ``ROOT/<split>/labels.csv`` when present."""

    splits = None  # any sub-folder of ROOT is a split (e.g. a "validation" folder)

    def list_videos(self) -> list[VideoRecord]:
        folder = self.root / self.split
        if not folder.is_dir():
            raise DatasetError(f"missing split folder {folder} (expected {self.root}/training and {self.root}/testing)")
        records = find_videos(folder)
        # DATASET.ARGS.label_file names the ground truth of the test split only.
        override = self.label_file if self.split == "testing" else None
        csv_path = override or folder / "labels.csv"
        if override is not None and not csv_path.is_file():
            raise DatasetError(f"label file not found: {csv_path}")
        if records and csv_path.is_file():
            intervals = read_interval_csv(csv_path, [r.name for r in records])
            for r in records:
                r.intervals, r.label_source = intervals[r.name], csv_path
        return records
