"""Structural similarity (SSIM, Wang, Bovik, Sheikh and Simoncelli, IEEE TIP 2004) of frames.

Example:
    >>> ssim(forecast, truth)          # (N, C, H, W) x 2 -> (N,), 1 = identical
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian ``(size,)``."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (w / w.sum()).float()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of ``x`` and ``y`` ``(N, C, H, W)`` -> ``(N,)``.

    Local means, variances and covariance under a ``window x window`` Gaussian (``sigma``),
    computed where the window fits inside the image (no padding); ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2`` with ``L = data_range``; the SSIM map is averaged over positions and
    channels. Images smaller than the window use a window of their size.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim expects two (N, C, H, W) tensors of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    x, y = x.double(), y.double()
    window = min(window, x.shape[-2], x.shape[-1])
    g = gaussian_window(window, sigma).to(x)
    c = x.shape[1]
    gy, gx = g.view(1, 1, -1, 1).expand(c, 1, -1, 1), g.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def blur(t):  # separable, per channel
        return F.conv2d(F.conv2d(t, gy, groups=c), gx, groups=c)
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()
