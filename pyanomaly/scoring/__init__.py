"""Scoring: prediction error -> per-frame raw error -> normalised, smoothed anomaly score.

Parts: :mod:`.psnr`, :mod:`.area` (raw errors of a predicted frame) and :mod:`.cells` (of an
anomaly map), :mod:`.frame_error` (a method's own per-frame error), registered in ``SCORERS``, :mod:`.normalize` and
:mod:`.causal` (normalisers, registered in :data:`NORMALIZERS`), :mod:`.smoothing` and
:mod:`.pipeline` (the whole protocol of one video, offline or as a stream), :mod:`.video`
(the one loop: method + scorer + pipeline), :mod:`.alarms` (alarm segments of a stream),
:mod:`.build` (the parts from ``SCORE.*`` and ``STREAM.*``).
"""
from __future__ import annotations

import numpy as np

from .alarms import AlarmTracker, alarm_segments
from .area import ErrorArea
from .cells import CellMax, CellTop, cell_grid, cell_means, cell_size
from .causal import CausalNormalizer
from .frame_error import FrameError
from .normalize import NORMALIZERS, MinMaxNormalizer, NoNormalizer, Normalizer, minmax, orient
from .pipeline import BufferedScores, ScorePipeline, ScoreStream, fill_nearest
from .psnr import MSE, PSNR, error_map, frame_or_worst_patch, patch_mse
from .smoothing import CausalGaussianStream, gaussian_smooth
from .video import Chunk, VideoResult, VideoRun, VideoScorer, has_error_map, inference_precision

__all__ = ["PSNR", "MSE", "ErrorArea", "CellMax", "CellTop", "FrameError", "cell_means", "cell_grid", "cell_size",
           "patch_mse", "frame_or_worst_patch", "error_map", "NORMALIZERS", "Normalizer",
           "MinMaxNormalizer", "NoNormalizer", "CausalNormalizer", "minmax", "orient", "gaussian_smooth",
           "CausalGaussianStream", "ScorePipeline", "ScoreStream", "BufferedScores", "VideoScorer", "VideoRun", "Chunk", "VideoResult",
           "has_error_map", "inference_precision", "fill_nearest", "scores_from_errors", "AlarmTracker",
           "alarm_segments"]


def scores_from_errors(error: np.ndarray, valid: np.ndarray, higher_is_anomalous: bool,
                       normalize: str = "minmax", sigma: float = 0.0, missing: str = "exclude",
                       smooth_mode: str = "centred") -> np.ndarray:
    """Anomaly scores ``(N,)`` of one video from its raw errors ``(N,)``.

    ``normalize`` names a registered normaliser built with its default arguments (build a
    :class:`ScorePipeline` to pass arguments). Frames with ``valid == False`` get NaN with
    ``missing="exclude"`` or the score of the nearest scored frame with ``missing="fill"``.
    """
    from pyanomaly.registry import build
    pipe = ScorePipeline(build(NORMALIZERS, dict(type=normalize)), higher_is_anomalous, sigma, smooth_mode, missing)
    return pipe(error, valid)
