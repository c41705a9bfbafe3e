"""Alarms: runs of at least ``min_frames`` consecutive frames scoring above a threshold.

A frame is *alarming* when its score is ``> threshold`` (a frame without a score never is).
An alarm is a run of ``>= min_frames`` alarming frames; on a live stream it is *raised* at
its ``min_frames``-th frame (``raised_frame``), the first moment it is known, and lasts until
the first frame that is not alarming. :class:`AlarmTracker` follows a stream chunk by chunk
and says, per frame, whether an alarm is active (raised and not yet over) at that frame.

Segment (a dict, plain types, as written to ``alarms.json``)::

    {"start_frame", "end_frame", "raised_frame", "frames",          0-based, inclusive
     "start_time_s", "end_time_s", "raised_time_s",                  frame / fps
     "peak_score", "peak_frame"}

Example:
    >>> tracker = AlarmTracker(threshold=3.0, min_frames=5, fps=25.0)
    >>> active = tracker.push(scores)      # (n,) bool, per frame: alarm shown at this frame
    >>> segments = tracker.finish()
"""
from __future__ import annotations

import numpy as np


class AlarmTracker:
    """Alarm segments of one stream (see the module docstring).

    Args:
        threshold: a frame is alarming when its score exceeds it.
        min_frames: consecutive alarming frames needed for an alarm (>= 1).
        fps: frames per second, for the times in seconds.
    """

    def __init__(self, threshold: float, min_frames: int, fps: float):
        if int(min_frames) < 1:
            raise ValueError(f"alarm min_frames must be >= 1, got {min_frames}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.threshold, self.min_frames, self.fps = float(threshold), int(min_frames), float(fps)
        self.segments: list[dict] = []
        self._next = 0  # index of the next frame pushed
        self._run_start: int | None = None
        self._peak = (-np.inf, -1)

    def push(self, scores: np.ndarray) -> np.ndarray:
        """Follow the next ``n`` scores; returns ``(n,)`` bool: an alarm is active at that frame."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        active = np.zeros(scores.size, dtype=bool)
        for i, s in enumerate(scores):
            t = self._next + i
            if np.isfinite(s) and s > self.threshold:
                if self._run_start is None:
                    self._run_start, self._peak = t, (-np.inf, -1)
                if s > self._peak[0]:
                    self._peak = (float(s), t)
                active[i] = t - self._run_start + 1 >= self.min_frames
            else:
                self._close(t - 1)
        self._next += scores.size
        return active

    def _close(self, end: int) -> None:
        if self._run_start is None:
            return
        start, self._run_start = self._run_start, None
        if end - start + 1 < self.min_frames:
            return
        raised = start + self.min_frames - 1
        self.segments.append({
            "start_frame": start, "end_frame": end, "raised_frame": raised, "frames": end - start + 1,
            "start_time_s": round(start / self.fps, 4), "end_time_s": round(end / self.fps, 4),
            "raised_time_s": round(raised / self.fps, 4),
            "peak_score": self._peak[0], "peak_frame": self._peak[1],
        })

    def finish(self) -> list[dict]:
        """Close a run still open at the end of the stream; all segments, in order."""
        self._close(self._next - 1)
        return self.segments


def alarm_segments(scores: np.ndarray, threshold: float, min_frames: int, fps: float) -> list[dict]:
    """The alarm segments of a whole score sequence ``(N,)`` (same rule as :class:`AlarmTracker`)."""
    tracker = AlarmTracker(threshold, min_frames, fps)
    tracker.push(scores)
    return tracker.finish()
