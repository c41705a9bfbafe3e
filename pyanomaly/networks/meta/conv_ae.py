"""A convolutional autoencoder of a stack of frames (or optical-flow fields).

After Hasan et al., "Learning Temporal Regularity in Video Sequences" (CVPR 2016): the ``T``
frames of a window are stacked on channels, an encoder of 3x3 convolutions with 2x2 max
pooling halves the resolution ``depth`` times (channels doubling), a bottleneck convolution
narrows the code to ``latent_channels``, and a decoder of 2x2 stride-2 transposed
convolutions brings it back to the ``T`` frames. Trained on normal videos only, it reconstructs
normal appearance (or motion) well and the rest badly: the reconstruction error is the cue.

The encoder and decoder are modules of their own (:class:`ConvEncoder`, :class:`ConvDecoder`),
so that :class:`~pyanomaly.networks.meta.memae.MemAE` puts its memory between them.

Example:
    >>> net = ConvAE(in_channels=1, frames=4, base_channels=16, depth=3)
    >>> out = net(torch.rand(2, 4, 1, 64, 64))      # (2, 4, 1, 64, 64) in [0, 1]
    >>> flow_net = ConvAE(in_channels=2, frames=4, activation="none")  # flow: unbounded output
"""
from __future__ import annotations

import torch
from torch import nn

from pyanomaly.registry import NETWORKS

from .convlstm_forecaster import check_divisible

OUTPUT_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "none": nn.Identity}


def _conv_bn_relu(cin: int, cout: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


class ConvEncoder(nn.Sequential):
    """Stacked frames ``(B, T*C, H, W)`` -> code ``(B, latent, H / 2**depth, W / 2**depth)``: per
    level a 3x3 convolution (``base * 2**i`` channels) and a 2x2 max pooling, then a linear 3x3
    bottleneck convolution to ``latent`` channels."""

    def __init__(self, in_channels: int, base_channels: int, depth: int, latent_channels: int, batch_norm: bool):
        widths = [base_channels * 2 ** i for i in range(depth)]
        layers: list[nn.Module] = []
        for cin, cout in zip([in_channels] + widths[:-1], widths):
            layers += _conv_bn_relu(cin, cout, batch_norm) + [nn.MaxPool2d(2)]
        layers.append(nn.Conv2d(widths[-1], latent_channels, 3, padding=1))
        super().__init__(*layers)


class ConvDecoder(nn.Sequential):
    """Code ``(B, latent, h, w)`` -> stacked frames ``(B, T*C, h * 2**depth, w * 2**depth)``: per
    level a 2x2 stride-2 transposed convolution (channels halving, mirroring the encoder), then
    a 3x3 convolution to the ``T*C`` output channels and the output activation."""

    def __init__(self, out_channels: int, base_channels: int, depth: int, latent_channels: int, batch_norm: bool,
                 activation: str):
        widths = [base_channels * 2 ** i for i in reversed(range(depth))]
        layers: list[nn.Module] = []
        for cin, cout in zip([latent_channels] + widths[:-1], widths):
            layers.append(nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        layers += [nn.Conv2d(widths[-1], out_channels, 3, padding=1), OUTPUT_ACTIVATIONS[activation]()]
        super().__init__(*layers)


@NETWORKS.register_module()
class ConvAE(nn.Module):
    """A window of frames ``(B, T, C, H, W)`` -> its reconstruction ``(B, T, C, H, W)``.

    Args:
        in_channels: channels ``C`` of a frame (1 gray, 3 RGB, 2 for an optical flow ``(dx, dy)``).
        frames: ``T``, frames per window (stacked on channels).
        base_channels: channels of the first level (doubled at each halving).
        depth: halvings; ``H`` and ``W`` must be multiples of ``2 ** depth``.
        latent_channels: channels of the code; ``None`` = those of the deepest level.
        activation: the output's: ``"sigmoid"`` (frames in [0, 1]) or ``"none"`` (flow, any value).
        batch_norm: batch normalisation after each hidden convolution.
    """

    def __init__(self, in_channels: int = 1, frames: int = 4, base_channels: int = 32, depth: int = 3,
                 latent_channels: int | None = None, activation: str = "sigmoid", batch_norm: bool = True):
        super().__init__()
        if min(int(in_channels), int(frames), int(base_channels), int(depth)) < 1:
            raise ValueError(f"{type(self).__name__} needs in_channels, frames, base_channels and depth >= 1, got "
                             f"{in_channels}, {frames}, {base_channels}, {depth}")
        if activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"{type(self).__name__} activation must be one of {sorted(OUTPUT_ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.in_channels, self.frames, self.depth = int(in_channels), int(frames), int(depth)
        self.latent_channels = int(base_channels) * 2 ** (self.depth - 1) if latent_channels is None \
            else int(latent_channels)
        stacked = self.in_channels * self.frames
        self.encoder = ConvEncoder(stacked, int(base_channels), self.depth, self.latent_channels, bool(batch_norm))
        self.decoder = ConvDecoder(stacked, int(base_channels), self.depth, self.latent_channels, bool(batch_norm),
                                   activation)

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` -> code ``(B, latent, H / 2**depth, W / 2**depth)``."""
        if window.dim() != 5 or window.shape[1:3] != (self.frames, self.in_channels):
            raise ValueError(f"{type(self).__name__} expects (B, {self.frames}, {self.in_channels}, H, W) "
                             f"(frames={self.frames} of in_channels={self.in_channels}), got {tuple(window.shape)}")
        b, t, c, h, w = window.shape
        check_divisible(h, w, 2 ** self.depth, type(self).__name__)
        return self.encoder(window.reshape(b, t * c, h, w))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Code ``(B, latent, h, w)`` -> window ``(B, T, C, h * 2**depth, w * 2**depth)``."""
        out = self.decoder(code)
        return out.reshape(out.shape[0], self.frames, self.in_channels, *out.shape[-2:])

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` -> reconstruction ``(B, T, C, H, W)``."""
        return self.decode(self.encode(window))
