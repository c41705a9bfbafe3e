"""Scoring: prediction error -> per-frame raw error -> normalised, smoothed anomaly score."""
from __future__ import annotations

import numpy as np

from .normalize import minmax, orient
from .psnr import MSE, PSNR, patch_mse
from .smoothing import gaussian_smooth

__all__ = ["PSNR", "MSE", "patch_mse", "minmax", "orient", "gaussian_smooth", "scores_from_errors"]


def scores_from_errors(error: np.ndarray, valid: np.ndarray, higher_is_anomalous: bool,
                       normalize: str = "minmax", sigma: float = 0.0, missing: str = "exclude") -> np.ndarray:
    """Anomaly scores ``(N,)`` of one video from its raw errors ``(N,)``.

    Frames with ``valid == False`` (no prediction) get NaN with ``missing="exclude"`` or the
    score of the nearest scored frame with ``missing="fill"``.
    """
    values = np.where(valid, orient(np.asarray(error, dtype=np.float64), higher_is_anomalous), np.nan)
    if normalize == "minmax":
        values = minmax(values)
    values = gaussian_smooth(values, sigma)
    if missing == "fill" and np.isfinite(values).any():
        idx = np.flatnonzero(np.isfinite(values))
        nearest = idx[np.abs(np.arange(values.size)[:, None] - idx[None, :]).argmin(axis=1)]
        values = values[nearest]
    return values
