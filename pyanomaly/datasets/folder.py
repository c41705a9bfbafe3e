"""``folder``: a user's own videos, as video files or frame folders, with optional labels.

Layout (``ROOT``)::

    training/           normal footage: video files (any OpenCV-readable format) or
                        frame folders, one per video (a frames/ level is optional)
    testing/            footage to score, same forms
    testing/labels.csv  optional; header ``video,start,end``: anomalous frames start..end,
                        0-based inclusive, one row per interval; a video absent = all normal

Example:
    >>> ds = FolderDataset("my_cams", split="testing", clip_length=5, image_size=(64, 64))
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pyanomaly.registry import DATASETS

from .base import VIDEO_EXTENSIONS, DatasetError, VideoDataset, VideoRecord, count_video_frames, sorted_frames


def find_videos(folder: Path) -> list[VideoRecord]:
    """Video files and frame folders directly inside ``folder`` (or ``folder/frames``)."""
    if (folder / "frames").is_dir():
        folder = folder / "frames"
    records = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            frames = sorted_frames(entry)
            if frames:
                records.append(VideoRecord(entry.name, frames))
        elif entry.suffix.lower() in VIDEO_EXTENSIONS:
            records.append(VideoRecord(entry.stem, entry))
    names = [r.name for r in records]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DatasetError(f"{folder}: several videos share the name(s) {dup} (a file and a folder?)")
    return records


def read_interval_csv(path: Path, lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """``video,start,end`` rows (0-based inclusive) -> per-frame uint8 labels per video."""
    labels = {name: np.zeros(n, dtype=np.uint8) for name, n in lengths.items()}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or [c.strip() for c in reader.fieldnames][:3] != ["video", "start", "end"]:
            raise DatasetError(f"{path}: header must be 'video,start,end', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            name = row["video"].strip()
            try:
                start, end = int(row["start"]), int(row["end"])
            except (TypeError, ValueError):
                raise DatasetError(f"{path} line {line}: start/end must be integers, got {row}") from None
            if name not in labels:
                raise DatasetError(f"{path} line {line}: no video named '{name}' (videos: {', '.join(labels)})")
            n = lengths[name]
            if not 0 <= start <= end < n:
                raise DatasetError(
                    f"{path} line {line}: interval {start}..{end} outside video '{name}' of {n} frames "
                    f"(0-based, inclusive, needs 0 <= start <= end <= {n - 1})")
            labels[name][start:end + 1] = 1
    return labels


@DATASETS.register_module(name="folder")
class FolderDataset(VideoDataset):
    """Videos under ``ROOT/<split>/``; labels from ``ROOT/<split>/labels.csv`` when present."""

    def list_videos(self) -> list[VideoRecord]:
        folder = self.root / self.split
        if not folder.is_dir():
            raise DatasetError(f"missing split folder {folder} (expected {self.root}/training and {self.root}/testing)")
        records = find_videos(folder)
        csv_path = folder / "labels.csv"
        if records and csv_path.is_file():
            lengths = {r.name: (count_video_frames(r.source) if r.is_file else len(r.source)) for r in records}
            labels = read_interval_csv(csv_path, lengths)
            for r in records:
                r.labels = labels[r.name]
        return records
