"""``Classifier``: a ConvLSTM that reads a clip and names its action (KTH-style recognition).

The ConvLSTM of Shi et al. (NeurIPS 2015) as a clip encoder, as in ConvLSTM action
recognition on KTH: frames (and, with ``motion``, their differences from the frame before)
are encoded by strided convolutions, a recurrent stack
(``cell``: ``"ConvLSTM"``, ``"SAConvLSTM"`` (Lin et al., AAAI 2020), or any registered stack
with their sequence API) reads them, and the last layer's final hidden state, average- and
max-pooled over positions, goes through dropout to a linear layer of ``num_classes`` logits.
Training minimises cross-entropy against ``batch["target"]``.

Its task is ``"classification"`` (:mod:`pyanomaly.evaluation.tasks.classification`: clip and
video accuracy, per-class accuracy, the confusion matrix).

Example:
    >>> model = Classifier(num_classes=6, hidden_channels=(16,))
    >>> losses = model({"frames": torch.rand(2, 10, 1, 60, 80), "target": torch.tensor([0, 3])})
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyanomaly.networks.meta.convlstm_forecaster import StridedEncoder
from pyanomaly.registry import MODELS, NETWORKS, build

from .base import VADModel


class ClipClassifier(nn.Module):
    """Clips ``(B, T, C, H, W)`` in [0, 1] -> class logits ``(B, num_classes)`` (any ``H, W``).

    Args:
        num_classes: number of classes.
        in_channels: frame channels ``C``.
        hidden_channels: channels of the stacked recurrent layers.
        kernel_size: odd kernel of the gate convolutions.
        downsample: power of two; the recurrence runs at about ``H/downsample x W/downsample``.
        base_channels: channels of the full-resolution conv features (doubled per halving).
        cell, cell_args: registered name of the recurrent stack and its extra arguments.
        dropout: dropout on the pooled features.
        motion: give the encoder each frame's difference from the one before (0 for the first)
            besides the frame. Classes that differ only in motion pool to nearly the same
            features at initialisation without it (the pooling is translation invariant), so
            training idles for a long, seed-dependent while before it starts learning.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, hidden_channels: Sequence[int] = (32,),
                 kernel_size: int = 3, downsample: int = 4, base_channels: int = 8, cell: str = "ConvLSTM",
                 cell_args: dict | None = None, dropout: float = 0.0, motion: bool = True):
        super().__init__()
        hidden = [int(hidden_channels)] if isinstance(hidden_channels, int) else [int(h) for h in hidden_channels]
        self.in_channels, self.motion = int(in_channels), bool(motion)
        self.encoder = StridedEncoder(self.in_channels * (2 if self.motion else 1), base_channels, downsample)
        self.rnn = build(NETWORKS, dict(type=cell, input_channels=self.encoder.out_channels, hidden_channels=hidden,
                                        kernel_size=kernel_size, **(cell_args or {})))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden[-1], int(num_classes)))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dim() != 5 or clips.shape[2] != self.in_channels:
            raise ValueError(f"ClipClassifier expects (B, T, {self.in_channels}, H, W), got {tuple(clips.shape)}")
        if self.motion:  # the frame difference beside each frame (0 at the first)
            clips = torch.cat([clips, clips - torch.cat([clips[:, :1], clips[:, :-1]], dim=1)], dim=2)
        b, t, c, h, w = clips.shape
        _, feats = self.encoder(clips.reshape(b * t, c, h, w))
        _, state = self.rnn(feats.reshape(b, t, *feats.shape[1:]))
        last = state[0]  # the last layer's final h
        return self.head(torch.cat([last.mean(dim=(2, 3)), last.amax(dim=(2, 3))], dim=1))


@MODELS.register_module()
class Classifier(VADModel):
    """Clip classification with :class:`ClipClassifier`; samples carry ``"target"`` (class index).

    Args:
        num_classes: number of classes (6 for KTH).
        label_smoothing: of the cross-entropy.
        eval_batch: clips per forward pass in evaluation.
        The rest are :class:`ClipClassifier`'s arguments.
    """

    task = "classification"

    def __init__(self, num_classes: int = 6, in_channels: int = 1, hidden_channels: Sequence[int] = (32,),
                 kernel_size: int = 3, downsample: int = 4, base_channels: int = 8, cell: str = "ConvLSTM",
                 cell_args: dict | None = None, dropout: float = 0.0, motion: bool = True,
                 label_smoothing: float = 0.0, eval_batch: int = 32):
        super().__init__()
        self.num_classes, self.label_smoothing = int(num_classes), float(label_smoothing)
        self.eval_batch = int(eval_batch)
        self.net = ClipClassifier(num_classes, in_channels, hidden_channels, kernel_size, downsample, base_channels,
                                  cell, cell_args, dropout, motion)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        if "target" not in batch:
            raise KeyError("Classifier needs samples with a 'target' class index (a dataset such as 'kth')")
        logits = self.net(batch["frames"])
        return {"loss_ce": F.cross_entropy(logits, batch["target"].long(), label_smoothing=self.label_smoothing)}

    def predict_stream(self, frames: torch.Tensor, state=None):
        raise NotImplementedError("Classifier names a clip's class; it predicts no frames to score as anomalies")

    @torch.no_grad()
    def predict_clips(self, dataset, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class probabilities ``(N, K)``, targets ``(N,)`` and video indices ``(N,)`` of every clip."""
        was_training = self.training
        self.eval()
        probs, targets, videos = [], [], []
        try:
            for start in range(0, len(dataset), self.eval_batch):
                samples = [dataset[i] for i in range(start, min(start + self.eval_batch, len(dataset)))]
                if "target" not in samples[0]:
                    raise KeyError(f"Classifier: samples of {type(dataset).__name__} carry no 'target' class index")
                clips = torch.stack([s["frames"] for s in samples]).to(device)
                probs.append(F.softmax(self.net(clips).float(), dim=1).cpu().numpy())
                targets += [int(s["target"]) for s in samples]
                videos += [int(s["video"]) for s in samples]
        finally:
            self.train(was_training)
        return np.concatenate(probs), np.asarray(targets), np.asarray(videos)
