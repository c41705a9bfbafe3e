"""One video on disk: what it is (:class:`VideoRecord`), how it is read, and what fails.

A video is either an ordered list of frame files (a frame folder) or one video file that
OpenCV can decode. Everything here works on a single video; the dataset-level cache and clip
index live in :mod:`pyanomaly.datasets.base`.

Conventions: frame indices are 0-based positions in the video (the ``k``-th frame file in
natural order, or the ``k``-th decoded frame of a file); sizes are ``(H, W)``; decoded
frames are uint8 ``(N, H, W, C)`` with ``C`` = 1 (gray) or 3 (RGB).

Example:
    >>> rec = VideoRecord("01", sorted_frames(Path("ped2/testing/frames/01")))
    >>> decode(rec, size=(64, 64), channels=1).shape
    (180, 64, 64, 1)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from pyanomaly.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v", ".webm")


@dataclass
class VideoRecord:
    """One video of a split, as a dataset's ``list_videos()`` describes it.

    Attributes:
        name: unique name in its split (used in score files), e.g. ``"01"`` or ``"01_0014"``.
        source: the ordered list of its frame files, or one video file.
        labels: ``(num_frames,)`` uint8, 1 = anomalous frame, or ``None`` when unknown.
        intervals: anomalous frames as ``(start, end)`` pairs, **0-based, inclusive**; turned
            into ``labels`` by the dataset once the number of frames is known (so a video
            file is decoded once, not once to count and once to read).
        label_source: the file the labels come from, named in error messages.
        group: a group the video belongs to (ShanghaiTech: its scene/camera id), or ``None``.
    """

    name: str
    source: list[Path] | Path
    labels: np.ndarray | None = None
    intervals: list[tuple[int, int]] | None = None
    label_source: Path | None = None
    group: str | None = None

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, (str, Path))


@dataclass(frozen=True)
class VideoInfo:
    """What a video is on disk: original ``height`` x ``width`` and ``fps`` (None if unknown)."""

    height: int
    width: int
    fps: float | None


def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def sorted_frames(folder: Path) -> list[Path]:
    """Image files of ``folder`` in frame order (numeric-aware: 9.jpg before 10.jpg).

    Hidden files are skipped (archives made on macOS carry ``._001.tif`` companions).
    """
    files = [p for p in Path(folder).iterdir()
             if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=_natural_key)


def check_frame_files(name: str, files: Sequence[Path]) -> None:
    """Raise :class:`DatasetError` if a frame folder is empty or its numbering has gaps.

    Frame files are matched to labels by position, so one missing file would shift every
    later label. The number checked is the last run of digits in each file name; folders
    whose names hold no digits are only checked for being non-empty.
    """
    if not files:
        raise DatasetError(f"video '{name}' has no frames (no image file of {', '.join(IMAGE_EXTENSIONS)})")
    numbers = []
    for f in files:
        digits = re.findall(r"\d+", Path(f).stem)
        if not digits:
            return
        numbers.append(int(digits[-1]))
    for prev, cur, f_prev, f_cur in zip(numbers, numbers[1:], files, files[1:]):
        if cur != prev + 1:
            what = f"{cur - prev - 1} frame(s) missing" if cur > prev else "duplicate frame number"
            raise DatasetError(
                f"video '{name}': frame files are not consecutive: {Path(f_prev).name} is followed by "
                f"{Path(f_cur).name} ({what}) in {Path(f_cur).parent}")


def count_video_frames(path: Path) -> int:
    """Frames OpenCV decodes from a video file (decodes it: container counts can lie)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"cannot open video file {path}")
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def probe(record: VideoRecord) -> VideoInfo:
    """Original size and frame rate of a video, read from its first frame or its container."""
    if record.is_file:
        cap = cv2.VideoCapture(str(record.source))
        if not cap.isOpened():
            raise DatasetError(f"video '{record.name}': cannot open {record.source}")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        cap.release()
        return VideoInfo(h, w, fps if fps > 0 else None)
    if not record.source:
        raise DatasetError(f"video '{record.name}' has no frames")
    img = _read_image(record.source[0], cv2.IMREAD_UNCHANGED, record.name)
    return VideoInfo(img.shape[0], img.shape[1], None)


def _read_image(path: Path, flag: int, video: str) -> np.ndarray:
    img = cv2.imread(str(path), flag)
    if img is None:
        if not Path(path).is_file():
            raise DatasetError(f"video '{video}': missing frame file {path}")
        raise DatasetError(f"video '{video}': unreadable frame file {path} (corrupt or not an image)")
    return img


def prepare_frame(img: np.ndarray, size: Sequence[int], channels: int) -> np.ndarray:
    """A decoded frame (BGR, or gray as read) -> uint8 ``(H, W, C)`` at ``size = (H, W)``."""
    h, w = size
    if img.ndim == 3 and channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img.reshape(h, w, channels)


def decode(record: VideoRecord, size: Sequence[int], channels: int) -> np.ndarray:
    """All frames of ``record`` as uint8 ``(N, H, W, C)`` at ``size = (H, W)``.

    Frames are converted to gray (``channels=1``) or RGB (``channels=3``), then resized with
    area interpolation. Raises :class:`DatasetError` for a file that cannot be opened or read,
    frames of different sizes within one video, and a video without frames.
    """
    h, w = (int(s) for s in size)
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR  # 8-bit, alpha dropped
    frames: list[np.ndarray] = []
    first_shape = None

    def convert(img: np.ndarray, where: str) -> np.ndarray:
        nonlocal first_shape
        if first_shape is None:
            first_shape = img.shape[:2]
        elif img.shape[:2] != first_shape:
            raise DatasetError(
                f"video '{record.name}': {where} is {img.shape[1]}x{img.shape[0]} (WxH) but its first "
                f"frame is {first_shape[1]}x{first_shape[0]} (mixed frame sizes)")
        return prepare_frame(img, (h, w), channels)

    if record.is_file:
        cap = cv2.VideoCapture(str(record.source))
        if not cap.isOpened():
            what = "missing" if not Path(record.source).is_file() else "cannot open"
            raise DatasetError(f"video '{record.name}': {what} video file {record.source}")
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                frames.append(convert(img, f"frame {len(frames)} of {record.source}"))
        finally:
            cap.release()
    else:
        for f in record.source:
            frames.append(convert(_read_image(f, flag, record.name), f"frame file {f}"))
    if not frames:
        raise DatasetError(f"video '{record.name}' has no frames ({record.source} decodes to nothing)")
    return np.stack(frames)
