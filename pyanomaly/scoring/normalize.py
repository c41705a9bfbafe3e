"""Turning the raw per-frame errors of one video into anomaly scores: the normalisers.

A normaliser is registered in :data:`NORMALIZERS` and chosen by ``SCORE.NORMALIZE``. It
receives the *oriented* values of one video, ``(N,)`` float64 where higher = more anomalous
and NaN = no prediction, and returns scores ``(N,)`` (NaN = no score). Its ``causal``
attribute says whether the score of frame ``t`` depends on frames ``<= t`` only; a causal
normaliser also offers ``stream()``, an object whose ``push(values) -> scores`` continues
across calls (see :mod:`pyanomaly.scoring.causal`).

Offline protocol (the one papers report): per-video min-max, for PSNR ``1 - regularity``
with ``regularity = (psnr - min) / (max - min)`` over the video's scored frames.

Example:
    >>> norm = build(NORMALIZERS, dict(type="minmax"))
    >>> norm(np.array([np.nan, -30.0, -20.0]))      # oriented PSNR
    array([nan, 0., 1.])
"""
from __future__ import annotations

import numpy as np

from pyanomaly.registry import NORMALIZERS

__all__ = ["NORMALIZERS", "Normalizer", "MinMaxNormalizer", "NoNormalizer", "orient", "minmax"]


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


class Normalizer:
    """Base of the normalisers: ``__call__(values (N,)) -> scores (N,)`` for one whole video."""

    causal = False  # True: the score of frame t uses frames <= t only

    def __call__(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        """Plain-typed description written into ``metrics.json`` ``protocol``."""
        raise NotImplementedError

    def stream(self):
        raise ValueError(
            f"normaliser '{type(self).__name__}' needs the whole video before it can score a frame, so it "
            "cannot score a stream; use a causal one (STREAM.NORMALIZE causal)")


@NORMALIZERS.register_module(name="minmax")
class MinMaxNormalizer(Normalizer):
    """Per-video min-max to [0, 1] (offline: every score depends on the whole video)."""

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return minmax(np.asarray(values, dtype=np.float64))

    def describe(self) -> dict:
        return {"normalization": "per-video min-max"}


@NORMALIZERS.register_module(name="none")
class NoNormalizer(Normalizer):
    """The oriented raw error itself (e.g. ``-PSNR`` in dB); trivially causal."""

    causal = True

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).copy()

    def describe(self) -> dict:
        return {"normalization": "none"}

    def stream(self):
        return _Stateless(self)


class _Stateless:
    """Stream of a normaliser whose score of a frame depends on that frame alone."""

    def __init__(self, normalizer: Normalizer):
        self.normalizer = normalizer

    def push(self, values: np.ndarray) -> np.ndarray:
        return self.normalizer(values)
