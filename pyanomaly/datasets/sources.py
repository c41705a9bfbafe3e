"""Videos read as streams: a file OpenCV decodes, a frame folder, a folder of videos, or a live
source (a camera index or an rtsp(s)/http(s) URL: :mod:`pyanomaly.datasets.live`).

Frames are read one chunk at a time and resized exactly as the datasets' decode does
(:func:`pyanomaly.datasets.video.prepare_frame`: gray or RGB, ``INTER_AREA`` to the frame
size), so a model sees the same pixels whether a video is scored from a dataset or as a stream.

Example:
    >>> for source in find_sources("clips/"):
    ...     for frames, _ in read_chunks(source, 64, (240, 360), 1):   # (n, H, W, C) uint8
    ...         x = to_tensor(frames)                                   # (n, C, H, W) float in [0, 1]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from .live import LiveSettings, LiveSource, is_live
from .video import (VIDEO_EXTENSIONS, DatasetError, _read_image, check_frame_count, check_frame_files, claimed_frames,
                    prepare_frame, sorted_frames)

__all__ = ["LiveSettings", "LiveSource", "StreamSource", "find_sources", "open_sources", "frame_rate", "prepare",
           "read_chunks", "to_tensor", "DEFAULT_FPS"]

DEFAULT_FPS = 25.0  # frames per second assumed for times when neither the setting nor the input gives one


@dataclass
class StreamSource:
    """One input video: a file OpenCV decodes, or a frame folder (``frames``: its files in order)."""

    name: str
    path: Path
    frames: list[Path] | None = None

    def fps(self) -> float | None:
        if self.frames is not None:
            return None
        cap = cv2.VideoCapture(str(self.path))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
        cap.release()
        return fps if fps > 0 else None

    def announced_frames(self) -> int | None:
        """Frame count for the progress bar (a container's count may be off; never used for results)."""
        if self.frames is not None:
            return len(self.frames)
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        return n if n > 0 else None


def find_sources(path: str | Path, live: LiveSettings | None = None) -> list[StreamSource | LiveSource]:
    """``--video``: a video file, a frame folder (image files), a folder of video files, or, given
    as a string, a camera index (``"0"``) or an ``rtsp://``, ``rtsps://``, ``http://``, ``https://``
    URL (read as it is, never as a path; ``live``: how, default :class:`LiveSettings`)."""
    if is_live(path):
        return [LiveSource(str(path), live)]
    path = Path(path)
    if path.is_file():
        return [StreamSource(path.stem, path)]
    if not path.is_dir():
        raise FileNotFoundError(f"--video: no such file or folder: {path}")
    images = sorted_frames(path)
    if images:
        check_frame_files(path.name, images)
        return [StreamSource(path.name, path, images)]
    videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))
    if not videos:
        raise DatasetError(f"--video: {path} holds neither image files nor video files ({', '.join(VIDEO_EXTENSIONS)})")
    return [StreamSource(p.stem, p) for p in videos]


def open_sources(specs: str | Path | list[str | Path],
                 live: LiveSettings | None = None) -> list[StreamSource | LiveSource]:
    """The sources of several ``--video`` values, in order (see :func:`find_sources`)."""
    specs = [specs] if isinstance(specs, (str, Path)) else list(specs)
    return [source for spec in specs for source in find_sources(spec, live)]


def prepare(img: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """A decoded frame -> uint8 ``(H, W, C)`` exactly as the datasets' decode does."""
    return prepare_frame(img, size, channels)


def read_chunks(source: StreamSource | LiveSource, chunk: int, size: tuple[int, int], channels: int,
                keep_original: bool = False, deadline: float | None = None, accept_truncated: bool = False
                ) -> Iterator[tuple[np.ndarray, list[np.ndarray] | None]]:
    """Yield ``(frames (n, H, W, C) uint8 at size, originals BGR or None)`` chunk by chunk.

    A live source yields what has arrived, 1 to ``chunk`` frames at a time, and stops waiting for
    frames at ``deadline`` (``time.monotonic()``; files ignore it: their reader checks between chunks).
    Truncated media (``DATASET.ACCEPT_TRUNCATED``) are checked as the datasets' decode does: a
    frame file when it is read, a video file's frame count once it is read to the end.
    """
    if isinstance(source, LiveSource):
        yield from source.chunks(chunk, size, channels, keep_original, deadline)
        return
    first_shape = None

    def check(img: np.ndarray, where: str) -> None:
        nonlocal first_shape
        if first_shape is None:
            first_shape = img.shape[:2]
        elif img.shape[:2] != first_shape:
            raise DatasetError(f"video '{source.name}': {where} is {img.shape[1]}x{img.shape[0]} (WxH) but its first "
                               f"frame is {first_shape[1]}x{first_shape[0]} (mixed frame sizes)")

    if source.frames is not None:
        flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR  # as decode() reads frame files
        for s in range(0, len(source.frames), chunk):
            files = source.frames[s:s + chunk]
            imgs = [_read_image(f, flag, source.name, accept_truncated) for f in files]
            for f, img in zip(files, imgs):
                check(img, f"frame file {f}")
            originals = ([_read_image(f, cv2.IMREAD_COLOR, source.name, accept_truncated) for f in files]
                         if keep_original else None)
            yield np.stack([prepare(img, size, channels) for img in imgs]), originals
        return
    cap = cv2.VideoCapture(str(source.path))
    if not cap.isOpened():
        raise DatasetError(f"video '{source.name}': OpenCV cannot open {source.path}")
    claimed = claimed_frames(cap)
    try:
        done = False
        index = 0
        while not done:
            batch, originals = [], []
            while len(batch) < chunk:
                ok, img = cap.read()
                if not ok:
                    done = True
                    break
                check(img, f"frame {index} of {source.path}")
                index += 1
                batch.append(prepare(img, size, channels))
                if keep_original:
                    originals.append(img)
            if batch:
                yield np.stack(batch), originals if keep_original else None
    finally:
        cap.release()
    if index == 0:
        raise DatasetError(f"video '{source.name}': {source.path} decodes to no frames")
    check_frame_count(source.name, source.path, index, claimed, accept_truncated)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, H, W, C)`` -> float32 ``(n, C, H, W)`` in [0, 1] (as the datasets return)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, -3), dtype=np.float32)).div_(255.0)


def frame_rate(configured: float, source: StreamSource | LiveSource | None) -> tuple[float, str]:
    """Frames per second for times (``STREAM.FPS``) and where it came from: ``configured`` when
    > 0, else the video file's or the live stream's own, else :data:`DEFAULT_FPS` (frame folders
    and arrays carry none)."""
    if configured > 0:
        return float(configured), "STREAM.FPS"
    own = source.fps() if source is not None else None
    if own is not None:
        return own, "the stream" if isinstance(source, LiveSource) else "the video file"
    return DEFAULT_FPS, f"assumed ({DEFAULT_FPS:g}; the input gives none: set STREAM.FPS)"
