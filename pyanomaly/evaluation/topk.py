"""The few frames worth looking at: top-scoring frames with their prediction and error map.

Keeping every prediction of a test set would cost gigabytes; the report shows a handful.
While a video is predicted, :class:`TopFrames` keeps only its ``k`` frames of highest
oriented raw error, as small uint8 images (frame, prediction, per-pixel absolute error). For
a method giving an anomaly map instead of a predicted frame (``anomaly_map``) the map itself
is kept (float, its own units); for a method computing optical flow (``flow``) the flow into
each kept frame is kept too, as a colour-wheel image (:func:`pyanomaly.flow.flow_to_rgb`).
Within a video the final score is a monotone function of that error (before smoothing), so
these are its top-scoring frames; :func:`select_top` then ranks the kept frames of all
videos by their final score.

Example:
    >>> top = TopFrames("01", k=6)
    >>> top.offer(values, start=0, frames=x, prediction=pred)   # one chunk: (n,), (n, C, H, W) x2
    >>> best = select_top([top], {"01": scores}, k=6)
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import torch

from pyanomaly.flow import OpticalFlow, flow_to_rgb, to_gray_uint8
from pyanomaly.scoring.psnr import error_map


@dataclass(order=True)
class FrameExample:
    """One kept frame: ``frame``, ``prediction`` ``(H, W, C)`` uint8 and ``error`` ``(H, W)`` uint8
    (with ``anomaly_map``: ``prediction`` None, ``error`` the map, float32); ``flow`` the
    colour wheel ``(H, W, 3)`` uint8 of the optical flow into the frame, or None."""

    value: float  # oriented raw error (higher = more anomalous); the heap orders by it
    video: str = field(compare=False)
    index: int = field(compare=False)
    frame: np.ndarray = field(compare=False, repr=False)
    prediction: np.ndarray | None = field(compare=False, repr=False)
    error: np.ndarray = field(compare=False, repr=False)
    score: float | None = field(default=None, compare=False)
    label: int | None = field(default=None, compare=False)
    flow: np.ndarray | None = field(default=None, compare=False, repr=False)
    anomaly_map: bool = field(default=False, compare=False)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(n, C, H, W)`` float in [0, 1] -> ``(n, H, W, C)`` uint8."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class TopFrames:
    """The ``k`` frames of one video with the highest oriented raw error seen so far.

    Chunks must be offered in order (the flow into a chunk's first frame needs the frame before).
    """

    def __init__(self, video: str, k: int, anomaly_map: bool = False, flow: OpticalFlow | None = None):
        self.video, self.k, self.anomaly_map, self.flow = video, int(k), bool(anomaly_map), flow
        self._heap: list[FrameExample] = []  # min-heap: the weakest kept frame first
        self._last: np.ndarray | None = None  # the previous chunk's last frame, uint8 gray (for the flow)

    def offer(self, values: np.ndarray, start: int, frames: torch.Tensor, prediction: torch.Tensor) -> None:
        """Consider a chunk: ``values`` ``(n,)`` (NaN = no prediction) of frames ``start .. start+n-1``."""
        if self.k <= 0:
            return
        previous = self._last
        if self.flow is not None:
            gray = to_gray_uint8(frames)
            self._last = gray[-1] if len(gray) else previous
        values = np.asarray(values, dtype=np.float64)
        ok = np.flatnonzero(np.isfinite(values))
        if ok.size == 0:
            return
        floor = self._heap[0].value if len(self._heap) >= self.k else -np.inf
        cand = ok[values[ok] > floor]
        cand = cand[np.argsort(-values[cand], kind="stable")][:self.k]
        if cand.size == 0:
            return
        idx = torch.as_tensor(cand)
        f = to_uint8(frames[idx])
        if self.anomaly_map:
            p = [None] * len(cand)
            e = prediction[idx][:, 0].float().clamp_min(0).cpu().numpy()
        else:
            p = to_uint8(prediction[idx])
            e = (error_map(prediction[idx], frames[idx]) * 255).round().to(torch.uint8).cpu().numpy()
        flows = [None] * len(cand)
        if self.flow is not None:
            for j, i in enumerate(cand):
                before = gray[i - 1] if i > 0 else previous
                if before is not None:
                    flows[j] = self.flow.pair(before, gray[i])  # (H, W, 2)
            scale = max([float(np.hypot(*np.moveaxis(fl, -1, 0)).max()) for fl in flows if fl is not None],
                        default=1.0)
            flows = [None if fl is None else flow_to_rgb(np.moveaxis(fl, -1, 0), scale) for fl in flows]
        for j, i in enumerate(cand):
            item = FrameExample(float(values[i]), self.video, int(start + i), f[j], p[j], e[j], flow=flows[j],
                                anomaly_map=self.anomaly_map)
            if len(self._heap) < self.k:
                heapq.heappush(self._heap, item)
            elif item.value > self._heap[0].value:
                heapq.heapreplace(self._heap, item)

    def items(self) -> list[FrameExample]:
        """Kept frames, highest value first."""
        return sorted(self._heap, key=lambda x: (-x.value, x.index))


def select_top(tops: list[TopFrames], scores: dict[str, np.ndarray], k: int,
               labels: dict[str, np.ndarray | None] | None = None) -> list[FrameExample]:
    """The ``k`` kept frames with the highest final score over all videos (unscored frames skipped)."""
    pool = []
    for top in tops:
        s = scores[top.video]
        for item in top.items():
            value = float(s[item.index])
            if np.isfinite(value):
                item.score = value
                lab = None if labels is None else labels.get(top.video)
                item.label = None if lab is None or int(lab[item.index]) < 0 else int(lab[item.index])
                pool.append(item)
    pool.sort(key=lambda x: (-x.score, x.video, x.index))
    return pool[:k]
