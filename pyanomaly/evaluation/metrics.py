"""Frame-level metrics of anomaly scores against ground truth.

* ``auc_micro``: ROC AUC over all scored test frames of all videos concatenated (the number
  most papers report as "frame-level AUC").
* ``auc_macro``: mean of the per-video AUCs over the videos whose frames hold both classes;
  single-class videos have no AUC, are left out and counted (``videos_single_class``).
* ``eer``: equal error rate of the micro ROC (where false-positive rate = miss rate), with
  the score threshold at that point (``eer_threshold``).
* ``ap``: average precision (area under precision-recall, anomalous = positive), micro.

Frames without a score (NaN) or without a label are left out and counted.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from pyanomaly.registry import EVALUATORS


def _pairs(scores: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if labels is None:
        return np.empty(0), np.empty(0, dtype=np.uint8)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    ok = np.isfinite(scores)
    return scores[ok], labels[ok].astype(np.uint8)


def eer(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its score threshold, interpolated where miss rate meets FPR."""
    fpr, tpr, thr = roc_curve(labels, scores)
    thr = np.where(np.isfinite(thr), thr, np.max(scores))  # sklearn's first threshold is +inf
    d = (1.0 - tpr) - fpr  # decreasing from 1 to -1
    i = int(np.argmax(d <= 0))
    if i == 0 or d[i] == d[i - 1]:
        return float(fpr[i]), float(thr[i])
    a = d[i - 1] / (d[i - 1] - d[i])
    rate = fpr[i - 1] + a * (fpr[i] - fpr[i - 1])
    return float(rate), float(thr[i - 1] + a * (thr[i] - thr[i - 1]))


def frame_metrics(names: Sequence[str], scores: Sequence[np.ndarray],
                  labels: Sequence[np.ndarray | None]) -> dict:
    """All frame-level metrics of a set of videos (see the module docstring for each key)."""
    per_video = {}
    all_s, all_l = [], []
    unlabelled = unscored = single = 0
    for name, s, l in zip(names, scores, labels):
        if l is None:
            unlabelled += len(s)
            continue
        unscored += int((~np.isfinite(np.asarray(s, dtype=np.float64))).sum())
        vs, vl = _pairs(s, l)
        all_s.append(vs)
        all_l.append(vl)
        if vl.size and 0 < vl.sum() < vl.size:
            per_video[name] = float(roc_auc_score(vl, vs))
        else:
            per_video[name] = None
            single += 1
    out = {"auc_micro": None, "auc_macro": None, "eer": None, "eer_threshold": None, "ap": None}
    if all_s:
        s, l = np.concatenate(all_s), np.concatenate(all_l)
        if l.size and 0 < l.sum() < l.size:
            out["auc_micro"] = float(roc_auc_score(l, s))
            out["eer"], out["eer_threshold"] = eer(l, s)
            out["ap"] = float(average_precision_score(l, s))
        out["frames_evaluated"] = int(l.size)
        out["frames_anomalous"] = int(l.sum())
    aucs = [a for a in per_video.values() if a is not None]
    out["auc_macro"] = float(np.mean(aucs)) if aucs else None
    out["videos"] = len(names)
    out["videos_single_class"] = single
    out["frames_unscored"] = unscored
    out["frames_unlabelled"] = unlabelled
    out["per_video"] = per_video
    return out


@EVALUATORS.register_module(name="FrameLevel")
class FrameLevelEvaluator:
    """Micro/macro frame AUC, EER and AP (see :func:`frame_metrics`)."""

    def __call__(self, names, scores, labels) -> dict:
        return frame_metrics(names, scores, labels)
