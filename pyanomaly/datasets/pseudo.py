"""Pseudo-anomalies: labelled fast-motion segments made from normal videos.

A benchmark's test labels must not choose a method's settings (an error threshold, a
smoothing width). Normal footage can be given anomalies whose location is known: in each
video one segment is played ``skip`` times too fast (frames ``a, a + skip, a + 2 skip, ...``),
so everything in it moves ``skip`` times faster than anything seen in training, as a cyclist
or a car among pedestrians does. Scoring the training split this way gives a labelled
validation set drawn from the training data alone (``TEST.PSEUDO_ANOMALY frame_skip``).

It is a proxy: its anomalies are fast motion only, in videos the model was trained on.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import VideoDataset, _to_tensor


class FrameSkipAnomalies:
    """``base``'s videos, each with one segment played ``skip`` times too fast: after frame
    ``a`` come ``a + skip, a + 2 skip, ..., a + length * skip``, then the video runs on; those
    ``length`` frames, each a jump of ``skip`` from the one before, are labelled anomalous.

    The segment of video ``i`` starts at a position drawn from ``seed`` and ``i``, after at
    least ``margin`` normal frames (a model's history) and before the video's end; a video too
    short for one keeps all its frames normal. It exposes what scoring reads from a dataset:
    ``videos``, ``names``, ``groups``, ``lengths``, ``video_frames(i, start, stop)`` ``(n, C,
    H, W)`` and ``labels(i)`` ``(N,)`` uint8 (1 on the jumped-to frames).

    Args:
        base: the split to draw from (normal videos; its own labels are ignored).
        skip: speed-up of the segment (>= 2).
        length: jumped-to frames of the segment (>= 1).
        margin: normal frames before the segment, at least.
        seed: where the segments fall.
    """

    def __init__(self, base: VideoDataset, skip: int = 2, length: int = 20, margin: int = 10, seed: int = 0):
        if int(skip) < 2 or int(length) < 1:
            raise ValueError(f"frame-skip pseudo-anomalies need skip >= 2 and length >= 1, got skip={skip}, "
                             f"length={length} (TEST.PSEUDO_SKIP, TEST.PSEUDO_LENGTH)")
        self.base, self.skip, self.length = base, int(skip), int(length)
        self.videos, self.names, self.groups = base.videos, base.names, base.groups
        rng = np.random.default_rng(seed)
        self._order: list[np.ndarray] = []  # per video: the base frame shown at each position
        self._labels: list[np.ndarray] = []
        for n in base.lengths:
            span = self.length * self.skip  # base frames the segment consumes
            last_start = n - span - 1  # one normal frame after it, at least
            if last_start < margin:
                order, labels = np.arange(n), np.zeros(n, dtype=np.uint8)
            else:
                a = int(rng.integers(margin, last_start + 1))
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

    def labels(self, i: int) -> np.ndarray:
        return self._labels[i]
