"""The per-frame error a method gives itself, read as it is.

A method that combines cues (:class:`~pyanomaly.models.fusion.Fusion`) already turns each
frame into one error: its ``predict_stream`` gives ``(N,)`` values (the method's ``output`` is
``"frame_error"``), higher = more anomalous. This scorer passes them on unchanged, so they go
through the one scoring loop and protocol as any raw error. There is nothing per pixel left
to show: this scorer has no ``error_map``, and a run asking for anomaly maps with it is refused.

Example:
    >>> FrameError()(fused, frames)      # (N,), frames unused -> (N,)
"""
from __future__ import annotations

import torch

from pyanomaly.registry import SCORERS


@SCORERS.register_module(name="FRAME_ERROR")
class FrameError:
    """The method's own per-frame error ``(N,)`` -> ``(N,)`` as float32; higher = more anomalous.

    Args:
        patch: unused (the method has reduced each frame already).
        max_val: unused.
    """

    higher_is_anomalous = True
    reads = "frame_error"

    def __init__(self, patch: int = 0, max_val: float = 1.0):
        pass

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        if prediction.dim() != 1:
            raise ValueError(f"FRAME_ERROR reads one error per frame (N,), got {tuple(prediction.shape)}")
        return prediction.float()
