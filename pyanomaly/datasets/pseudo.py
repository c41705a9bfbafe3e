"""Pseudo-anomalies: labelled anomalies made from normal videos.

A benchmark's test labels must not choose a method's settings (an error threshold, a
smoothing width). Normal footage can be given anomalies whose location is known, and scoring
the training split this way gives a labelled validation set drawn from the training data
alone (``TEST.PSEUDO_ANOMALY``, run with ``TEST.SPLIT training``). Two kinds, registered in
``PSEUDO_ANOMALIES`` under the names the config uses, one segment of ``length`` frames per
video:

* ``frame_skip``: the segment is played ``skip`` times too fast (frames ``a, a + skip,
  a + 2 skip, ...``), so *everything* in it moves ``skip`` times faster than in training;
* ``fast_object``: a moving region cut out of the video (a walker, usually) is pasted in and
  slides across the scene at ``speed`` frame widths per frame, one fast object among normal
  ones, as a cyclist or a cart among pedestrians.

They are proxies: their anomalies are fast motion only, in videos the model was trained on.
``none`` (the default) leaves the split as it is. A kind is built with ``base`` (the split) and
``seed`` (``SYSTEM.SEED``) besides the arguments its spec gives.

Example (command line): ``TEST.SPLIT training TEST.PSEUDO_ANOMALY fast_object
TEST.PSEUDO_ANOMALY.speed 0.02``; in YAML: ``PSEUDO_ANOMALY: {type: frame_skip, skip: 3}``.
"""
from __future__ import annotations

import numpy as np
import torch

from pyanomaly.registry import PSEUDO_ANOMALIES

from .base import VideoDataset, _to_tensor


class PseudoAnomalies:
    """What scoring reads from a dataset, for ``base``'s videos with one labelled segment each.

    Exposes ``videos``, ``names``, ``groups``, ``lengths``, ``video_frames(i, start, stop)``
    ``(n, C, H, W)`` float32 in [0, 1] and ``labels(i)`` ``(N,)`` uint8. The segment of video
    ``i`` starts at a position drawn from ``seed`` and ``i``, after at least ``margin`` normal
    frames (a model's history; 0 = ``base.clip_length``), and ends before the video does; a
    video too short for one keeps all its frames normal (its segment start is ``None``).
    """

    def __init__(self, base: VideoDataset, length: int, margin: int, seed: int, span: int):
        """``span``: the base frames a segment consumes."""
        if int(length) < 1:
            raise ValueError(f"TEST.PSEUDO_ANOMALY.length must be >= 1, got {length!r}")
        if int(margin) < 0:
            raise ValueError(f"TEST.PSEUDO_ANOMALY.margin must be >= 0 (0 = DATASET.CLIP_LENGTH), got {margin!r}")
        margin = int(margin) or base.clip_length
        self.base, self.length, self.margin = base, int(length), margin
        self.videos, self.names, self.groups = base.videos, base.names, base.groups
        self.rng = np.random.default_rng(seed)
        self.starts: list[int | None] = []
        for n in base.lengths:
            last_start = n - span - 1  # one normal frame after it, at least
            self.starts.append(int(self.rng.integers(margin, last_start + 1)) if last_start >= margin else None)

    def labels(self, i: int) -> np.ndarray:
        return self._labels[i]


@PSEUDO_ANOMALIES.register_module(name="frame_skip")
class FrameSkipAnomalies(PseudoAnomalies):
    """``base``'s videos, each with one segment played ``skip`` times too fast: after frame
    ``a`` come ``a + skip, a + 2 skip, ..., a + length * skip``, then the video runs on; those
    ``length`` frames, each a jump of ``skip`` from the one before, are labelled anomalous.

    Args:
        base: the split to draw from (normal videos; its own labels are ignored).
        skip: speed-up of the segment (>= 2).
        length: jumped-to frames of the segment (>= 1).
        margin: normal frames before the segment, at least (>= 0; 0 = ``base.clip_length``).
        seed: where the segments fall.
    """

    def __init__(self, base: VideoDataset, skip: int = 2, length: int = 20, margin: int = 0, seed: int = 0):
        if int(skip) < 2:
            raise ValueError(f"TEST.PSEUDO_ANOMALY.skip must be >= 2 (frame_skip), got {skip!r}")
        self.skip = int(skip)
        super().__init__(base, length, margin, seed, span=int(length) * self.skip)
        self._order: list[np.ndarray] = []  # per video: the base frame shown at each position
        self._labels: list[np.ndarray] = []
        for n, a in zip(base.lengths, self.starts):
            if a is None:
                order, labels = np.arange(n), np.zeros(n, dtype=np.uint8)
            else:
                span = self.length * self.skip
                order = np.concatenate([np.arange(a), np.arange(a, a + span, self.skip), np.arange(a + span, n)])
                # labelled: the frames that arrive after a jump of ``skip`` (positions a + 1 to
                # a + length); frame a itself follows a - 1 as in the original video
                labels = np.zeros(len(order), dtype=np.uint8)
                labels[a + 1:a + 1 + self.length] = 1
            self._order.append(order)
            self._labels.append(labels)
        self.lengths = [len(o) for o in self._order]

    def video_frames(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Frames ``start:stop`` of pseudo video ``i``: ``(n, C, H, W)`` float32 in [0, 1]."""
        picked = self._order[i][start:stop]
        if len(picked) == 0:
            return self.base.video_frames(i, 0, 0)
        lo, hi = int(picked.min()), int(picked.max()) + 1
        return _to_tensor(self.base._array(i)[lo:hi][picked - lo])


@PSEUDO_ANOMALIES.register_module(name="fast_object")
class FastObjectAnomalies(PseudoAnomalies):
    """``base``'s videos, each with one fast object pasted in for ``length`` frames.

    The object is the ``size``-high (and 0.6 x as wide) box of a frame of the same video where
    that frame differs most from the one before it (where someone walks), cut out with a soft
    elliptical edge. From frame ``a`` to ``a + length - 1`` it slides in a straight line at
    ``speed`` frame widths per frame, in a random direction, inside the frame; those frames are
    labelled anomalous. Frames keep their length and order.

    Args:
        base: the split to draw from (normal videos; its own labels are ignored).
        speed: the object's speed, in frame widths per frame (> 0).
        size: the object's height, as a fraction of the frame height (in (0, 1)).
        length: frames of the segment (>= 1).
        margin: normal frames before the segment, at least (>= 0; 0 = ``base.clip_length``).
        seed: where the segments fall, which object is cut out, and where it goes.
    """

    def __init__(self, base: VideoDataset, speed: float = 0.012, size: float = 0.15, length: int = 20,
                 margin: int = 0, seed: int = 0):
        if not float(speed) > 0:
            raise ValueError(f"TEST.PSEUDO_ANOMALY.speed must be > 0 (fast_object), got {speed!r}")
        if not 0.0 < float(size) < 1.0:
            raise ValueError(f"TEST.PSEUDO_ANOMALY.size must be in (0, 1) (fast_object), got {size!r}")
        super().__init__(base, length, margin, seed, span=int(length))
        self.speed, self.size = float(speed), float(size)
        self.lengths = list(base.lengths)
        self._labels = [np.zeros(n, dtype=np.uint8) for n in base.lengths]
        self._objects = [None if a is None else self._make_object(i) for i, a in enumerate(self.starts)]
        for labels, a in zip(self._labels, self.starts):
            if a is not None:
                labels[a:a + self.length] = 1

    def _make_object(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Video ``i``'s object: its pixels ``(h, w, C)`` float32, alpha ``(h, w, 1)`` and its
        top-left corner in each frame of the segment ``(length, 2)`` int."""
        arr = self.base._array(i)
        n, height, width = arr.shape[:3]
        h = max(2, round(self.size * height))
        w = max(2, min(width - 1, round(0.6 * h)))
        f = int(self.rng.integers(1, n))
        change = np.abs(arr[f].astype(np.float32) - arr[f - 1].astype(np.float32)).mean(-1)
        box = np.pad(change.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # box sums by the integral image
        sums = box[h:, w:] - box[:-h, w:] - box[h:, :-w] + box[:-h, :-w]
        y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
        pixels = arr[f, y:y + h, x:x + w].astype(np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.hypot((yy + 0.5) / h * 2 - 1, (xx + 0.5) / w * 2 - 1)
        alpha = np.clip((1.0 - r) / 0.3, 0.0, 1.0)[..., None].astype(np.float32)  # soft edge, opaque core
        angle = self.rng.uniform(0, 2 * np.pi)
        step = self.speed * width * np.array([np.sin(angle), np.cos(angle)])  # (dy, dx) per frame
        travel = step * (self.length - 1)
        limits = np.array([height - h, width - w], dtype=np.float64)
        lo, hi = np.maximum(0, -travel), limits - np.maximum(0, travel)
        start = np.where(lo <= hi, self.rng.uniform(np.minimum(lo, hi), np.maximum(lo, hi)), limits / 2)
        corners = start + step * np.arange(self.length)[:, None]
        corners = np.clip(np.rint(corners), 0, limits).astype(np.int64)  # a path longer than the frame stops at its edge
        return pixels, alpha, corners

    def video_frames(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Frames ``start:stop`` of pseudo video ``i``: ``(n, C, H, W)`` float32 in [0, 1]."""
        start, stop, _ = slice(start, stop).indices(self.lengths[i])
        arr = self.base._array(i)[start:stop]
        a, obj = self.starts[i], self._objects[i]
        shown = range(max(start, a), min(stop, a + self.length)) if obj is not None else range(0)
        if shown:  # only chunks that hold the object are copied (the cache is a read-only mmap)
            arr = np.array(arr)
            pixels, alpha, corners = obj
            h, w = pixels.shape[:2]
            for t in shown:
                y, x = corners[t - a]
                region = arr[t - start, y:y + h, x:x + w].astype(np.float32)
                arr[t - start, y:y + h, x:x + w] = np.rint(region + alpha * (pixels - region)).astype(np.uint8)
        return _to_tensor(arr)


@PSEUDO_ANOMALIES.register_module(name="none")
def no_pseudo_anomalies(base: VideoDataset) -> VideoDataset:
    """No pseudo-anomalies: ``base`` as it is."""
    return base
