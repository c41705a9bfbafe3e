"""Temporal smoothing of per-frame scores with a Gaussian of ``sigma`` frames.

``causal=False`` centres the kernel (offline, ``SCORE.SMOOTH_MODE centred``: frame ``t``
also sees ``t+1 .. t+4 sigma``); ``causal=True`` uses only the current and past frames
(``SCORE.SMOOTH_MODE causal``, streams). The kernel is truncated at ``4 sigma`` and
renormalised over the frames that exist and have a score, so borders and gaps keep the
scale. Frames without a score (NaN) neither contribute nor are filled.

Example:
    >>> gaussian_smooth(scores, sigma=3.0)                  # offline, centred
    >>> s = CausalGaussianStream(3.0); s.push(a); s.push(b)  # == gaussian_smooth(a+b, 3.0, causal=True)
"""
from __future__ import annotations

import numpy as np


SMOOTH_MODES = ("centred", "causal")


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


class CausalGaussianStream:
    """One-sided smoothing fed in chunks; equal to ``gaussian_smooth(all, sigma, causal=True)``.

    Keeps the last ``ceil(4 sigma)`` scores, all the causal kernel can reach.
    """

    def __init__(self, sigma: float):
        self.sigma = float(sigma)
        self._past = np.empty(0)
        self._keep = int(np.ceil(4 * self.sigma)) if self.sigma > 0 else 0

    def push(self, scores: np.ndarray) -> np.ndarray:
        """Smoothed scores ``(n,)`` of the next ``n`` scores."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if self._keep == 0:
            return scores.copy()
        seq = np.concatenate([self._past, scores])
        out = gaussian_smooth(seq, self.sigma, causal=True)[self._past.size:]
        self._past = seq[-self._keep:]
        return out
