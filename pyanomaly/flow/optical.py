"""Dense optical flow between two consecutive frames, with OpenCV (DIS or Farneback).

Flow ``f`` from frame ``t-1`` to frame ``t`` gives, per pixel of frame ``t-1``, its
displacement ``(dx, dy)`` in pixels (x to the right, y down). It needs the previous frame,
so it is causal: a live stream can compute it frame by frame. The first frame of a video
has none; callers mark it as such (NaN, or ``valid`` False), never as a zero flow.

An algorithm and its preset are named by a spec ``{type: dis, preset: medium}``
(``DATASET.FLOW``, a method's ``flow`` argument); :meth:`OpticalFlow.key` is what a cache of
flows is keyed by, so flows of another algorithm or preset are never taken for these.

Example:
    >>> flow = OpticalFlow("dis", "medium")
    >>> f = flow.pair(prev, cur)          # uint8 (H, W) x2 -> float32 (H, W, 2)
    >>> v = flow.video(frames)            # uint8 (N, H, W, C) -> float32 (N, H, W, 2), frame 0 NaN
    >>> f, valid, state = flow.stream(chunk, state)   # (N, C, H, W) in [0, 1] -> (N, 2, H, W), chunk by chunk
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

# algorithm -> preset -> what OpenCV is given
FLOW_ALGORITHMS: dict[str, dict[str, object]] = {
    "dis": {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM},
    # pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags (OpenCV's tutorial values)
    "farneback": {"default": (0.5, 3, 15, 3, 5, 1.2, 0)},
}
_DEFAULT_PRESET = {"dis": "medium", "farneback": "default"}


def to_gray_uint8(frames: torch.Tensor) -> np.ndarray:
    """Frames ``(N, C, H, W)`` float in [0, 1] -> ``(N, H, W)`` uint8, the mean of the channels."""
    gray = frames.detach().float().mean(dim=1).clamp(0, 1).mul(255).round()
    return gray.to(torch.uint8).cpu().numpy()


class OpticalFlow:
    """One OpenCV optical-flow algorithm with its preset.

    Args:
        type: ``"dis"`` (Dense Inverse Search, Kroeger et al. 2016) or ``"farneback"``.
        preset: DIS: ``"ultrafast"``, ``"fast"`` or ``"medium"``; Farneback: ``"default"``.
            ``None`` = ``"medium"`` for DIS, ``"default"`` for Farneback.

    Raises:
        ValueError: an unknown algorithm or preset, naming what is known.
    """

    def __init__(self, type: str = "dis", preset: str | None = None):
        if type not in FLOW_ALGORITHMS:
            raise ValueError(f"optical flow type must be one of {sorted(FLOW_ALGORITHMS)}, got {type!r}")
        preset = _DEFAULT_PRESET[type] if preset is None else preset
        if preset not in FLOW_ALGORITHMS[type]:
            raise ValueError(f"optical flow '{type}' has presets {sorted(FLOW_ALGORITHMS[type])}, got {preset!r}")
        self.type, self.preset = type, preset
        self._dis = None

    def spec(self) -> dict:
        """``{"type", "preset"}``: what names this flow (plain types)."""
        return {"type": self.type, "preset": self.preset}

    def key(self) -> str:
        """A short name of algorithm and preset for file names (``"dis-medium"``)."""
        return f"{self.type}-{self.preset}"

    def pair(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``cur`` (uint8 ``(H, W)`` each): float32 ``(H, W, 2)`` in pixels."""
        if self.type == "dis":
            if self._dis is None:  # made on first use: an OpenCV object does not pickle (DataLoader workers)
                self._dis = cv2.DISOpticalFlow_create(FLOW_ALGORITHMS["dis"][self.preset])
            return self._dis.calc(prev, cur, None)
        return cv2.calcOpticalFlowFarneback(prev, cur, None, *FLOW_ALGORITHMS["farneback"][self.preset])

    def video(self, frames: np.ndarray) -> np.ndarray:
        """Flows of a whole video, uint8 ``(N, H, W, C)`` -> float32 ``(N, H, W, 2)``; entry ``t``
        is the flow from frame ``t-1`` to ``t``, NaN for frame 0 (it has no previous frame)."""
        gray = frames.mean(axis=-1).round().astype(np.uint8) if frames.shape[-1] > 1 else frames[..., 0]
        out = np.full((*gray.shape, 2), np.nan, dtype=np.float32)
        for t in range(1, gray.shape[0]):
            out[t] = self.pair(gray[t - 1], gray[t])
        return out

    def stream(self, frames: torch.Tensor, state: np.ndarray | None = None):
        """Flows into the frames ``(N, C, H, W)`` (float in [0, 1]) of a video fed chunk by chunk:
        ``(N, 2, H, W)`` float32 on the frames' device (dx, dy; NaN where there is no previous
        frame), validity ``(N,)`` and the state for the next chunk (the last frame, uint8 gray;
        ``None`` at the start of a video). Chunks give the same flows as the whole video."""
        gray = to_gray_uint8(frames)
        out = np.full((gray.shape[0], 2, *gray.shape[1:]), np.nan, dtype=np.float32)
        valid = torch.zeros(gray.shape[0], dtype=torch.bool)
        prev = state
        for i, cur in enumerate(gray):
            if prev is not None:
                out[i] = self.pair(prev, cur).transpose(2, 0, 1)
                valid[i] = True
            prev = cur
        return torch.from_numpy(out).to(frames.device), valid, prev

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_dis": None}

    def __repr__(self) -> str:
        return f"OpticalFlow(type={self.type!r}, preset={self.preset!r})"
