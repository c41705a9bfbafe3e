"""Pictures a person can check: per-video score curves and the ROC curve (PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402



def _intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[0], (labels > 0).astype(np.int8), [0]])
    d = np.diff(padded)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


def plot_video(path: str | Path, name: str, scores: np.ndarray, labels: np.ndarray | None,
               threshold: float | None = None, auc: float | None = None) -> None:
    """Score curve of one video with ground-truth anomalous intervals shaded."""
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    if labels is not None:
        for a, b in _intervals(labels):
            ax.axvspan(a - 0.5, b + 0.5, color="tab:red", alpha=0.2, lw=0,
                       label="ground truth: anomalous" if a == _intervals(labels)[0][0] else None)
    ax.plot(np.arange(len(scores)), scores, color="tab:blue", lw=1.2, label="anomaly score")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"threshold (EER) {threshold:.2f}")
    title = f"video {name}" + (f" — AUC {auc:.3f}" if auc is not None else "")
    ax.set(title=title, xlabel="frame", ylabel="score", xlim=(0, max(len(scores) - 1, 1)))
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_roc(path: str | Path, scores: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
             auc: float | None) -> None:
    """Micro ROC curve (all scored, labelled frames concatenated)."""
    s, l = [], []
    for sc, lb in zip(scores, labels):
        if lb is None:
            continue
        ok = np.isfinite(sc)
        s.append(sc[ok])
        l.append(lb[ok])
    if not s:
        return
    s, l = np.concatenate(s), np.concatenate(l)
    if not (0 < l.sum() < l.size):
        return
    fpr, tpr, _ = roc_curve(l, s)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot(fpr, tpr, lw=1.5, label=f"micro AUC = {auc:.4f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Frame-level ROC (micro)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
