"""Moving-patch pseudo-anomalies for training a frame predictor to erase what does not belong.

A patch cut from another clip of the batch is blended into a training history and slides
across it in a straight line; the target stays the real next frame, without the patch. To
predict that target the network has to drop whatever entered the scene unlike normal
content; the aim is that at test time an object it was never trained on (a cyclist among
walkers) is predicted away too, so that its whole area counts as error, where a plain
predictor would carry it forward (on UCSD Ped2 it did not raise the AUC: docs/results.md). This is the patch pseudo-anomaly of Astrid et al. ("Learning Not to
Reconstruct Anomalies", BMVC 2021), with patches taken from the training videos themselves
(no outside images) and a predictor's target instead of a reconstruction's.

Example:
    >>> paste = MovingPatch(prob=0.5, size=(16, 48), speed=(2.0, 8.0))
    >>> history = paste(history, sources)   # (B, T, C, H, W), sources (B, C, H, W)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


def _pair(value, name: str, low: float, high: float) -> tuple[float, float]:
    """``value`` as an ordered ``(min, max)`` within ``[low, high]`` (a number = both)."""
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"MODEL.ARGS.pseudo_patch.{name} must be a number or [min, max] with "
                         f"{low} <= min <= max <= {high}, got {value!r}")
    return float(pair[0]), float(pair[1])


class MovingPatch:
    """Blends a moving patch into some training histories.

    Args:
        prob: fraction of the clips that get a patch; in [0, 1].
        size: patch side in pixels, ``[min, max]`` (drawn per clip; clipped to the frame).
        speed: pixels per frame, ``[min, max]``, in a uniformly drawn direction.
        alpha: opacity ``[min, max]`` in (0, 1]; 1 pastes the patch as it is.

    All draws are made on the CPU generator, so a resumed run draws the same patches.
    """

    keys = ("prob", "size", "speed", "alpha")

    def __init__(self, prob: float = 0.5, size: Sequence[int] | int = (16, 48),
                 speed: Sequence[float] | float = (2.0, 8.0), alpha: Sequence[float] | float = (0.5, 1.0)):
        if not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise ValueError(f"MODEL.ARGS.pseudo_patch.prob must be a number in [0, 1], got {prob!r}")
        self.prob = float(prob)
        self.size = _pair(size, "size", 1, math.inf)
        self.speed = _pair(speed, "speed", 0.0, math.inf)
        self.alpha = _pair(alpha, "alpha", 1e-6, 1.0)

    @classmethod
    def from_config(cls, spec: dict | None) -> "MovingPatch | None":
        """``MODEL.ARGS.pseudo_patch`` (a dict of :attr:`keys`) as a ``MovingPatch``; ``None``/empty = off."""
        if not spec:
            return None
        unknown = set(spec) - set(cls.keys)
        if unknown:
            raise ValueError(f"MODEL.ARGS.pseudo_patch takes {list(cls.keys)}, got unknown {sorted(unknown)}")
        return cls(**spec)

    def _uniform(self, bounds: tuple[float, float]) -> float:
        return bounds[0] + (bounds[1] - bounds[0]) * float(torch.rand(()))

    def __call__(self, history: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        """``history`` ``(B, T, C, H, W)`` with patches cut from ``sources`` ``(B, C, H, W)``
        (clip ``b``'s patch comes from source ``b + 1``, so never from its own scene);
        a new tensor, the input is left as it was."""
        b, t, _, h, w = history.shape
        out = history.clone()
        for i in torch.nonzero(torch.rand(b) < self.prob).flatten().tolist():
            side = int(min(round(self._uniform(self.size)), h, w))
            src = sources[(i + 1) % b]
            sy, sx = int(torch.randint(h - side + 1, ())), int(torch.randint(w - side + 1, ()))
            patch = src[:, sy:sy + side, sx:sx + side]
            alpha = self._uniform(self.alpha)
            angle, speed = 2 * math.pi * float(torch.rand(())), self._uniform(self.speed)
            y0, x0 = float(torch.rand(())) * (h - side), float(torch.rand(())) * (w - side)
            for k in range(t):
                # the trajectory stops at the frame's border instead of leaving it
                y = int(round(min(max(y0 + k * speed * math.sin(angle), 0), h - side)))
                x = int(round(min(max(x0 + k * speed * math.cos(angle), 0), w - side)))
                region = out[i, k, :, y:y + side, x:x + side]
                region.mul_(1 - alpha).add_(alpha * patch.to(region.dtype))
        return out
