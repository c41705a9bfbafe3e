"""Frame-level metrics of anomaly scores against ground truth, and the registered evaluators.

* ``auc_micro``: ROC AUC over all scored test frames of all videos concatenated (the number
  most papers report as "frame-level AUC").
* ``auc_macro``: mean of the per-video AUCs over the videos whose frames hold both classes.
  Rule for single-class videos (all normal or all anomalous): they have no AUC, are left out
  of the mean and counted (``videos_single_class``; ``videos_in_macro`` are the others).
* ``eer``: equal error rate of the micro ROC (where false-positive rate = miss rate), with
  the score threshold at that point (``eer_threshold``).
* ``ap``: average precision (area under precision-recall, anomalous = positive), micro.
* ``at_threshold`` (``FixedThreshold``): precision, recall and F1 of "score > threshold"
  at thresholds fixed in the config (``EVAL.THRESHOLDS``), never chosen on test labels.
* ``per_group`` (``PerGroup``): the micro/macro AUC, EER and AP of each group of videos
  (ShanghaiTech scenes) when the dataset has groups.

Frames without a score (NaN) or without a label (``None`` video labels, or -1) are left
out and counted. An evaluator is ``__call__(names, scores, labels, groups=None) -> dict``
with per-video ``scores`` ``(N_i,)`` and ``labels`` ``(N_i,)`` (or None).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from pyanomaly.registry import EVALUATORS


def _pairs(scores: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Scored and labelled frames of one video: (scores, labels 0/1)."""
    if labels is None:
        return np.empty(0), np.empty(0, dtype=np.uint8)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    ok = np.isfinite(scores) & (labels >= 0)
    return scores[ok], labels[ok].astype(np.uint8)


def _both_classes(labels: np.ndarray) -> bool:
    return labels.size > 0 and 0 < int(labels.sum()) < labels.size


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
        s = np.asarray(s, dtype=np.float64)
        if l is None:
            unlabelled += len(s)
            continue
        known = np.asarray(l) >= 0
        unlabelled += int((~known).sum())
        unscored += int((~np.isfinite(s) & known).sum())
        vs, vl = _pairs(s, l)
        all_s.append(vs)
        all_l.append(vl)
        if _both_classes(vl):
            per_video[name] = float(roc_auc_score(vl, vs))
        else:
            per_video[name] = None
            single += 1
    out = {"auc_micro": None, "auc_macro": None, "eer": None, "eer_threshold": None, "ap": None}
    if all_s:
        s, l = np.concatenate(all_s), np.concatenate(all_l)
        if _both_classes(l):
            out["auc_micro"] = float(roc_auc_score(l, s))
            out["eer"], out["eer_threshold"] = eer(l, s)
            out["ap"] = float(average_precision_score(l, s))
        out["frames_evaluated"] = int(l.size)
        out["frames_anomalous"] = int(l.sum())
    aucs = [a for a in per_video.values() if a is not None]
    out["auc_macro"] = float(np.mean(aucs)) if aucs else None
    out["videos"] = len(names)
    out["videos_in_macro"] = len(aucs)
    out["videos_single_class"] = single
    out["frames_unscored"] = unscored
    out["frames_unlabelled"] = unlabelled
    out["per_video"] = per_video
    return out


def threshold_metrics(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                      thresholds: Sequence[float]) -> list[dict]:
    """Precision, recall and F1 of ``score > t`` for each fixed ``t`` (micro; 0 where undefined)."""
    pairs = [_pairs(s, l) for s, l in zip(scores, labels)]
    s = np.concatenate([p[0] for p in pairs]) if pairs else np.empty(0)
    l = np.concatenate([p[1] for p in pairs]) if pairs else np.empty(0, dtype=np.uint8)
    out = []
    for t in thresholds:
        pred = s > float(t)
        tp = int((pred & (l == 1)).sum())
        fp = int((pred & (l == 0)).sum())
        fn = int((~pred & (l == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append({"threshold": float(t), "precision": precision, "recall": recall, "f1": f1,
                    "tp": tp, "fp": fp, "fn": fn, "tn": int(l.size) - tp - fp - fn})
    return out


def group_metrics(names: Sequence[str], scores: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                  groups: Sequence[str]) -> dict[str, dict]:
    """:func:`frame_metrics` (without the per-video table) of each group of videos, by group name."""
    out = {}
    for g in sorted(set(groups)):
        idx = [i for i, gi in enumerate(groups) if gi == g]
        m = frame_metrics([names[i] for i in idx], [scores[i] for i in idx], [labels[i] for i in idx])
        m.pop("per_video")
        out[g] = m
    return out


@EVALUATORS.register_module(name="FrameLevel")
class FrameLevelEvaluator:
    """Micro/macro frame AUC, EER and AP, and the per-video AUC table (see :func:`frame_metrics`)."""

    #: the scalar metrics it adds (what ``TRAIN.BEST_METRIC`` may name)
    metric_names = ("auc_micro", "auc_macro", "eer", "eer_threshold", "ap")

    def __call__(self, names, scores, labels, groups=None) -> dict:
        return frame_metrics(names, scores, labels)


@EVALUATORS.register_module(name="FixedThreshold")
class FixedThresholdEvaluator:
    """``at_threshold``: precision/recall/F1 at each of ``thresholds`` (``EVAL.THRESHOLDS``); none: nothing.

    Args:
        thresholds: score thresholds, fixed before looking at the test set.
    """

    metric_names = ()  # a table, no scalar

    def __init__(self, thresholds: Sequence[float] = ()):
        bad = [t for t in thresholds if isinstance(t, bool) or not isinstance(t, (int, float))]
        if bad:
            raise ValueError(f"EVAL.THRESHOLDS must be a list of numbers, got {list(thresholds)!r}")
        self.thresholds = [float(t) for t in thresholds]

    def __call__(self, names, scores, labels, groups=None) -> dict:
        if not self.thresholds:
            return {}
        return {"at_threshold": threshold_metrics(scores, labels, self.thresholds)}


@EVALUATORS.register_module(name="PerGroup")
class PerGroupEvaluator:
    """``per_group``: metrics of each group (e.g. ShanghaiTech scene) when ``groups`` is given."""

    metric_names = ()  # a table per group, no scalar

    def __call__(self, names, scores, labels, groups=None) -> dict:
        if groups is None:
            return {}
        return {"per_group": group_metrics(names, scores, labels, groups)}


def format_metrics(metrics: dict) -> str:
    """One line that always says which AUC is which (other tasks: their scalar metrics)."""
    def f(k):
        v = metrics.get(k)
        return "n/a" if v is None else f"{v:.4f}"
    if "protocol" not in metrics:
        return " | ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    line = (f"frame AUC micro (all frames) {f('auc_micro')} | AUC macro (mean per video) {f('auc_macro')} | "
            f"EER {f('eer')} | AP {f('ap')} | {metrics.get('frames_evaluated', 0)} frames, "
            f"{metrics['protocol']['frames_without_score']} without score")
    if metrics.get("auc_by_kind"):  # frame AUC micro of the normal frames and each kind's
        line += " | by kind (micro): " + " | ".join(
            f"{k} {'n/a' if v['auc_micro'] is None else format(v['auc_micro'], '.4f')}"
            for k, v in metrics["auc_by_kind"].items())
    rows = metrics.get("baselines") or {}
    if rows:  # the same protocol, no learning: what the figures above must beat
        line += " | baselines (micro/macro): " + ", ".join(
            f"{name} {'n/a' if b.get('auc_micro') is None else format(b['auc_micro'], '.4f')}/"
            f"{'n/a' if b.get('auc_macro') is None else format(b['auc_macro'], '.4f')}" for name, b in rows.items())
    return line
