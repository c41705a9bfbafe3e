"""The classification task: how well a method names the class (action) of held-out clips.

Clip accuracy, video accuracy (a video's class is the argmax of its clips' mean
probability), per-class accuracy and the clip confusion matrix (rows: true class, columns:
predicted). Writes ``metrics.json`` and ``plots/confusion_matrix.png``.

A method of this task has ``predict_clips(dataset, device) -> (probabilities (N, K), targets
(N,), video indices (N,))`` and ``num_classes`` (:class:`~pyanomaly.models.classifier.Classifier`).

Example:
    >>> metrics = Classification().evaluate(model, test_set, torch.device("cpu"), Path("outputs/run"))
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pyanomaly.registry import TASKS

from ..export import write_metrics


@TASKS.register_module(name="classification")
class Classification:
    """Accuracy, per-class accuracy and confusion matrix (see the module docstring)."""

    #: the scalar metrics ``evaluate`` produces (what ``TRAIN.BEST_METRIC`` may name)
    metric_names = ("accuracy", "video_accuracy")

    def evaluate(self, model, dataset, device: torch.device, out_dir: str | Path | None = None) -> dict:
        """Metrics over every clip of ``dataset``; with ``out_dir`` also the files."""
        probs, targets, videos = model.predict_clips(dataset, device)
        k = model.num_classes
        if targets.size and (targets.min() < 0 or targets.max() >= k):
            raise ValueError(f"Classifier has {k} classes but the dataset has targets up to {targets.max()}")
        pred = probs.argmax(1)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (targets, pred), 1)
        vids = np.unique(videos)
        video_hits = [probs[videos == v].mean(0).argmax() == targets[videos == v][0] for v in vids]
        names = list(getattr(dataset, "classes", [str(i) for i in range(k)]))[:k]
        per_class = {n: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None
                     for i, n in enumerate(names)}
        metrics = {
            "task": "classification",
            "accuracy": float((pred == targets).mean()) if targets.size else 0.0,
            "video_accuracy": float(np.mean(video_hits)) if video_hits else 0.0,
            "clips": int(targets.size), "videos": int(vids.size),
            "classes": names,
            "per_class_accuracy": per_class,
            "confusion_matrix": confusion.tolist(),
            "units": "accuracy: fraction of clips classified right; video_accuracy: of videos, by their mean clip "
                     "probability; confusion_matrix[true][predicted] counts clips",
        }
        if out_dir is not None:
            out_dir = Path(out_dir)
            write_metrics(out_dir / "metrics.json", metrics)
            plot_confusion(out_dir / "plots" / "confusion_matrix.png", confusion, names,
                           f"clip accuracy {metrics['accuracy']:.3f} ({targets.size} clips)")
        return metrics


def plot_confusion(path: str | Path, confusion: np.ndarray, names: Sequence[str], title: str = "") -> None:
    """PNG of a confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 * k + 2.5, 1.0 * k + 1.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
