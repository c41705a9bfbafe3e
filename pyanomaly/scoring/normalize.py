"""Turning raw per-frame errors of one video into anomaly scores in [0, 1].

Offline protocol (the one papers report): per-video min-max of the raw error, oriented so
that higher = more anomalous; for PSNR this is ``1 - regularity`` with
``regularity = (psnr - min) / (max - min)``.
"""
from __future__ import annotations

import numpy as np


def orient(error: np.ndarray, higher_is_anomalous: bool) -> np.ndarray:
    """Raw error -> a value that grows with abnormality."""
    return error if higher_is_anomalous else -error


def minmax(values: np.ndarray) -> np.ndarray:
    """Min-max over the finite entries (NaN kept); a constant video maps to 0."""
    out = np.full_like(values, np.nan, dtype=np.float64)
    ok = np.isfinite(values)
    if ok.any():
        lo, hi = values[ok].min(), values[ok].max()
        out[ok] = (values[ok] - lo) / (hi - lo) if hi > lo else 0.0
    return out
