"""``folder``: a user's own videos, as video files or frame folders, with optional labels.

Layout (``ROOT``)::

    training/           normal footage: video files (any OpenCV-readable format) or
                        frame folders, one per video (a frames/ level is optional)
    testing/            footage to score, same forms
    testing/labels.csv  optional; header ``video,start,end``: anomalous frames start..end,
                        0-based inclusive, one row per interval; a video absent = all normal.
                        UTF-8, with or without a byte-order mark (as Excel writes it); a
                        name differing only in case (``Labels.csv``) is found, with a warning.
                        Without one the split is unlabelled: every metric is n/a, and the
                        log and ``metrics.json`` (``labels_missing``) say why.
    testing/events.csv  optional; header ``video,kind,start,end``: which kind each anomalous
                        interval is (:mod:`.events`); the evaluation then adds the AUC by kind.

``video`` is the file name without extension or the folder name. ``DATASET.ARGS.label_file``
points to another CSV for the test split (relative to ``ROOT``).

Example:
    >>> ds = FolderDataset("my_cams", split="testing", clip_length=5, image_size=(64, 64))
    >>> ds.names, ds.lengths
    (['cam1', 'cam2'], [900, 1200])
"""
from __future__ import annotations

import csv
import difflib
import logging
from pathlib import Path
from typing import Callable

from pyanomaly.registry import DATASETS

from .base import VIDEO_EXTENSIONS, DatasetError, VideoDataset, VideoRecord, sorted_frames
from .events import EVENTS_NAME, read_events_csv

logger = logging.getLogger(__name__)
LABELS_NAME = "labels.csv"


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
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or [c.strip() for c in reader.fieldnames][:3] != ["video", "start", "end"]:
        raise DatasetError(f"{path}: header must be 'video,start,end', got {reader.fieldnames}")
    reader.fieldnames = [c.strip() for c in reader.fieldnames]
    for row in reader:
        line = reader.line_num
        if None in row or any(row[k] is None for k in ("video", "start", "end")):
            cells = [c for v in row.values() if v is not None for c in (v if isinstance(v, list) else [v])]
            raise DatasetError(f"{path} line {line}: expected the fields video,start,end, got {','.join(cells)!r}")
        name = row["video"].strip()
        try:
            start, end = int(row["start"]), int(row["end"])
        except ValueError:
            raise DatasetError(f"{path} line {line}: start/end must be integers, got {dict(row)}") from None
        if name not in intervals:
            raise DatasetError(f"{path} line {line}: no video named '{name}' (videos: {', '.join(names)})")
        if start < 0 or end < start:
            raise DatasetError(f"{path} line {line}: interval {start}..{end} needs 0 <= start <= end (0-based)")
        intervals[name].append((start, end))
    return intervals


def find_labels_file(folder: Path) -> Path | None:
    """``folder/labels.csv``, else the one file whose name differs from it only in case
    (``Labels.csv``: found on Windows and macOS, so found here too, with a warning)."""
    exact = folder / LABELS_NAME
    if exact.is_file():
        return exact
    same = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower() == LABELS_NAME]
    if len(same) > 1:
        raise DatasetError(f"{folder}: several label files differ only in case ({', '.join(p.name for p in same)}); "
                           f"keep one, named {LABELS_NAME}")
    if same:
        logger.warning("labels of %s read from %s (expected the name %s)", folder, same[0].name, LABELS_NAME)
        return same[0]
    return None


def _near_misses(folder: Path) -> str:
    """`` (found label.csv: misnamed?)`` for files named like ``labels.csv`` in ``folder``, else ``""``."""
    names = [p.name for p in folder.iterdir() if p.is_file()]
    close = difflib.get_close_matches(LABELS_NAME, names, n=3, cutoff=0.6)
    close += [n for n in names if n.lower().startswith("label") and n not in close][:3 - len(close)]
    return f" (found {', '.join(close)}: misnamed?)" if close else ""


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
        if override is not None and not override.is_file():
            raise DatasetError(f"label file not found: {override}")
        csv_path = override or find_labels_file(folder)
        if csv_path is None:
            self.labels_missing = f"no {LABELS_NAME} in {folder}{_near_misses(folder)}"
        elif records:
            intervals = read_interval_csv(csv_path, [r.name for r in records])
            for r in records:
                r.intervals, r.label_source = intervals[r.name], csv_path
        if (folder / EVENTS_NAME).is_file() and records:
            self.events = read_events_csv(folder / EVENTS_NAME, [r.name for r in records])
        return records
