"""Temporal smoothing of per-frame scores with a Gaussian of ``sigma`` frames.

``causal=False`` centres the kernel (offline); ``causal=True`` uses only the current and
past frames (streaming). Frames without a score (NaN) neither contribute nor are filled.
"""
from __future__ import annotations

import numpy as np


def gaussian_smooth(scores: np.ndarray, sigma: float, causal: bool = False) -> np.ndarray:
    """Smoothed copy of ``scores`` ``(N,)``; ``sigma <= 0`` returns it unchanged."""
    scores = np.asarray(scores, dtype=np.float64)
    if sigma <= 0 or scores.size == 0:
        return scores.copy()
    radius = int(np.ceil(4 * sigma))
    offsets = np.arange(-radius, 1 if causal else radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    ok = np.isfinite(scores)
    values = np.where(ok, scores, 0.0)
    n = scores.size
    num = np.zeros(n)
    den = np.zeros(n)
    for o, w in zip(offsets, kernel):
        # out[t] += w * values[t + o]
        lo, hi = max(0, -o), min(n, n - o)
        if hi <= lo:
            continue
        num[lo:hi] += w * values[lo + o:hi + o]
        den[lo:hi] += w * ok[lo + o:hi + o]
    out = np.full(n, np.nan)
    out[ok] = num[ok] / np.maximum(den[ok], 1e-12)
    return out
