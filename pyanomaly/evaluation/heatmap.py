"""A heat map of each frame's per-pixel anomaly over the frame, on a scale that reads no future frame.

The maps of a stream (a scorer's ``error_map``: squared error, absolute error, flow speed, ...)
have units of their own, so they are shown against a reference of the same stream, known
when the frame is shown: :class:`HeatScale` keeps each frame's 99th-percentile map value and
takes, as the reference of frame ``t``, the median of those values over the last 300 frames
with a prediction up to ``t``. The heat of a pixel is ``map / (4 x reference)``, clipped to
[0, 1]. :func:`heat_overlay` colours a frame (OpenCV's JET colour map) only where the heat
exceeds 0.5, i.e. where the map is more than twice the reference (the top 1 % of a typical
frame: on a quiet scene its noise, which rarely doubles), blended in proportion to the heat
(green-yellow at twice the reference, dark red at four times or more); elsewhere the frame
is unchanged. A median is not moved by the few frames of an anomaly, so an anomaly stays hot
while it lasts.

Example:
    >>> scale = HeatScale()
    >>> heat = scale.push(chunk.maps[i])            # (h, w) float in [0, 1], None without a map
    >>> shown = heat_overlay(frame_bgr, heat)       # (H, W, 3) uint8
"""
from __future__ import annotations

from collections import deque

import cv2
import numpy as np

__all__ = ["HeatScale", "heat_overlay", "HEAT_FROM", "HEAT_ALPHA"]

HEAT_FROM = 0.5  # the heat above which a pixel is coloured: twice the reference
HEAT_ALPHA = 0.6  # the colour's weight at full heat (the frame stays visible under it)


class HeatScale:
    """The causal scale of one stream's maps (see the module docstring).

    Args:
        window: frames with a prediction whose 99th percentiles the reference is the median of.
        quantile: the per-frame quantile kept.
    """

    def __init__(self, window: int = 300, quantile: float = 0.99):
        self.quantile = float(quantile)
        self._tops: deque = deque(maxlen=int(window))

    def push(self, values: np.ndarray) -> np.ndarray | None:
        """The heat ``(h, w)`` float32 in [0, 1] of the next frame's map ``(h, w)``; None for a
        frame without a map (all NaN), which leaves the reference as it was."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return None
        self._tops.append(float(np.quantile(finite, self.quantile)))
        reference = max(float(np.median(self._tops)), 1e-12)  # a map of zeros so far: any error shows
        heat = np.nan_to_num(values.astype(np.float32) / (4.0 * reference), nan=0.0, posinf=1.0)
        return np.clip(heat, 0.0, 1.0)


def heat_overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """``frame`` uint8 BGR ``(H, W, 3)`` (or gray ``(H, W)``) with ``heat`` ``(h, w)`` in [0, 1]
    (resized to the frame) drawn over it where it exceeds :data:`HEAT_FROM`: ``(H, W, 3)`` uint8."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    h, w = frame.shape[:2]
    if heat.shape != (h, w):
        heat = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((heat * 255).round().astype(np.uint8), cv2.COLORMAP_JET)
    alpha = np.where(heat > HEAT_FROM, HEAT_ALPHA * heat, 0.0)[..., None]
    return (frame * (1.0 - alpha) + colour * alpha).round().astype(np.uint8)
