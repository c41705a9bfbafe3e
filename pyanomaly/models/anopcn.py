"""AnoPCN: a predictive coding module, refined by an error refinement module.

Ye et al., "AnoPCN: Video Anomaly Detection via Deep Predictive Coding Network", ACM MM
2019. The PCM (:class:`~pyanomaly.networks.meta.pcn.PredictiveCodingModule`) predicts each
frame from the past while reading its own prediction errors; the ERM
(:class:`~pyanomaly.networks.meta.pcn.ErrorRefinementModule`) refines that coarse prediction,
given as context the previous frame and the previous prediction error (both known before
frame ``t``). Trained end to end on normal video with an intensity loss on the coarse
prediction and intensity + gradient losses on the refined one; the refined frame is the
prediction that is scored. A video is predicted as one stream, the PCM state carried
across chunks; the first ``warmup`` frames of a video have no valid prediction.

Example:
    >>> model = AnoPCN(pcm=dict(hidden_channels=(32,)), erm=dict(base_channels=16))
    >>> losses = model({"frames": torch.rand(2, 8, 1, 64, 64)})
    >>> pred, valid, state = model.predict_stream(torch.rand(30, 1, 64, 64))
"""
from __future__ import annotations

import torch

from pyanomaly.registry import MODELS, NETWORKS, build

from .base import VADModel
from .losses import GradientLoss, IntensityLoss


@MODELS.register_module()
class AnoPCN(VADModel):
    """Args:
        pcm: keyword arguments of the PCM (``type`` defaults to ``PredictiveCodingModule``).
        erm: keyword arguments of the ERM (``type`` defaults to ``ErrorRefinementModule``;
            ``in_channels`` and ``context_channels`` are filled in to match the PCM).
        pcm_weight: weight of the coarse prediction's intensity (MSE) loss.
        erm_intensity_weight: weight of the refined prediction's intensity (MSE) loss.
        erm_gradient_weight: weight of the refined prediction's gradient loss.
        warmup: frames at the start of a clip / video without a scored prediction (>= 1;
            the motion input needs two frames, so 2 by default).
        erm_context: give the ERM the previous frame and the previous prediction error.
        batch_frames: frames refined per ERM pass when predicting a stream.
    """

    inference_args = ("batch_frames",)

    def __init__(self, pcm: dict | None = None, erm: dict | None = None, pcm_weight: float = 1.0,
                 erm_intensity_weight: float = 1.0, erm_gradient_weight: float = 1.0, warmup: int = 2,
                 erm_context: bool = True, batch_frames: int = 16):
        super().__init__()
        self.pcm = build(NETWORKS, {"type": "PredictiveCodingModule", **(pcm or {})})
        c = self.pcm.in_channels
        self.erm_context = bool(erm_context)
        self.erm = build(NETWORKS, {"type": "ErrorRefinementModule", **(erm or {})},
                         in_channels=c, context_channels=2 * c if self.erm_context else 0)
        if int(warmup) < 1:
            raise ValueError(f"AnoPCN: warmup must be >= 1 (frame 0 has no history), got {warmup}")
        self.warmup = int(warmup)
        self.weights = {"pcm": float(pcm_weight), "erm_intensity": float(erm_intensity_weight),
                        "erm_gradient": float(erm_gradient_weight)}
        self.intensity = IntensityLoss()
        self.gradient = GradientLoss()
        self.batch_frames = int(batch_frames)

    def _context(self, prev_frames: torch.Tensor, prev_preds: torch.Tensor) -> torch.Tensor | None:
        """``(N, C, H, W)`` previous frames and their coarse predictions -> ERM context."""
        if not self.erm_context:
            return None
        return torch.cat([prev_frames, prev_frames - prev_preds], dim=1)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """Losses for clips ``batch["frames"]`` ``(B, T, C, H, W)``, ``T > warmup``."""
        frames = batch["frames"]
        w = self.warmup
        if frames.shape[1] <= w:
            raise ValueError(f"AnoPCN needs clips longer than warmup={w} frames, got {frames.shape[1]}")
        preds, _ = self.pcm(frames)
        target = frames[:, w:].flatten(0, 1)
        coarse = preds[:, w:].flatten(0, 1)
        context = self._context(frames[:, w - 1:-1].flatten(0, 1), preds[:, w - 1:-1].flatten(0, 1))
        refined = self.erm(coarse, context)
        return {
            "loss_pcm": self.weights["pcm"] * self.intensity(coarse, target),
            "loss_erm_intensity": self.weights["erm_intensity"] * self.intensity(refined, target),
            "loss_erm_gradient": self.weights["erm_gradient"] * self.gradient(refined, target),
        }

    @torch.no_grad()
    def predict_stream(self, frames: torch.Tensor, state: dict | None = None):
        """Refined predictions of ``frames`` ``(N, C, H, W)`` (one video), from earlier frames only.

        ``state`` (None at the start of a video) holds the PCM state, the number of frames
        already seen and the last frame and coarse prediction of the previous chunk.
        Returns ``(prediction (N, C, H, W), valid (N,), state)``.
        """
        if state is None:
            state = {"pcm": None, "seen": 0, "frame": None, "coarse": None}
        if frames.shape[0] == 0:
            return frames.clone(), torch.zeros(0, dtype=torch.bool), state
        preds, pcm_state = self.pcm(frames.unsqueeze(0), state["pcm"])
        coarse = preds[0]
        if state["frame"] is None:  # the first frame of a video: no previous frame, never valid
            prev_frames = torch.cat([torch.zeros_like(frames[:1]), frames[:-1]])
            prev_preds = torch.cat([torch.zeros_like(coarse[:1]), coarse[:-1]])
        else:
            prev_frames = torch.cat([state["frame"], frames[:-1]])
            prev_preds = torch.cat([state["coarse"], coarse[:-1]])
        context = self._context(prev_frames, prev_preds)
        refined = torch.empty_like(coarse)
        for s in range(0, frames.shape[0], self.batch_frames):
            e = s + self.batch_frames
            refined[s:e] = self.erm(coarse[s:e], None if context is None else context[s:e])
        seen = state["seen"]
        valid = torch.arange(seen, seen + frames.shape[0]) >= self.warmup
        new_state = {"pcm": pcm_state, "seen": seen + frames.shape[0],
                     "frame": frames[-1:].clone(), "coarse": coarse[-1:].clone()}
        return refined, valid, new_state
