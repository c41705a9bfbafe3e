"""Foreground regions of a video fed chunk by chunk: what is not background, as labelled objects.

A frame's foreground mask comes from one of:

* ``"difference"``: pixels whose gray level changed by more than ``threshold`` (in [0, 1]
  units) since the previous frame: what moves. The first frame of a video has no previous
  frame, so it has no regions.
* ``"mog2"`` / ``"knn"``: OpenCV's background subtraction (a Gaussian mixture per pixel,
  Zivkovic 2004; or k nearest neighbours, Zivkovic and van der Heijden 2006), learnt from the
  video's own past frames: what differs from the background, moving or not. ``history`` is
  the number of past frames the model remembers; ``learning_rate`` its update rate (``-1``:
  OpenCV's automatic ``1 / min(frames seen, history)``). Shadows are not detected (gray frames).
  With the automatic rate, an object that stays on the same pixels for a few frames fades
  into the background early in a video (MOG2 most); a small fixed rate (0.01) keeps it.
  Pre-fitting the model on training frames is not offered: an OpenCV subtractor cannot be
  copied or saved, so each video would have to replay them.

The mask is cleaned by a morphological opening with an elliptical ``kernel x kernel`` element
(removes specks), then a closing with a ``close x close`` one (fills small holes, joins nearby
pieces; ``close`` defaults to ``kernel``; a side ``<= 1``: no operation), and split into
8-connected components; components smaller than ``min_area`` pixels are dropped, the others
are labelled ``1 .. K`` in OpenCV's order (top to bottom, left to right by first pixel).

Warm-up: a background model knows nothing of the scene on the first frames (MOG2 calls the
whole first frame foreground). The first ``warmup`` frames of each video only feed the model
and have no regions (``valid`` False); by default 10 for ``mog2`` / ``knn`` and 1 for
``difference`` (its first frame has no previous one). A frame without any region after
cleaning is not valid either: it has no object to score, which is not a score of zero.

State: each video carries its own (the frames seen, the previous gray frame, the background
model), so chunks give the same regions as the whole video, and several videos stream at
once with one state each. It holds an OpenCV object and is meant to be kept in memory, not
saved. Everything is causal: frame ``t``'s regions read frames ``<= t`` only.

A people detector (HOG) is not offered: the OpenCV build the project pins (5.0) has no
``HOGDescriptor``.

Example:
    >>> fg = Foreground(method="mog2", warmup=10, kernel=3, min_area=20)
    >>> labels, boxes, valid, state = fg.stream(chunk, None)   # (N, C, H, W) in [0, 1]
    >>> labels.shape, boxes[0]                                   # (N, H, W) int32, (K, 4) x, y, w, h
"""
from __future__ import annotations

import inspect
from typing import Any

import cv2
import numpy as np
import torch

from pyanomaly.flow import to_gray_uint8

METHODS = ("difference", "knn", "mog2")


def _ellipse(side: int) -> np.ndarray | None:
    """An elliptical ``side x side`` structuring element; ``None`` for ``side <= 1`` (no operation)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)) if side > 1 else None


class Foreground:
    """Foreground regions of a stream; see the module docstring.

    Args:
        method: ``"difference"``, ``"mog2"`` or ``"knn"``.
        threshold: ``difference``: the smallest change of gray level in [0, 1] that is foreground.
        history: ``mog2`` / ``knn``: frames the background model remembers.
        learning_rate: ``mog2`` / ``knn``: the model's update rate in [0, 1]; -1 = automatic.
        var_threshold: ``mog2``: squared Mahalanobis distance beyond which a pixel is foreground.
        dist2_threshold: ``knn``: squared distance beyond which a pixel is foreground.
        warmup: frames at the start of a video that only feed the model (no regions); ``None`` =
            10 for ``mog2`` / ``knn``, 1 for ``difference`` (at least 1 there).
        kernel: side of the elliptical opening element in pixels (<= 1: none).
        close: side of the elliptical closing element (<= 1: none); ``None`` = ``kernel``. A
            larger closing joins the pieces of one object (frame difference sees a uniform
            object's leading and trailing edges only).
        min_area: the smallest region kept, in pixels.
    """

    def __init__(self, method: str = "mog2", threshold: float = 0.1, history: int = 500, learning_rate: float = -1.0,
                 var_threshold: float = 16.0, dist2_threshold: float = 400.0, warmup: int | None = None,
                 kernel: int = 3, close: int | None = None, min_area: int = 20):
        if method not in METHODS:
            raise ValueError(f"foreground method must be one of {list(METHODS)}, got {method!r}")
        if not 0.0 <= float(threshold) < 1.0:
            raise ValueError(f"foreground threshold must be in [0, 1), got {threshold!r}")
        if int(history) < 1:
            raise ValueError(f"foreground history must be >= 1 frame, got {history!r}")
        if not (float(learning_rate) == -1.0 or 0.0 <= float(learning_rate) <= 1.0):
            raise ValueError(f"foreground learning_rate must be in [0, 1] or -1 (automatic), got {learning_rate!r}")
        warmup = (1 if method == "difference" else 10) if warmup is None else int(warmup)
        if warmup < (1 if method == "difference" else 0):
            raise ValueError(f"foreground warmup must be >= {1 if method == 'difference' else 0} for '{method}', "
                             f"got {warmup}")
        if int(min_area) < 1:
            raise ValueError(f"foreground min_area must be >= 1 pixel, got {min_area!r}")
        self.method, self.threshold, self.history = method, float(threshold), int(history)
        self.learning_rate, self.var_threshold = float(learning_rate), float(var_threshold)
        self.dist2_threshold, self.warmup = float(dist2_threshold), warmup
        self.kernel, self.min_area = int(kernel), int(min_area)
        self.close = self.kernel if close is None else int(close)
        self._open, self._close = _ellipse(self.kernel), _ellipse(self.close)

    # -- one frame -------------------------------------------------------------------------
    def _subtractor(self):
        if self.method == "mog2":
            return cv2.createBackgroundSubtractorMOG2(history=self.history, varThreshold=self.var_threshold,
                                                      detectShadows=False)
        return cv2.createBackgroundSubtractorKNN(history=self.history, dist2Threshold=self.dist2_threshold,
                                                 detectShadows=False)

    def _mask(self, gray: np.ndarray, state: dict) -> np.ndarray | None:
        """The raw foreground mask of one uint8 ``(H, W)`` frame (uint8 0/255), ``None`` without a
        previous frame; updates ``state``."""
        if self.method == "difference":
            prev, state["prev"] = state.get("prev"), gray
            if prev is None:
                return None
            change = np.abs(gray.astype(np.int16) - prev.astype(np.int16))
            return np.where(change > self.threshold * 255.0, 255, 0).astype(np.uint8)
        if state.get("model") is None:
            state["model"] = self._subtractor()
        return state["model"].apply(gray, learningRate=self.learning_rate)

    def regions(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A uint8 mask ``(H, W)`` -> its cleaned regions: labels ``(H, W)`` int32 (0 = background,
        ``1 .. K``) and boxes ``(K, 4)`` int (x, y, width, height)."""
        mask = (mask > 0).astype(np.uint8)
        if self._open is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        if self._close is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= self.min_area) + 1
        relabel = np.zeros(count, dtype=np.int32)
        relabel[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
        return relabel[labels], stats[keep, :4].astype(np.int64)

    # -- a stream ------------------------------------------------------------------------------
    def stream(self, frames: torch.Tensor, state: dict | None = None):
        """Regions of the frames ``(N, C, H, W)`` (float in [0, 1]) of a video fed chunk by chunk,
        continuing from ``state`` (``None`` at the start of a video): labels ``(N, H, W)`` int32 on
        the frames' device, the boxes of each frame (a list of ``(K, 4)`` int arrays), validity
        ``(N,)`` (past the warm-up and at least one region) and the state for the next chunk."""
        state = {"seen": 0} if state is None else state
        gray = to_gray_uint8(frames)
        labels = np.zeros(gray.shape, dtype=np.int32)
        boxes: list[np.ndarray] = []
        valid = torch.zeros(gray.shape[0], dtype=torch.bool)
        for i, g in enumerate(gray):
            mask = self._mask(g, state)
            state["seen"] += 1
            if mask is None or state["seen"] <= self.warmup:
                boxes.append(np.zeros((0, 4), dtype=np.int64))
                continue
            labels[i], b = self.regions(mask)
            boxes.append(b)
            valid[i] = b.shape[0] > 0
        return torch.from_numpy(labels).to(frames.device), boxes, valid, state

    def __repr__(self) -> str:
        return (f"Foreground(method={self.method!r}, warmup={self.warmup}, kernel={self.kernel}, close={self.close}, "
                f"min_area={self.min_area})")


def build_foreground(spec: Any, where: str = "foreground") -> Foreground:
    """A :class:`Foreground` from its spec ``{method, <arguments>}``; one error naming the key
    (``<where>.method``, ``<where>: unknown key(s)``) and what it takes."""
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected {{method: {' | '.join(METHODS)}, <arguments>}}, got {spec!r}")
    allowed = [p for p in inspect.signature(Foreground).parameters]
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a foreground takes {', '.join(allowed)}")
    if "method" in spec and spec["method"] not in METHODS:
        raise ValueError(f"{where}.method: expected one of {list(METHODS)}, got {spec['method']!r}")
    try:
        return Foreground(**spec)
    except ValueError as exc:  # name the spec's key: "foreground threshold ..." -> "<where>: ..."
        raise ValueError(f"{where}: {exc}") from None
