"""``Forecaster``: a ConvLSTM encoder-forecaster that predicts the next K frames (Shi et al. 2015).

Shi, Chen, Wang, Yeung, Wong and Woo, "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting", NeurIPS 2015 (the Moving-MNIST experiment: 10
frames in, 10 out). Frames are encoded by strided convolutions; an encoding stack reads
the ``input_frames`` observed frames; a forecasting stack of the same shape (own weights)
starts from the encoder's final states and, fed nothing (zeros, Shi's unconditioned
forecaster), runs one step per future frame; the concatenated hidden states of its layers are
decoded to a frame at every step. ``cell`` picks the recurrent stack by its registered name:
``"ConvLSTM"`` or ``"SAConvLSTM"`` (Lin et al., AAAI 2020), or any network with their
sequence API; ``cell_args`` go to it.

Its task is ``"forecasting"`` (:mod:`pyanomaly.evaluation.tasks.forecasting`: per-frame MSE
and SSIM of the forecast and of two baselines that learn nothing, ``plots/forecast.png``).

Example:
    >>> model = Forecaster(input_frames=10, clip_length=20, hidden_channels=(16, 16))
    >>> losses = model({"frames": torch.rand(2, 20, 1, 64, 64)})   # {"loss_bce": ...}
    >>> future = model.net(torch.rand(2, 10, 1, 64, 64))           # (2, 10, 1, 64, 64)
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.networks.meta.convlstm_forecaster import StridedEncoder, UpsamplingDecoder, check_divisible
from pyanomaly.registry import MODELS, NETWORKS, build

from .base import VADModel

logger = logging.getLogger("pyanomaly")


class SequenceForecaster(nn.Module):
    """Observed frames ``(B, T, C, H, W)`` in [0, 1] -> the next ``future`` frames ``(B, K, C, H, W)``.

    Args:
        in_channels: frame channels ``C``.
        hidden_channels: channels of the stacked recurrent layers (encoder and forecaster).
        kernel_size: odd kernel of the gate convolutions.
        downsample: power of two; the recurrence runs at ``H/downsample x W/downsample``.
        base_channels: channels of the full-resolution conv features (doubled per halving).
        future: frames forecast by default.
        cell: registered name of the recurrent stack (``"ConvLSTM"``, ``"SAConvLSTM"``).
        cell_args: extra keyword arguments of the stack (``peephole``, ``attention_channels``, ...).
    """

    def __init__(self, in_channels: int = 1, hidden_channels: Sequence[int] = (32, 32), kernel_size: int = 3,
                 downsample: int = 4, base_channels: int = 8, future: int = 10, cell: str = "ConvLSTM",
                 cell_args: dict | None = None):
        super().__init__()
        hidden = [int(hidden_channels)] if isinstance(hidden_channels, int) else [int(h) for h in hidden_channels]
        self.in_channels, self.downsample, self.future = int(in_channels), int(downsample), int(future)
        self.encoder = StridedEncoder(self.in_channels, base_channels, self.downsample)
        stack = dict(kernel_size=kernel_size, return_all_layers=True, **(cell_args or {}))
        self.encoding_rnn = build(NETWORKS, dict(type=cell, input_channels=self.encoder.out_channels,
                                                 hidden_channels=hidden, **stack))
        # the forecaster reads no frames: one constant zero channel stands for "no input"
        self.forecasting_rnn = build(NETWORKS, dict(type=cell, input_channels=1, hidden_channels=hidden, **stack))
        self.decoder = UpsamplingDecoder(sum(hidden), base_channels, self.downsample, self.in_channels)

    def forward(self, history: torch.Tensor, future: int | None = None) -> torch.Tensor:
        if history.dim() != 5 or history.shape[2] != self.in_channels:
            raise ValueError(f"SequenceForecaster expects (B, T, {self.in_channels}, H, W), got {tuple(history.shape)}")
        k = self.future if future is None else int(future)
        b, t, c, h, w = history.shape
        check_divisible(h, w, self.downsample, "SequenceForecaster")
        _, feats = self.encoder(history.reshape(b * t, c, h, w))
        _, states = self.encoding_rnn(feats.reshape(b, t, *feats.shape[1:]))
        blank = feats.new_zeros(b, k, 1, *feats.shape[-2:])
        outs, _ = self.forecasting_rnn(blank, hidden_state=states)
        top = torch.cat(outs, dim=2).flatten(0, 1)  # every layer's h at every future step
        return self.decoder(top).reshape(b, k, c, h, w)


@MODELS.register_module()
class Forecaster(VADModel):
    """Multi-frame forecasting: the first ``input_frames`` of a clip predict the rest.

    Args:
        input_frames: observed frames per clip; the other ``clip_length - input_frames`` are forecast.
        clip_length: frames per clip (``DATASET.CLIP_LENGTH`` unless given).
        loss: ``"bce"`` (per-pixel cross-entropy, as Shi et al. train) or ``"mse"``.
        eval_batch: sequences per forward pass in evaluation.
        strip_sequences: sequences drawn in ``plots/forecast.png``.
        The rest are :class:`SequenceForecaster`'s arguments.

    ``predict_stream`` predicts each frame from the ``input_frames`` before it (the first
    forecast step), so the method can also score videos like a next-frame predictor.
    """

    task = "forecasting"

    def __init__(self, input_frames: int = 10, clip_length: int = 20, in_channels: int = 1,
                 hidden_channels: Sequence[int] = (32, 32), kernel_size: int = 3, downsample: int = 4,
                 base_channels: int = 8, cell: str = "ConvLSTM", cell_args: dict | None = None,
                 loss: str = "bce", eval_batch: int = 32, strip_sequences: int = 3):
        super().__init__()
        self.input_frames, self.clip_length = int(input_frames), int(clip_length)
        if not 0 < self.input_frames < self.clip_length:
            raise ValueError(f"Forecaster needs 0 < input_frames < clip_length, got {input_frames} and {clip_length}")
        if loss not in ("bce", "mse"):
            raise ValueError(f"Forecaster loss must be 'bce' or 'mse', got {loss!r}")
        self.loss, self.eval_batch, self.strip_sequences = loss, int(eval_batch), int(strip_sequences)
        self.net = SequenceForecaster(in_channels, hidden_channels, kernel_size, downsample, base_channels,
                                      future=self.clip_length - self.input_frames, cell=cell, cell_args=cell_args)

    def split(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips ``(B, T, C, H, W)`` -> observed ``(B, input_frames, ...)`` and future frames."""
        if frames.shape[1] <= self.input_frames:
            raise ValueError(f"Forecaster: clips of {frames.shape[1]} frames leave nothing to forecast after "
                             f"input_frames={self.input_frames}")
        return frames[:, :self.input_frames], frames[:, self.input_frames:]

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        observed, target = self.split(batch["frames"])
        forecast = self.net(observed, future=target.shape[1])
        if self.loss == "bce":
            return {"loss_bce": F.binary_cross_entropy(forecast.float(), target.float())}
        return {"loss_mse": F.mse_loss(forecast, target)}

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        return self.stream_windows(frames, states, self.input_frames, lambda w: self.net(w, future=1)[:, 0],
                                   self.eval_batch)

    def forecast(self, observed: torch.Tensor, future: int) -> torch.Tensor:
        """The ``future`` frames after ``observed`` ``(B, T, C, H, W)``: ``(B, future, C, H, W)``."""
        return self.net(observed, future=future)
