"""Optical flow as a picture: the colour wheel (direction -> hue, speed -> brightness).

A pixel moving right is red (hue 0°), down green-yellow (90°), left cyan (180°), up violet
(270°), in image coordinates (y down); its brightness grows with its speed up to
``max_magnitude``, where it is full. A pixel without a flow (NaN: the first frame of a
video) is mid-grey, so it is never mistaken for one that stands still (black).

Example:
    >>> rgb = flow_to_rgb(flow)            # (..., 2, H, W) -> uint8 (..., H, W, 3)
"""
from __future__ import annotations

import cv2
import numpy as np
import torch


def flow_to_rgb(flow: np.ndarray | torch.Tensor, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-wheel images of flows ``(..., 2, H, W)`` (dx, dy in pixels): uint8 ``(..., H, W, 3)`` RGB.

    ``max_magnitude``: the speed shown at full brightness; ``None`` = the largest finite one
    among all the flows given (so a batch shares one scale).
    """
    if isinstance(flow, torch.Tensor):
        flow = flow.detach().float().cpu().numpy()
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim < 3 or flow.shape[-3] != 2:
        raise ValueError(f"flow_to_rgb expects flows (..., 2, H, W), got shape {flow.shape}")
    dx, dy = flow[..., 0, :, :], flow[..., 1, :, :]
    missing = ~(np.isfinite(dx) & np.isfinite(dy))
    dx, dy = np.where(missing, 0.0, dx), np.where(missing, 0.0, dy)
    magnitude = np.hypot(dx, dy)
    top = float(magnitude.max()) if max_magnitude is None and magnitude.size else float(max_magnitude or 0.0)
    hue = np.degrees(np.arctan2(dy, dx)) % 360.0
    value = np.clip(magnitude / max(top, 1e-6), 0.0, 1.0)
    hsv = np.stack([hue, np.ones_like(hue), value], axis=-1).astype(np.float32)  # (..., H, W, 3)
    flat = hsv.reshape(-1, *hsv.shape[-3:])
    rgb = np.stack([cv2.cvtColor(img, cv2.COLOR_HSV2RGB) for img in flat]).reshape(hsv.shape)
    out = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[missing] = 128
    return out
