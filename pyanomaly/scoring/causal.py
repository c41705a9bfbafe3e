"""Causal normalisation for streams: each frame is scored against the recent normal past.

Min-max over a whole video needs its future; a live camera has none. Here the score of frame
``t`` is a z-score of its oriented error ``v_t`` (higher = more anomalous) against running
statistics of earlier frames judged normal::

    score_t = (v_t - mean(H_t)) / max(std(H_t), floor),  floor = max(min_std, 1e-3 * |mean(H_t)| + 1e-12)

where ``H_t`` holds the last ``window`` values of frames ``< t`` that entered the history.
So a score reads "standard deviations above the recent normal error" and never uses a
later frame.

* Warm-up: until ``warmup`` frames are in the history, frames get no score (NaN); they enter
  the history unconditionally (the stream is assumed to start normal).
* Exclusion: with ``exclude_above > 0`` a frame scoring above it stays out of the history,
  so an ongoing anomaly does not become the new normal. A lasting change of the scene
  (camera moved, lights switched) then keeps scoring high; ``exclude_above = 0`` lets every
  frame in and the statistics follow any change within about ``window`` frames.
* Frames without a prediction (NaN) get no score and do not enter the history.
* The floor keeps a perfectly static scene from turning rounding noise into alarms. An error
  that is exactly 0 on a static scene (``AREA``) needs ``min_std``, in the error's own units:
  with a history of zeros, one changed pixel would otherwise score a billion.

Example:
    >>> stream = CausalNormalizer(window=100, warmup=10).stream()
    >>> stream.push(values[:50]); stream.push(values[50:])   # same as CausalNormalizer(...)(values)
"""
from __future__ import annotations

import numpy as np

from .normalize import NORMALIZERS, Normalizer


@NORMALIZERS.register_module(name="causal")
class CausalNormalizer(Normalizer):
    """Running z-score against the recent normal past (see the module docstring).

    Args:
        window: frames of history the statistics are taken over (the most recent ones).
        warmup: frames that must be in the history before a frame is scored (>= 2).
        exclude_above: frames scoring above this stay out of the history; <= 0: none excluded.
        min_std: the smallest std a score is divided by, in the oriented error's units (>= 0).
    """

    causal = True

    def __init__(self, window: int = 300, warmup: int = 25, exclude_above: float = 3.0, min_std: float = 0.0):
        if int(warmup) < 2:
            raise ValueError(f"causal normalisation: warmup must be >= 2 frames (a std needs two), got {warmup}")
        if int(window) < int(warmup):
            raise ValueError(f"causal normalisation: window ({window}) must be >= warmup ({warmup})")
        if float(min_std) < 0:
            raise ValueError(f"causal normalisation: min_std must be >= 0, got {min_std}")
        self.window, self.warmup, self.exclude_above = int(window), int(warmup), float(exclude_above)
        self.min_std = float(min_std)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.stream().push(values)

    def stream(self) -> "CausalStream":
        return CausalStream(self.window, self.warmup, self.exclude_above, self.min_std)

    def describe(self) -> dict:
        return {
            "normalization": "causal running z-score",
            "causal_window": self.window,
            "causal_warmup": self.warmup,
            "causal_exclude_above": self.exclude_above,
            "causal_min_std": self.min_std,
            "causal_rule": (
                f"score = (value - mean) / max(std, {self.min_std:g}, 1e-3 |mean|) over the last {self.window} "
                f"earlier frames kept as normal; "
                f"first {self.warmup} frames unscored (warm-up); "
                + (f"frames scoring above {self.exclude_above:g} are kept out of the statistics"
                   if self.exclude_above > 0 else "every scored frame enters the statistics")),
        }


class CausalStream:
    """The state of :class:`CausalNormalizer` over one video: a ring buffer of normal values."""

    def __init__(self, window: int, warmup: int, exclude_above: float, min_std: float = 0.0):
        self.warmup, self.exclude_above, self.min_std = warmup, exclude_above, min_std
        self._buf = np.zeros(window)
        self._count = 0  # values ever added; the buffer holds the last min(count, window)
        self.frames_in_warmup = 0  # frames left unscored because the history was too short

    def _add(self, value: float) -> None:
        self._buf[self._count % self._buf.size] = value
        self._count += 1

    def push(self, values: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` of the next ``n`` oriented values (NaN = no prediction)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        out = np.full(values.size, np.nan)
        for i, v in enumerate(values):
            if not np.isfinite(v):
                continue
            if self._count < self.warmup:
                self._add(v)
                self.frames_in_warmup += 1
                continue
            hist = self._buf[:min(self._count, self._buf.size)]
            mean = hist.mean()
            std = max(hist.std(), self.min_std, 1e-3 * abs(mean) + 1e-12)
            out[i] = (v - mean) / std
            if self.exclude_above <= 0 or out[i] <= self.exclude_above:
                self._add(v)
        return out
