"""Pictures a person can check: per-video score curves and the micro ROC curve (PNG).

``path`` arguments take a file path or a binary file object (``io.BytesIO`` for the HTML
report, which embeds the PNG bytes).
"""
from __future__ import annotations

from pathlib import Path
from typing import IO, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def intervals(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of true entries of ``mask`` ``(N,)`` as ``(start, end)``, 0-based inclusive."""
    padded = np.concatenate([[0], (np.asarray(mask) > 0).astype(np.int8), [0]])
    d = np.diff(padded)
    return [(int(a), int(b)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1)]


_intervals = intervals  # the name other modules used before


def plot_video(path: str | Path | IO[bytes], name: str, scores: np.ndarray, labels: np.ndarray | None,
               threshold: float | None = None, auc: float | None = None, threshold_label: str = "threshold",
               alarms: Sequence[tuple[int, int]] = ()) -> None:
    """Score curve of one video: ground-truth anomalous intervals shaded red, ``alarms`` shaded orange,
    ``threshold`` dashed, frames without a score marked along the bottom."""
    scores = np.asarray(scores, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(9, 2.8), dpi=100)
    if labels is not None:
        for j, (a, b) in enumerate(intervals(np.asarray(labels) == 1)):
            ax.axvspan(a - 0.5, b + 0.5, color="tab:red", alpha=0.18, lw=0,
                       label="ground truth: anomalous" if j == 0 else None)
    for j, (a, b) in enumerate(alarms):
        ax.axvspan(a - 0.5, b + 0.5, color="tab:orange", alpha=0.25, lw=0, label="alarm" if j == 0 else None)
    ax.plot(np.arange(scores.size), scores, color="tab:blue", lw=1.2, label="anomaly score")
    finite = scores[np.isfinite(scores)]
    missing = np.flatnonzero(~np.isfinite(scores))
    if missing.size and finite.size:
        ax.plot(missing, np.full(missing.size, finite.min()), "|", color="grey", ms=6,
                label=f"no score ({missing.size} frame{'s' if missing.size != 1 else ''})")
    if threshold is not None and np.isfinite(threshold):
        ax.axhline(threshold, color="k", ls="--", lw=0.9, label=f"{threshold_label} {threshold:.3g}")
    title = f"video {name}" + (f" — AUC {auc:.3f}" if auc is not None else "")
    ax.set_title(title, loc="left", fontsize=10)
    ax.set(xlabel="frame (0-based)", ylabel="score", xlim=(-0.5, max(scores.size - 0.5, 1)))
    ax.grid(alpha=0.25, lw=0.5)
    # the legend sits above the axes so it never hides the curve
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_roc(path: str | Path | IO[bytes], scores: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
             auc: float | None) -> bool:
    """Micro ROC curve (all scored, labelled frames concatenated); False (nothing written) without both classes."""
    s, l = [], []
    for sc, lb in zip(scores, labels):
        if lb is None:
            continue
        sc, lb = np.asarray(sc, dtype=np.float64), np.asarray(lb)
        ok = np.isfinite(sc) & (lb >= 0)
        s.append(sc[ok])
        l.append(lb[ok])
    if not s:
        return False
    s, l = np.concatenate(s), np.concatenate(l)
    if not (0 < l.sum() < l.size):
        return False
    fpr, tpr, _ = roc_curve(l, s)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot(fpr, tpr, lw=1.5, label=f"micro AUC = {auc:.4f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Frame-level ROC (micro)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True
