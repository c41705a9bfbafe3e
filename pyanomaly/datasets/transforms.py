"""Training-time transforms of clips, registered in ``TRANSFORMS``, listed in ``DATASET.TRAIN_TRANSFORMS``.

A transform maps a batch of clips ``(B, T, C, H, W)`` to ``(B, T, C, H', W')``. One random
draw per clip applies to all of its frames, so the motion inside a clip is kept. They run
in the training step on the batch already on its device, never at test time, and draw from
torch's global CPU generator, whose state every checkpoint holds: a resumed run draws
exactly what an uninterrupted one would.

Example (YAML):
    DATASET:
      IMAGE_SIZE: [240, 360]            # native Ped2 frames; the test scores whole frames
      TRAIN_TRANSFORMS: [{type: RandomCrop, size: [128, 128]}]
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from pyanomaly.registry import TRANSFORMS, build


def _check(clips: torch.Tensor, who: str) -> tuple[int, int, int]:
    if clips.dim() != 5:
        raise ValueError(f"{who} expects clips (B, T, C, H, W), got {tuple(clips.shape)}")
    b, _, _, h, w = clips.shape
    return b, h, w


@TRANSFORMS.register_module()
class RandomCrop:
    """A ``size = [h, w]`` window at a random place of each clip (the same for all its frames)."""

    def __init__(self, size: Sequence[int]):
        h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if h < 1 or w < 1:
            raise ValueError(f"RandomCrop size must be positive, got {size}")
        self.size = (h, w)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        b, height, width = _check(clips, "RandomCrop")
        h, w = self.size
        if h > height or w > width:
            raise ValueError(f"RandomCrop size {[h, w]} is larger than the frames {[height, width]} "
                             "(DATASET.IMAGE_SIZE)")
        tops = torch.randint(0, height - h + 1, (b,)).tolist()
        lefts = torch.randint(0, width - w + 1, (b,)).tolist()
        return torch.stack([clips[i, ..., t:t + h, s:s + w] for i, (t, s) in enumerate(zip(tops, lefts))])


@TRANSFORMS.register_module()
class RandomHorizontalFlip:
    """Mirror each clip left-right with probability ``p``.

    Not for scenes whose anomalies include the direction of motion (a walker going against
    the flow becomes normal when mirrored).
    """

    def __init__(self, p: float = 0.5):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"RandomHorizontalFlip p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        b, _, _ = _check(clips, "RandomHorizontalFlip")
        flip = (torch.rand(b) < self.p).to(clips.device).view(b, 1, 1, 1, 1)
        return torch.where(flip, clips.flip(-1), clips)


@TRANSFORMS.register_module()
class RandomBrightness:
    """Add one offset drawn from ``[-delta, delta]`` to every pixel of a clip, clipped to [0, 1]
    (a camera's exposure drifting between recordings)."""

    def __init__(self, delta: float = 0.1):
        if float(delta) < 0:
            raise ValueError(f"RandomBrightness delta must be >= 0, got {delta}")
        self.delta = float(delta)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        b, _, _ = _check(clips, "RandomBrightness")
        offset = (torch.rand(b) * 2 - 1) * self.delta
        return (clips + offset.to(clips.device, clips.dtype).view(b, 1, 1, 1, 1)).clamp(0.0, 1.0)


class Compose:
    """Transforms applied in order."""

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]):
        self.transforms = list(transforms)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            clips = t(clips)
        return clips


def build_transforms(specs: Sequence[dict]) -> Compose | None:
    """``DATASET.TRAIN_TRANSFORMS`` (a list of ``{type: Name, ...args}``) as one callable, or None."""
    if not specs:
        return None
    return Compose([build(TRANSFORMS, dict(spec)) for spec in specs])
