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

Evaluation (:meth:`Forecaster.evaluate`) reports per-frame MSE (per pixel, frames in [0, 1])
and SSIM of the forecast and of two baselines (copy the last observed frame; an all-zero
frame, which on mostly empty frames scores a high SSIM), writes ``metrics.json`` and
``plots/forecast.png`` (input / truth / forecast).

Example:
    >>> model = Forecaster(input_frames=10, clip_length=20, hidden_channels=(16, 16))
    >>> losses = model({"frames": torch.rand(2, 20, 1, 64, 64)})   # {"loss_bce": ...}
    >>> future = model.net(torch.rand(2, 10, 1, 64, 64))           # (2, 10, 1, 64, 64)
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.networks.meta.convlstm_forecaster import StridedEncoder, UpsamplingDecoder, check_divisible
from pyanomaly.registry import MODELS, NETWORKS, build

from .base import VADModel

logger = logging.getLogger("pyanomaly")


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
        eval_batch: sequences per forward pass in :meth:`evaluate`.
        strip_sequences: sequences drawn in ``plots/forecast.png``.
        The rest are :class:`SequenceForecaster`'s arguments.

    ``predict_stream`` predicts each frame from the ``input_frames`` before it (the first
    forecast step), so the method can also score videos like a next-frame predictor.
    """

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
    def predict_stream(self, frames: torch.Tensor, state=None):
        return self.stream_windows(frames, state, self.input_frames, lambda w: self.net(w, future=1)[:, 0],
                                   self.eval_batch)

    @torch.no_grad()
    def evaluate(self, dataset, cfg, device: torch.device, out_dir=None) -> dict:
        """Per-frame MSE and SSIM of the forecast and of the baselines on every sequence of ``dataset``."""
        was_training = self.training
        self.eval()
        sums = {k: 0.0 for k in ("mse", "ssim", "mse_copy_last", "ssim_copy_last", "mse_zeros", "ssim_zeros")}
        per_frame: dict[str, torch.Tensor] = {}
        shown, n = None, 0
        try:
            for start in range(0, len(dataset), self.eval_batch):
                idx = range(start, min(start + self.eval_batch, len(dataset)))
                clips = torch.stack([dataset[i]["frames"] for i in idx]).to(device)
                observed, target = self.split(clips)
                forecast = self.net(observed, future=target.shape[1]).float()
                last = observed[:, -1:].expand_as(target)
                b, k = target.shape[:2]
                flat = lambda t: t.reshape(b * k, *t.shape[2:])  # noqa: E731
                stats = {
                    "mse": (forecast - target).pow(2).mean(dim=(2, 3, 4)),
                    "ssim": ssim(flat(forecast), flat(target)).view(b, k),
                    "mse_copy_last": (last - target).pow(2).mean(dim=(2, 3, 4)),
                    "ssim_copy_last": ssim(flat(last), flat(target)).view(b, k),
                    "mse_zeros": target.pow(2).mean(dim=(2, 3, 4)),
                    "ssim_zeros": ssim(torch.zeros_like(flat(target)), flat(target)).view(b, k),
                }
                for key, v in stats.items():
                    per_frame[key] = per_frame.get(key, 0) + v.double().sum(0).cpu()
                n += b
                if shown is None:
                    m = min(self.strip_sequences, b)
                    shown = (observed[:m].cpu(), target[:m].cpu(), forecast[:m].cpu())
        finally:
            self.train(was_training)
        per_frame = {key: (v / n).tolist() for key, v in per_frame.items()}
        for key in sums:
            sums[key] = float(np.mean(per_frame[key]))
        metrics = {
            "task": "forecasting",
            **sums,
            "mse_reduction_vs_copy_last": 1.0 - sums["mse"] / max(sums["mse_copy_last"], 1e-12),
            "sequences": n, "input_frames": self.input_frames, "forecast_frames": len(per_frame["mse"]),
            "per_frame": per_frame,
            "units": "mse: mean squared error per pixel, frames in [0, 1]; ssim: Gaussian window 11, sigma 1.5; "
                     "per_frame[key][j]: forecast step j + 1, averaged over sequences",
        }
        if out_dir is not None:
            from pyanomaly.evaluation.export import write_metrics
            out_dir = Path(out_dir)
            write_metrics(out_dir / "metrics.json", metrics)
            if shown is not None:
                save_forecast_strip(out_dir / "plots" / "forecast.png", *shown)
        return metrics


def save_forecast_strip(path: str | Path, observed: torch.Tensor, truth: torch.Tensor,
                        forecast: torch.Tensor) -> None:
    """PNG: per sequence three rows, the observed frames, the true future and the forecast.

    ``observed`` ``(S, T, C, H, W)``, ``truth`` and ``forecast`` ``(S, K, C, H, W)``, in [0, 1].
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def row(frames: torch.Tensor) -> np.ndarray:  # (T, C, H, W) -> (H, T*(W+1)) gray or RGB
        f = frames.clamp(0, 1).numpy()
        f = np.pad(f, ((0, 0), (0, 0), (0, 0), (0, 1)), constant_values=0.5)
        img = np.concatenate(list(f), axis=-1)
        return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)

    s = observed.shape[0]
    fig, axes = plt.subplots(3 * s, 1, figsize=(1.0 * max(observed.shape[1], truth.shape[1]) + 1, 3.2 * s),
                             squeeze=False)
    names = ("input", "truth", "forecast")
    for i in range(s):
        for j, frames in enumerate((observed[i], truth[i], forecast[i])):
            ax = axes[3 * i + j, 0]
            ax.imshow(row(frames), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(names[j], rotation=0, ha="right", va="center")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
