"""The training videos as a method fitted to them reads them under a budget (``TRAIN.FIT_MAX_FRAMES``).

A method that learns by reading the training videos once (a baseline's quantiles, a Fusion's
statistics, STREAMER's pass, the baselines of ``EVAL.BASELINES``) costs time in proportion to
their frames: 2,550 on UCSD Ped2, about 274,000 on ShanghaiTech. Under a budget of ``N``
frames it reads the first ``ceil(N / V)`` frames of each of the ``V`` videos, consecutive so
that a cue needing a history still has one, and every video is represented.

A :class:`~pyanomaly.datasets.base.VideoDataset` applies the budget itself, before decoding
(its ``max_frames``: :func:`~pyanomaly.datasets.build.build_fit_dataset`). The view here cuts
a split already decoded: a dataset whose constructor takes no ``max_frames``, and a Fusion's
own per-video ``fit_frames``.

Example:
    >>> view = limit_frames(train_set, 20000)   # train_set itself when it holds <= 20,000 frames
    >>> view.lengths, view.video_frames(0).shape[0]
"""
from __future__ import annotations

import logging
import math

import torch

logger = logging.getLogger("pyanomaly")

__all__ = ["FirstFrames", "limit_frames"]


class FirstFrames:
    """A split's videos cut to their first ``per_video`` frames: ``lengths`` and
    :meth:`video_frames` are bounded; every other attribute is the split's own."""

    def __init__(self, videos, per_video: int):
        if per_video < 1:
            raise ValueError(f"FirstFrames needs at least 1 frame a video, got {per_video}")
        self._videos, self.per_video = videos, int(per_video)
        self.lengths = [min(int(n), self.per_video) for n in videos.lengths]

    def video_frames(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Frames ``start:stop`` of video ``i`` within its first ``per_video``: ``(N, C, H, W)``."""
        stop = self.lengths[i] if stop is None else min(stop, self.lengths[i])
        return self._videos.video_frames(i, min(start, stop), stop)

    def __getattr__(self, name: str):
        return getattr(self._videos, name)


def limit_frames(videos, max_frames: int):
    """``videos`` cut to at most about ``max_frames`` frames in all (the first ``ceil(max_frames /
    V)`` of each of the ``V`` videos); ``videos`` itself when ``max_frames`` is 0 or they hold no more."""
    total = sum(int(n) for n in videos.lengths)
    if max_frames <= 0 or total <= max_frames:
        return videos
    view = FirstFrames(videos, math.ceil(max_frames / len(videos.lengths)))
    logger.info("TRAIN.FIT_MAX_FRAMES %d: reading the first %d frames of each of the %d training videos (%d of %d "
                "frames)", max_frames, view.per_video, len(view.lengths), sum(view.lengths), total)
    return view
