"""An encoder-forecaster ConvLSTM that predicts the next frame from a short history.

After Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for
Precipitation Nowcasting", NeurIPS 2015: an encoding stack of ConvLSTM layers reads the
history; a forecasting stack of the same shape starts from the encoder's final states
(copied, not shared weights) and emits the future; the forecaster layers' hidden states,
concatenated, are mapped to the output. Here frames are first encoded by strided
convolutions (to ``H/downsample``) so the recurrence runs on small maps, and the output is
decoded back by transposed convolutions, with the last observed frame's full-resolution
features joined in (``skip``) so a static background need not pass through the LSTM.

Example:
    >>> net = ConvLSTMForecaster(in_channels=1, hidden_channels=(32, 32), downsample=2)
    >>> nxt = net(torch.rand(2, 4, 1, 64, 64))   # (2, 1, 64, 64) in [0, 1]: predicts frame 5
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from pyanomaly.networks.fast import FastPath
from pyanomaly.networks.fast import ops as fast
from pyanomaly.registry import NETWORKS

from .convlstm import ConvLSTM


def _levels(downsample: int) -> int:
    levels = int(downsample).bit_length() - 1
    if downsample < 1 or 2 ** levels != downsample:
        raise ValueError(f"downsample must be a power of two (1, 2, 4, ...), got {downsample}")
    return levels


def check_divisible(height: int, width: int, factor: int, who: str) -> None:
    """Raise a clear error when ``(height, width)`` cannot be divided by ``factor``."""
    if height % factor or width % factor:
        raise ValueError(f"{who} downsamples by {factor}, so input height and width must be multiples of "
                         f"{factor}; got {height}x{width}")


class StridedEncoder(nn.Module):
    """``(N, C, H, W)`` -> full-resolution features ``(N, base, H, W)`` and the downsampled
    features ``(N, base * downsample, H/d, W/d)`` (channels double at each halving).
    ``fast_path``: its inference fast path's switches."""

    fast_path: FastPath = FastPath()

    def __init__(self, in_channels: int, base_channels: int, downsample: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base_channels, 3, padding=1), nn.LeakyReLU(0.2))
        layers, ch = [], base_channels
        for _ in range(_levels(downsample)):
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            ch *= 2
        self.down = nn.Sequential(*layers)
        self.out_channels = ch

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = fast.compute_dtype(self.stem[0].weight, self.fast_path)
        if dtype is not None:  # no grad: cached weights, channels_last, in-place activations
            full = fast.sequential(self.stem, x, dtype, self.fast_path)
            return full, fast.sequential(self.down, full, dtype, self.fast_path)
        full = self.stem(x)
        return full, self.down(full)


class UpsamplingDecoder(nn.Module):
    """Features ``(N, in_channels, H/d, W/d)`` (+ optional skip ``(N, skip_channels, H, W)``)
    -> a frame ``(N, out_channels, H, W)`` in [0, 1]. ``fast_path``: its inference fast path's switches."""

    fast_path: FastPath = FastPath()

    def __init__(self, in_channels: int, base_channels: int, downsample: int, out_channels: int,
                 skip_channels: int = 0):
        super().__init__()
        ch = base_channels * downsample
        layers = [nn.Conv2d(in_channels, ch, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(_levels(downsample)):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            ch //= 2
        self.up = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Conv2d(ch + skip_channels, base_channels, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(base_channels, out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        switches = self.fast_path
        dtype = fast.compute_dtype(self.out[0].weight, switches)
        if dtype is not None:  # no grad: cached weights, channels_last, in-place activations
            y = fast.sequential(self.up, x, dtype, switches)
            if skip is not None:
                y = torch.cat([y, fast.to_fast(skip, y.dtype, switches)], dim=1)
            return fast.sequential(self.out, y, dtype, switches).sigmoid_()
        y = self.up(x)
        if skip is not None:
            y = torch.cat([y, skip], dim=1)
        return torch.sigmoid(self.out(y))


@NETWORKS.register_module()
class ConvLSTMForecaster(nn.Module):
    """History ``(B, T, C, H, W)`` in [0, 1] -> next frame ``(B, C, H, W)`` in [0, 1].

    Args:
        in_channels: frame channels ``C``.
        hidden_channels: channels of the stacked ConvLSTM layers (encoder and forecaster).
        kernel_size: odd kernel of the ConvLSTM gate convolutions.
        downsample: power of two; the ConvLSTMs run at ``H/downsample x W/downsample``
            (``H`` and ``W`` must be multiples of it).
        base_channels: channels of the full-resolution conv features (doubled per halving).
        skip: join the last frame's full-resolution features to the decoder.
        peephole: peephole connections in the ConvLSTMs.
    """

    def __init__(self, in_channels: int = 1, hidden_channels: Sequence[int] = (32, 32), kernel_size: int = 3,
                 downsample: int = 2, base_channels: int = 16, skip: bool = True, peephole: bool = False):
        super().__init__()
        hidden = [int(hidden_channels)] if isinstance(hidden_channels, int) else [int(h) for h in hidden_channels]
        self.in_channels = int(in_channels)
        self.downsample = int(downsample)
        self.skip = bool(skip)
        self.encoder = StridedEncoder(self.in_channels, base_channels, self.downsample)
        feat = self.encoder.out_channels
        self.encoding_rnn = ConvLSTM(feat, hidden, kernel_size, return_all_layers=True, peephole=peephole)
        self.forecasting_rnn = ConvLSTM(feat, hidden, kernel_size, return_all_layers=True, peephole=peephole)
        self.decoder = UpsamplingDecoder(sum(hidden), base_channels, self.downsample, self.in_channels,
                                         skip_channels=base_channels if self.skip else 0)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """``history`` ``(B, T, C, H, W)`` -> prediction of the frame after it ``(B, C, H, W)``."""
        if history.dim() != 5 or history.shape[2] != self.in_channels:
            raise ValueError(f"ConvLSTMForecaster expects (B, T, {self.in_channels}, H, W), got {tuple(history.shape)}")
        b, t, c, h, w = history.shape
        check_divisible(h, w, self.downsample, "ConvLSTMForecaster")
        full, feats = self.encoder(history.reshape(b * t, c, h, w))  # all frames in one batch
        feats = feats.reshape(b, t, *feats.shape[1:])
        _, states = self.encoding_rnn(feats)
        # The forecaster starts from the encoder's states and is fed the newest observation.
        outs, _ = self.forecasting_rnn(feats[:, -1:], hidden_state=states)
        top = torch.cat([o[:, -1] for o in outs], dim=1)
        skip = full.reshape(b, t, *full.shape[1:])[:, -1] if self.skip else None
        return self.decoder(top, skip)
