"""Videos with per-frame labels, decoded once into a cache and cut into clips.

Every dataset is a :class:`VideoDataset` subclass that only says which videos a split holds
(:meth:`VideoDataset.list_videos`); decoding, resizing, caching, validation and clip indexing
are shared here.

Sample of a training split (``__getitem__``)::

    {"frames": (T, C, H, W) float32 in [0, 1], "video": int, "frame": int}

where ``frame`` is the index of the clip's last frame in its video. Test-time code reads whole
videos with :meth:`VideoDataset.video_frames` ``-> (N, C, H, W)`` and :meth:`VideoDataset.labels`.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pyanomaly.utils import atomic_write

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v", ".webm")


class DatasetError(ValueError):
    """Data that cannot be used as it is; the message names the file or video and the numbers."""


@dataclass
class VideoRecord:
    """One video of a split.

    ``source`` is either the ordered list of its frame files or one video file.
    ``labels`` is ``(num_frames,)`` uint8 with 1 = anomalous frame, or ``None`` when unknown.
    """

    name: str
    source: list[Path] | Path
    labels: np.ndarray | None = None

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, (str, Path))


def sorted_frames(folder: Path) -> list[Path]:
    """Image files of ``folder`` in frame order (numeric-aware: 9.jpg before 10.jpg)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=_natural_key)


def _natural_key(path: Path) -> tuple:
    import re
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


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


def decode(record: VideoRecord, size: Sequence[int], channels: int) -> np.ndarray:
    """All frames of ``record`` as uint8 ``(N, H, W, C)`` at ``size = (H, W)``."""
    h, w = size
    frames = []

    def convert(img: np.ndarray, where: str) -> np.ndarray:
        if img is None:
            raise DatasetError(f"unreadable frame: {where}")
        if img.ndim == 2:
            img = img[:, :, None]
        if channels == 1 and img.shape[2] != 1:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[:, :, None]
        elif channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.shape[2] == 1 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            if img.ndim == 2:
                img = img[:, :, None]
        return img

    if record.is_file:
        cap = cv2.VideoCapture(str(record.source))
        if not cap.isOpened():
            raise DatasetError(f"video '{record.name}': cannot open {record.source}")
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(convert(img, f"{record.source} frame {len(frames)}"))
        cap.release()
    else:
        shape = None
        for f in record.source:
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if img is not None and img.ndim == 3 and img.shape[2] == 4:
                img = img[:, :, :3]
            if img is not None and img.dtype != np.uint8:
                img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
            if img is not None:
                if shape is None:
                    shape = img.shape[:2]
                elif img.shape[:2] != shape:
                    raise DatasetError(
                        f"video '{record.name}': frame {f} is {img.shape[1]}x{img.shape[0]}, "
                        f"earlier frames are {shape[1]}x{shape[0]} (mixed sizes)")
            frames.append(convert(img, str(f)))
    if not frames:
        raise DatasetError(f"video '{record.name}' has no frames ({record.source})")
    return np.stack(frames)


class VideoDataset(Dataset):
    """A split of videos, decoded at ``image_size`` into a cache, indexed as clips.

    Args:
        root: dataset folder.
        split: ``"training"`` or ``"testing"`` (subclasses map these to their layout).
        clip_length: frames per clip ``T``.
        image_size: ``(H, W)`` of the decoded frames.
        channels: 1 (grayscale) or 3 (RGB).
        clip_stride: step between the first frames of consecutive clips.
        frame_step: temporal subsampling inside a clip.
        cache_dir: folder of decoded uint8 arrays (``""``: ``~/.cache/pyanomaly``;
            ``None``: keep decoded videos in memory only).
    """

    def __init__(self, root: str | Path, split: str = "training", clip_length: int = 10,
                 image_size: Sequence[int] = (64, 64), channels: int = 1, clip_stride: int = 1,
                 frame_step: int = 1, cache_dir: str | Path | None = ""):
        self.root = Path(root)
        self.split = split
        self.clip_length = int(clip_length)
        self.image_size = tuple(int(s) for s in image_size)
        self.channels = int(channels)
        self.clip_stride = int(clip_stride)
        self.frame_step = int(frame_step)
        if cache_dir == "":
            cache_dir = Path(os.environ.get("PYANOMALY_CACHE", Path.home() / ".cache" / "pyanomaly"))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if not self.root.exists():
            raise DatasetError(f"dataset root not found: {self.root}")
        self.videos: list[VideoRecord] = self.list_videos()
        if not self.videos:
            raise DatasetError(f"no videos found for split '{split}' under {self.root}")
        self._arrays: dict[int, np.ndarray] = {}
        self.lengths = [self._array(i).shape[0] for i in range(len(self.videos))]
        self._validate_labels()
        span = (self.clip_length - 1) * self.frame_step + 1
        self.index = [(v, s) for v, n in enumerate(self.lengths)
                      for s in range(0, n - span + 1, self.clip_stride)]
        if not self.index:
            raise DatasetError(
                f"split '{split}' under {self.root}: no video is long enough for one clip of "
                f"{self.clip_length} frames (step {self.frame_step}); longest has {max(self.lengths)} frames")

    # -- what a subclass provides -------------------------------------------------------
    def list_videos(self) -> list[VideoRecord]:
        """The videos of ``self.split`` under ``self.root``, in a fixed order."""
        raise NotImplementedError

    # -- whole videos -------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [v.name for v in self.videos]

    def video_frames(self, i: int) -> torch.Tensor:
        """Video ``i`` as ``(N, C, H, W)`` float32 in [0, 1]."""
        return _to_tensor(self._array(i))

    def labels(self, i: int) -> np.ndarray | None:
        """Per-frame labels ``(N,)`` of video ``i`` (1 = anomalous), or None if unknown."""
        return self.videos[i].labels

    # -- clips --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> dict:
        v, start = self.index[idx]
        stop = start + (self.clip_length - 1) * self.frame_step + 1
        clip = self._array(v)[start:stop:self.frame_step]
        return {"frames": _to_tensor(clip), "video": v, "frame": stop - 1}

    # -- decoding and cache -------------------------------------------------------------
    def _array(self, i: int) -> np.ndarray:
        arr = self._arrays.get(i)
        if arr is None:
            arr = self._load_or_decode(self.videos[i])
            self._arrays[i] = arr
        return arr

    def _load_or_decode(self, record: VideoRecord) -> np.ndarray:
        if self.cache_dir is None:
            return decode(record, self.image_size, self.channels)
        path = self.cache_dir / f"{_cache_key(record, self.image_size, self.channels)}.npy"
        if path.is_file():
            try:
                return np.load(path, mmap_mode="r")
            except (ValueError, OSError):
                logger.warning("cache file %s is damaged; decoding again", path)
        arr = decode(record, self.image_size, self.channels)
        try:
            atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), arr))
        except OSError as exc:  # a read-only or full cache only costs speed
            logger.warning("cannot write frame cache %s (%s); continuing without it", path, exc)
        return arr

    def _validate_labels(self) -> None:
        for rec, n in zip(self.videos, self.lengths):
            if rec.labels is None:
                continue
            if rec.labels.ndim != 1 or rec.labels.shape[0] != n:
                raise DatasetError(
                    f"video '{rec.name}' under {self.root}: {n} frames but labels of shape "
                    f"{tuple(rec.labels.shape)} (expected ({n},))")


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, C) -> float32 (..., C, H, W) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.movedim(-1, -3).float().div_(255.0)


def _cache_key(record: VideoRecord, size: Sequence[int], channels: int) -> str:
    """Source paths, sizes and mtimes plus the decode settings: a changed file re-decodes."""
    files = [record.source] if record.is_file else record.source
    h = hashlib.sha1()
    h.update(f"{tuple(size)}|{channels}|{len(files)}".encode())
    for f in files:
        st = os.stat(f)
        h.update(f"|{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"{record.name.replace('/', '_')}-{h.hexdigest()[:16]}"
