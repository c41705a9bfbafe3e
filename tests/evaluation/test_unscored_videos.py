"""A video of which no frame has a score is named, in metrics.json and once in the log."""
import logging

import numpy as np

from pyanomaly.config import get_cfg
from pyanomaly.evaluation.build import build_task


def test_a_video_without_any_score_is_named_once(tmp_path, caplog):
    cfg = get_cfg()
    cfg.DATASET.CLIP_LENGTH = 5
    cfg.LOG.PROGRESS = False
    task = build_task(cfg)
    lab = np.zeros(12, np.uint8)
    lab[6:9] = 1
    e = 30.0 - 5.0 * lab  # PSNR: lower where anomalous
    e[:4] = np.nan  # the first 4 frames have no prediction
    names = ["long", "short", "dark"]
    errors = [e, np.full(3, np.nan), np.full(7, np.nan)]  # 'short' is shorter than a clip; 'dark' never scored
    labels = [lab, np.zeros(3, np.uint8), np.ones(7, np.uint8)]
    with caplog.at_level(logging.WARNING, logger="pyanomaly"):
        metrics = task.evaluate_errors(names, errors, labels, None)
        again = task.evaluate_errors(names, errors, labels, None)  # a later evaluation of the same run
    assert metrics["videos_without_score"] == again["videos_without_score"] == ["short", "dark"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "2 video(s) have no frame with a score" in warnings[0]
    assert "'short' (3 frames), 'dark' (7 frames)" in warnings[0] and "needs 5 frames" in warnings[0]
    assert metrics["frames_evaluated"] == 8 and metrics["auc_micro"] == 1.0

    everything = task.evaluate_errors(["long"], [e], [lab], None)
    assert "videos_without_score" not in everything
