"""Latency of a stream's scores: from a frame's capture to its score being available.

For a live source the capture time is when the reader got the frame from OpenCV (it includes
the time the frame waited in the queue); for a file or frame folder, when its chunk was read.
"""
from __future__ import annotations

import numpy as np

__all__ = ["LatencyLog"]


class LatencyLog:
    """Per-frame latencies of one video, in milliseconds, summarised as p50 / p95 / max."""

    def __init__(self):
        self.ms: list[float] = []

    def add(self, captured: np.ndarray, available: float) -> np.ndarray:
        """Record frames captured at ``captured`` ``(n,)`` (``time.monotonic()``) whose scores are
        available at ``available``; returns their latencies ``(n,)`` in ms."""
        ms = (available - np.asarray(captured, dtype=np.float64)) * 1000.0
        self.ms.extend(ms.tolist())
        return ms

    def summary(self) -> dict | None:
        """``{"p50_ms", "p95_ms", "max_ms"}`` rounded to 0.1 ms, or None before any frame."""
        if not self.ms:
            return None
        a = np.asarray(self.ms)
        return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
                "max_ms": round(float(a.max()), 1)}
