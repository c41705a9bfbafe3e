"""Annotated video of a scored stream: each frame with its score bar, red-bordered during alarms.

The strip under the frame shows the frame index, time and score, a bar (green below the
alarm threshold, red above; the tick marks the threshold, which sits at the bar's middle)
and the recent score history. The border is red while an alarm is active as a live monitor
would show it: from the frame the alarm is raised (see :mod:`pyanomaly.scoring.alarms`).
Given a frame's heat (its per-pixel error map on a causal scale, :mod:`.heatmap`), the frame
shows it as a colour overlay where it is high.

OpenCV writes ``mp4`` with the ``mp4v`` codec or ``avi`` with ``MJPG`` (H.264 is not
available in opencv-python-headless).

Example:
    >>> with VideoRenderer("out.mp4", fps=25.0, size=(576, 768), threshold=3.0) as r:
    ...     r.write(frame_bgr, index=0, time_s=0.0, score=float("nan"), alarm=False)
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

import cv2
import numpy as np

from .heatmap import heat_overlay

_STRIP = 48  # pixels of the strip under the frame
_BORDER = 8  # pixels of the alarm border
_CODECS = {"mp4": "mp4v", "avi": "MJPG"}


def annotate(frame: np.ndarray, index: int, time_s: float, score: float, alarm: bool, threshold: float,
             history: list[float] | None = None) -> np.ndarray:
    """``frame`` uint8 BGR ``(H, W, 3)`` (or gray ``(H, W)``) -> ``(H + 48, W, 3)`` annotated copy."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    h, w = frame.shape[:2]
    out = np.zeros((h + _STRIP, w, 3), dtype=np.uint8)
    out[:h] = frame
    out[h:] = (32, 32, 32)
    red, green, grey, white = (0, 0, 230), (60, 190, 60), (140, 140, 140), (235, 235, 235)
    if alarm:
        cv2.rectangle(out, (0, 0), (w - 1, h - 1), red, _BORDER)
        cv2.putText(out, "ALARM", (_BORDER + 6, _BORDER + 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, red, 2, cv2.LINE_AA)
    scored = score is not None and np.isfinite(score)
    text = f"frame {index}  t {time_s:7.2f}s  score " + (f"{score:6.2f}" if scored else "  --  ")
    cv2.putText(out, text, (6, h + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, white, 1, cv2.LINE_AA)
    # bar: full width = twice the threshold (threshold at the middle); scores below 0 show empty
    x0, x1, y0, y1 = 6, max(w // 2 - 6, 20), h + 28, h + _STRIP - 6
    cv2.rectangle(out, (x0, y0), (x1, y1), grey, 1)
    if scored:
        span = 2 * threshold if threshold > 0 else max(abs(score), 1e-9) * 2
        frac = float(np.clip(score / span, 0, 1))
        cv2.rectangle(out, (x0, y0), (x0 + int(frac * (x1 - x0)), y1), red if score > threshold else green, -1)
    tick = x0 + (x1 - x0) // 2
    cv2.line(out, (tick, y0 - 3), (tick, y1 + 3), white, 1)
    if history:
        _sparkline(out, history, threshold, (w // 2 + 6, h + 6, w - 6, h + _STRIP - 6))
    return out


def _sparkline(img: np.ndarray, values: list[float], threshold: float, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if x1 - x0 < 10:
        return
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return
    lo, hi = min(finite.min(), 0.0), max(finite.max(), threshold * 1.2, 1e-9)
    y = lambda s: int(y1 - (s - lo) / (hi - lo) * (y1 - y0))  # noqa: E731
    ty = y(threshold)
    cv2.line(img, (x0, ty), (x1, ty), (0, 0, 160), 1)
    xs = np.linspace(x0, x1, num=v.size).astype(int)
    pts = [(int(x), y(s)) for x, s in zip(xs, v) if np.isfinite(s)]
    if len(pts) > 1:
        cv2.polylines(img, [np.array(pts, dtype=np.int32)], False, (230, 200, 80), 1, cv2.LINE_AA)


class VideoRenderer:
    """Writes annotated frames to ``path`` (``.mp4``: mp4v, ``.avi``: MJPG) at ``fps``.

    Args:
        path: output file; its suffix picks the codec.
        fps: frame rate of the output.
        size: ``(H, W)`` of the source frames (the strip is added below).
        threshold: alarm threshold drawn on the bar and the history.
        history: frames of score history drawn beside the bar.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], threshold: float, history: int = 150):
        self.path = Path(path)
        fmt = self.path.suffix.lower().lstrip(".")
        if fmt not in _CODECS:
            raise ValueError(f"cannot render to {self.path}: use a .mp4 or .avi file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size, self.threshold = (int(size[0]), int(size[1])), float(threshold)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*_CODECS[fmt]), float(fps),
                                       (self.size[1], self.size[0] + _STRIP))
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write {fmt} ({_CODECS[fmt]}) video to {self._tmp}")
        self._history: deque = deque(maxlen=history)
        self.frames = 0

    def write(self, frame: np.ndarray, index: int, time_s: float, score: float, alarm: bool,
              heat: np.ndarray | None = None) -> None:
        """One frame; ``heat`` ``(h, w)`` in [0, 1] (any size; :class:`~.heatmap.HeatScale`) is drawn
        over it where high."""
        if frame.shape[:2] != self.size:
            frame = cv2.resize(frame, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        if heat is not None:
            frame = heat_overlay(frame, heat)
        self._history.append(score)
        self._writer.write(annotate(frame, index, time_s, score, alarm, self.threshold, list(self._history)))
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Finish the file and move it into place (``keep=False``: discard it)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if keep and self.frames:
            self._tmp.replace(self.path)
        elif self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> "VideoRenderer":
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.close(keep=exc_type is None)
