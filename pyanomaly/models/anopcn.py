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
from .stream_batch import group_streams, stack_states, unstack_states
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
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        """Refined predictions of each video's frames ``(n_i, C, H, W)``, from earlier frames only.

        A video's state (None at its start) holds the PCM state, the number of frames already
        seen and the last frame and coarse prediction of the previous chunk. Videos whose
        chunks have the same length and which are all starting, or all running, share one
        pass through the PCM and the ERM. Returns lists of ``prediction (n_i, C, H, W)``,
        ``valid (n_i,)`` and the states.
        """
        predictions, valids, new_states = [None] * len(frames), [None] * len(frames), [None] * len(frames)
        for idx in group_streams(frames, states, lambda f, s: (f.shape[0], s is None)):
            x = torch.stack([frames[i] for i in idx])  # (B, n, C, H, W): one sequence per video
            b, n = x.shape[:2]
            fresh = states[idx[0]] is None
            seen = [0 if fresh else states[i]["seen"] for i in idx]
            if n == 0:
                for i in idx:
                    predictions[i], valids[i] = frames[i].clone(), torch.zeros(0, dtype=torch.bool)
                    new_states[i] = states[i]
                continue
            past = None if fresh else stack_states([{k: states[i][k] for k in ("pcm", "frame", "coarse")} for i in idx])
            coarse, pcm_state = self.pcm(x, None if past is None else past["pcm"])  # (B, n, C, H, W)
            if past is None:  # the first frame of a video: no previous frame, never valid
                prev_frames = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
                prev_preds = torch.cat([torch.zeros_like(coarse[:, :1]), coarse[:, :-1]], dim=1)
            else:
                prev_frames = torch.cat([past["frame"].unsqueeze(1), x[:, :-1]], dim=1)
                prev_preds = torch.cat([past["coarse"].unsqueeze(1), coarse[:, :-1]], dim=1)
            flat = coarse.flatten(0, 1)
            context = self._context(prev_frames.flatten(0, 1), prev_preds.flatten(0, 1))
            refined = torch.empty_like(flat)
            for s in range(0, flat.shape[0], self.batch_frames):
                e = s + self.batch_frames
                refined[s:e] = self.erm(flat[s:e], None if context is None else context[s:e])
            refined = refined.view_as(coarse)
            carried = unstack_states({"pcm": pcm_state, "frame": x[:, -1].clone(), "coarse": coarse[:, -1].clone()}, b)
            for j, i in enumerate(idx):
                predictions[i] = refined[j]
                valids[i] = torch.arange(seen[j], seen[j] + n) >= self.warmup
                new_states[i] = {**carried[j], "seen": seen[j] + n}
        return predictions, valids, new_states
