"""The forecasting task: how well a method forecasts the next frames of held-out sequences.

Per forecast step, the mean squared error per pixel (frames in [0, 1]) and SSIM of the
forecast and of two baselines that learn nothing: copying the last observed frame, and an
all-zero frame (which on mostly empty frames, such as moving digits, scores a high SSIM).
Writes ``metrics.json`` and ``plots/forecast.png`` (input / truth / forecast).

A method of this task has ``split(clips) -> (observed, target)``, ``forecast(observed,
future) -> (B, future, C, H, W)``, and the attributes ``eval_batch``, ``strip_sequences`` and
``input_frames`` (:class:`~pyanomaly.models.forecaster.Forecaster`).

Example:
    >>> metrics = Forecasting().evaluate(model, test_set, torch.device("cpu"), Path("outputs/run"))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pyanomaly.registry import TASKS

from ..export import write_metrics
from ..ssim import ssim


@TASKS.register_module(name="forecasting")
class Forecasting:
    """Per-step MSE and SSIM of a forecaster and of its baselines (see the module docstring)."""

    #: the scalar metrics ``evaluate`` produces (what ``TRAIN.BEST_METRIC`` may name)
    metric_names = ("mse", "ssim", "mse_copy_last", "ssim_copy_last", "mse_zeros", "ssim_zeros",
                    "mse_reduction_vs_copy_last")

    @torch.no_grad()
    def evaluate(self, model, dataset, device: torch.device, out_dir: str | Path | None = None) -> dict:
        """Metrics over every sequence of ``dataset``; with ``out_dir`` also the files."""
        was_training = model.training
        model.eval()
        sums = {k: 0.0 for k in ("mse", "ssim", "mse_copy_last", "ssim_copy_last", "mse_zeros", "ssim_zeros")}
        per_frame: dict[str, torch.Tensor] = {}
        shown, n = None, 0
        try:
            for start in range(0, len(dataset), model.eval_batch):
                idx = range(start, min(start + model.eval_batch, len(dataset)))
                clips = torch.stack([dataset[i]["frames"] for i in idx]).to(device)
                observed, target = model.split(clips)
                forecast = model.forecast(observed, target.shape[1]).float()
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
                    m = min(model.strip_sequences, b)
                    shown = (observed[:m].cpu(), target[:m].cpu(), forecast[:m].cpu())
        finally:
            model.train(was_training)
        per_frame = {key: (v / n).tolist() for key, v in per_frame.items()}
        for key in sums:
            sums[key] = float(np.mean(per_frame[key]))
        metrics = {
            "task": "forecasting",
            **sums,
            "mse_reduction_vs_copy_last": 1.0 - sums["mse"] / max(sums["mse_copy_last"], 1e-12),
            "sequences": n, "input_frames": model.input_frames, "forecast_frames": len(per_frame["mse"]),
            "per_frame": per_frame,
            "units": "mse: mean squared error per pixel, frames in [0, 1]; ssim: Gaussian window 11, sigma 1.5; "
                     "per_frame[key][j]: forecast step j + 1, averaged over sequences",
        }
        if out_dir is not None:
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
