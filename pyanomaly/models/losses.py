"""Training losses of frame predictors, registered in ``LOSSES``.

Each takes ``(prediction, target)`` of shape ``(B, C, H, W)`` and returns a scalar.
"""
from __future__ import annotations

import torch
from torch import nn

from pyanomaly.registry import LOSSES


@LOSSES.register_module()
class IntensityLoss(nn.Module):
    """Mean squared (``p=2``) or absolute (``p=1``) pixel difference."""

    def __init__(self, p: int = 2):
        super().__init__()
        self.p = p

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).abs().pow(self.p).mean()


@LOSSES.register_module()
class GradientLoss(nn.Module):
    """Difference of absolute image gradients (Mathieu et al. 2016; used by FFP, Liu et al. 2018)."""

    def __init__(self, alpha: int = 1):
        super().__init__()
        self.alpha = alpha

    @staticmethod
    def _grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        px, py = self._grads(prediction)
        tx, ty = self._grads(target)
        return (px - tx).abs().pow(self.alpha).mean() + (py - ty).abs().pow(self.alpha).mean()
