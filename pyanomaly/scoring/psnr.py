"""Per-frame prediction error as PSNR or MSE, over the whole frame or its worst patch.

PSNR (dB) is the standard raw score of frame predictors (Liu et al., "Future Frame
Prediction for Anomaly Detection", CVPR 2018): lower PSNR = worse prediction = more
anomalous. With ``patch > 0`` the error of a frame is that of its worst ``patch x patch``
window (stride ``patch // 2``), which keeps a small anomaly from being averaged away.

Each scorer also gives the per-pixel map behind its error (``error_map``): the squared error,
averaged over channels, whose frame mean is the MSE.

Example:
    >>> psnr = PSNR(max_val=1.0)
    >>> psnr(pred, target)    # (N, C, H, W) x2 -> (N,) dB
    >>> psnr.error_map(pred, target)    # (N, 1, H, W) squared error
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pyanomaly.registry import SCORERS


def frame_or_worst_patch(values: torch.Tensor, patch: int = 0) -> torch.Tensor:
    """Per-pixel values ``(N, 1, H, W)`` -> ``(N,)``: their frame mean, or with ``patch`` the
    largest mean over ``patch x patch`` windows (stride ``patch // 2``)."""
    if patch <= 0:
        return values.flatten(1).mean(dim=1)
    k = min(patch, values.shape[-2], values.shape[-1])
    return F.avg_pool2d(values, k, stride=max(k // 2, 1)).flatten(1).amax(dim=1)


def squared_error_map(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared error ``(N, 1, H, W)``, averaged over channels: the map behind the MSE."""
    return (prediction.float() - target.float()).pow(2).mean(dim=1, keepdim=True)


def patch_mse(prediction: torch.Tensor, target: torch.Tensor, patch: int = 0) -> torch.Tensor:
    """Mean squared error per frame ``(N,)``; with ``patch`` the max over patch means."""
    return frame_or_worst_patch(squared_error_map(prediction, target), patch)


def error_map(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel absolute error ``(N, H, W)`` in [0, 1], averaged over channels (for pictures)."""
    return (prediction.float() - target.float()).abs().mean(dim=1).clamp_(0.0, 1.0)


@SCORERS.register_module(name="PSNR")
class PSNR:
    """PSNR in dB, ``10 log10(max_val^2 / MSE)``; lower = more anomalous.

    Args:
        max_val: peak signal value (1.0 for frames in [0, 1]).
        patch: > 0 scores the worst patch of that size instead of the whole frame.
    """

    higher_is_anomalous = False

    def __init__(self, max_val: float = 1.0, patch: int = 0):
        self.max_val = max_val
        self.patch = patch

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mse = patch_mse(prediction, target, self.patch).clamp_min(1e-10)
        return 10.0 * torch.log10(self.max_val ** 2 / mse)

    def error_map(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The squared error ``(N, 1, H, W)`` (mean over channels), higher = more anomalous: its
        frame mean (or worst patch mean) is the MSE behind the PSNR."""
        return squared_error_map(prediction, target)


@SCORERS.register_module(name="MSE")
class MSE:
    """Mean squared error; higher = more anomalous. ``patch`` as for :class:`PSNR`."""

    higher_is_anomalous = True

    def __init__(self, max_val: float = 1.0, patch: int = 0):
        self.patch = patch

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return patch_mse(prediction, target, self.patch)

    def error_map(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The squared error ``(N, 1, H, W)`` (mean over channels); its frame mean (or worst
        patch mean) is the error."""
        return squared_error_map(prediction, target)
