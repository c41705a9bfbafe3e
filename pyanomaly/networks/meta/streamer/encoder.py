"""The image encoder and decoder of STREAMER's base layer: four convolutions each way.

Mounir, Vijayaraghavan and Sarkar, "STREAMER: Streaming Representation Learning and Event
Segmentation in a Hierarchical Manner", NeurIPS 2023. The base layer of the stack reads
images: :class:`StreamerCNNEncoder` turns each into a feature vector for the temporal
encoding, and :class:`StreamerCNNDecoder` turns the predicted next feature vector back into
an image, whose error against the real next frame is the base layer's loss.

Both work at any image size: the encoder pools its last feature map to ``grid x grid``
cells, and the decoder draws at ``16 * grid`` pixels and resizes to the size asked for.

Example:
    >>> enc, dec = StreamerCNNEncoder(64), StreamerCNNDecoder(64)
    >>> z = enc(torch.rand(5, 1, 64, 64))          # (5, 64)
    >>> dec(z, size=(64, 64)).shape                  # images in [0, 1]
    torch.Size([5, 1, 64, 64])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.registry import NETWORKS


@NETWORKS.register_module()
class StreamerCNNEncoder(nn.Module):
    """Images ``(N, C, H, W)`` in [0, 1] -> feature vectors ``(N, feature_dim)``.

    Four 3x3 stride-2 convolutions (``width``, ``2 width``, ``4 width``, ``8 width``
    channels, ReLU), average-pooled to ``grid x grid`` and projected linearly.

    Args:
        feature_dim: output size ``D``.
        channels: image channels ``C``.
        width: channels of the first convolution.
        grid: cells per side the last feature map is pooled to.
    """

    def __init__(self, feature_dim: int, channels: int = 1, width: int = 16, grid: int = 4):
        super().__init__()
        layers, c = [], channels
        for k in range(4):
            layers += [nn.Conv2d(c, width * 2 ** k, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c = width * 2 ** k
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Linear(c * grid * grid, feature_dim)
        self.channels = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.channels:
            raise ValueError(f"StreamerCNNEncoder expects images (N, {self.channels}, H, W), got {tuple(images.shape)}")
        return self.proj(self.pool(self.body(images)).flatten(1))


@NETWORKS.register_module()
class StreamerCNNDecoder(nn.Module):
    """Feature vectors ``(N, feature_dim)`` -> images ``(N, C, H, W)`` in [0, 1].

    A linear map to ``8 width`` channels on a ``grid x grid`` map, then four 4x4 stride-2
    transposed convolutions (``4 width``, ``2 width``, ``width``, ``C`` channels; ReLU
    between, a sigmoid at the end): images of ``16 grid`` pixels a side, resized bilinearly
    to ``size`` when another size is asked for.

    Args:
        feature_dim: input size ``D``.
        channels: image channels ``C``.
        width: channels of the last hidden transposed convolution.
        grid: side of the first feature map.
    """

    def __init__(self, feature_dim: int, channels: int = 1, width: int = 16, grid: int = 4):
        super().__init__()
        self.grid, self.top = grid, width * 8
        self.proj = nn.Linear(feature_dim, self.top * grid * grid)
        layers, c = [], self.top
        for k, out in enumerate((width * 4, width * 2, width, channels)):
            layers.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
            if k < 3:
                layers.append(nn.ReLU(inplace=True))
            c = out
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        x = torch.relu(self.proj(z)).view(z.shape[0], self.top, self.grid, self.grid)
        x = self.body(x)
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return torch.sigmoid(x)
