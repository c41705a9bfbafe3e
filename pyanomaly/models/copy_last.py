"""Copying the last frame: the prediction of frame ``t`` is frame ``t-1`` ("nothing moves").

The floor of next-frame prediction: a learned predictor earns its place only by predicting
the scene's motion better than this. Scored with any frame error (PSNR, AREA, ...); the
first frame of a video has no prediction.

Example:
    >>> pred, valid, state = CopyLast().predict_stream(frames)   # (N, C, H, W), (N,): valid[0] False
"""
from __future__ import annotations

import torch

from pyanomaly.registry import MODELS

from .baseline import Baseline


@MODELS.register_module()
class CopyLast(Baseline):
    """Predicts every frame by the one before it; no weights, nothing to fit."""

    @torch.no_grad()
    def predict_streams(self, frames: list[torch.Tensor], states: list):
        return self.stream_windows(frames, states, 1, lambda windows: windows[:, -1],
                                   batch=max(sum(f.shape[0] for f in frames), 1))
