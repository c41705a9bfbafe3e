"""Evaluation: frame-level metrics, score exports and plots."""
from .export import load_scores, write_metrics, write_scores
from .metrics import FrameLevelEvaluator, eer, frame_metrics

__all__ = ["frame_metrics", "eer", "FrameLevelEvaluator", "load_scores", "write_scores", "write_metrics"]
