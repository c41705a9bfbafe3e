"""Per-frame prediction error as the area the prediction got wrong.

Every pixel of a real camera frame carries sensor and compression noise that no predictor can
foresee, so a frame's mean squared error is a noise floor plus the error of what moved. On a
quiet frame the floor dominates, and per-video normalisation then stretches noise. Counting
only the pixels whose error exceeds a noise threshold measures the part of the scene that
changed against the prediction: on UCSD Ped2 (JPEG frames) it separates fast, large anomalies
from the walking crowd better than PSNR does (``docs/results.md``).

Example:
    >>> area = ErrorArea(threshold=0.05)
    >>> area(pred, target)    # (N, C, H, W) x2 -> (N,) fraction of pixels, in [0, 1]
    >>> area.error_map(pred, target)    # (N, 1, H, W) absolute error, mean over channels
"""
from __future__ import annotations

import torch

from pyanomaly.registry import SCORERS

from .psnr import frame_or_worst_patch


@SCORERS.register_module(name="AREA")
class ErrorArea:
    """Fraction of pixels whose absolute error (mean over channels) exceeds ``threshold x max_val``;
    higher = more anomalous.

    Args:
        threshold: the per-pixel error, as a fraction of ``max_val``, above which a pixel counts
            as mispredicted (``SCORE.PIXEL_THRESHOLD``); in (0, 1).
        max_val: peak signal value (1.0 for frames in [0, 1]).
        patch: > 0 scores the worst ``patch x patch`` window's fraction instead of the frame's.
    """

    higher_is_anomalous = True

    def __init__(self, threshold: float = 0.05, max_val: float = 1.0, patch: int = 0):
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"SCORE.PIXEL_THRESHOLD must be in (0, 1) (a fraction of SCORE.MAX_VAL), "
                             f"got {threshold}")
        if max_val <= 0:
            raise ValueError(f"SCORE.MAX_VAL must be > 0, got {max_val}")
        self.threshold, self.max_val, self.patch = float(threshold), float(max_val), int(patch)

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        wrong = (self.error_map(prediction, target) > self.threshold * self.max_val).float()
        return frame_or_worst_patch(wrong, self.patch)

    def error_map(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The absolute error ``(N, 1, H, W)``, averaged over channels, higher = more anomalous: the
        error is the fraction of its pixels above ``threshold x max_val`` (kept as the error
        itself rather than the 0/1 count, so that a heat map shows how wrong, not only where)."""
        return (prediction.float() - target.float()).abs().mean(dim=1, keepdim=True)
