"""A generic next-frame predictor around any network ``(B, T-1, C, H, W) -> (B, C, H, W)``.

The network sees the ``clip_length - 1`` frames before frame ``t`` and predicts frame ``t``
(the FFP convention, Liu et al. 2018: 4 observed frames predict the 5th). The loss is a
weighted sum of registered losses; at test time frame ``t`` is scored from frames
``t-T+1 .. t-1``, so the first ``T-1`` frames of a video have no prediction.

With ``residual`` the network predicts the change from the last observed frame instead of
the frame: an output ``y`` in [0, 1] gives ``clamp(last + 2 y - 1, 0, 1)``, so ``y = 0.5``
everywhere is "nothing moves" (the copy-last-frame baseline) and training only has to learn
the motion of normal scenes.

Example:
    >>> model = FramePredictor(network=dict(type="MyNet"), clip_length=5)
    >>> losses = model({"frames": torch.rand(2, 5, 1, 64, 64)})
"""
from __future__ import annotations

import torch

from pyanomaly.registry import LOSSES, MODELS, NETWORKS, build

from .base import VADModel


@MODELS.register_module()
class FramePredictor(VADModel):
    """Args:
        network: keyword arguments with ``type`` of a network mapping the history
            ``(B, T-1, C, H, W)`` to the next frame ``(B, C, H, W)``.
        clip_length: ``T``, frames per clip (history + the predicted frame).
        losses: ``{name: weight}`` of registered losses (``IntensityLoss``, ``GradientLoss``, ...).
        batch_windows: test-time windows predicted per forward pass.
        residual: the network's output in [0, 1] is a change from the last observed frame
            (``0.5`` = none), not the frame itself (see the module docstring).
    """

    inference_args = ("batch_windows",)

    def __init__(self, network: dict, clip_length: int = 5, losses: dict | None = None,
                 batch_windows: int = 16, residual: bool = False):
        super().__init__()
        self.net = build(NETWORKS, network)
        self.clip_length = int(clip_length)
        losses = losses if losses is not None else {"IntensityLoss": 1.0}
        self.loss_weights = {name: float(w) for name, w in losses.items()}
        self.losses = torch.nn.ModuleDict({name: build(LOSSES, {"type": name}) for name in self.loss_weights})
        self.batch_windows = batch_windows
        self.residual = bool(residual)

    def predict(self, history: torch.Tensor) -> torch.Tensor:
        """The frame after ``history`` ``(B, T-1, C, H, W)``: ``(B, C, H, W)`` in [0, 1]."""
        y = self.net(history)
        if not self.residual:
            return y
        return (history[:, -1].to(y.dtype) + (2 * y - 1)).clamp(0, 1)  # the change first: exact when none

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        frames = batch["frames"]
        prediction = self.predict(frames[:, :-1])
        target = frames[:, -1]
        return {f"loss_{name}": w * self.losses[name](prediction, target) for name, w in self.loss_weights.items()}

    @torch.no_grad()
    def predict_stream(self, frames: torch.Tensor, state=None):
        return self.stream_windows(frames, state, self.clip_length - 1, self.predict, self.batch_windows)
