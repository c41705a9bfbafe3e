"""Evaluation: frame-level metrics (registered evaluators), score exports, plots and the HTML report."""
from .export import load_scores, write_metrics, write_score_files, write_scores
from .metrics import (FixedThresholdEvaluator, FrameLevelEvaluator, PerGroupEvaluator, eer, frame_metrics,
                      group_metrics, threshold_metrics)

__all__ = ["frame_metrics", "threshold_metrics", "group_metrics", "eer", "FrameLevelEvaluator",
           "FixedThresholdEvaluator", "PerGroupEvaluator", "load_scores", "write_scores", "write_score_files",
           "write_metrics"]
