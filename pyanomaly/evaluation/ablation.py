"""The ablation of a run's exports: every ``<row>/frame_scores.csv`` under a folder (a Fusion's
``cues/<subset>/``: each cue alone, each pair, ..., all) scored under one protocol and evaluated.

Each export holds raw errors; the run's :class:`~pyanomaly.scoring.pipeline.ScorePipeline`
turns them into scores exactly as it scored the run (per-video min-max, smoothing, frames
without an error left out and counted), so a row is what ``tools/test.py --scores`` would
report for that export. :func:`exports_metrics` gives each row's metrics,
:func:`ablation_table` a Markdown table of them (``cues/ablation.md`` of a fused run).

Example:
    >>> rows = exports_metrics("outputs/ped2_cues/cues", task.pipeline)
    >>> rows["flow+unet+copy"]["auc_micro"]
    0.9746
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .metrics import frame_metrics
from .score_files import find_index, load_scores


def scored_exports(folder: str | Path, pipeline) -> Iterator[tuple[str, list[str], list[np.ndarray], list]]:
    """Per export under ``folder`` (sorted by name): ``(row, video names, scores, labels)``, its
    errors scored by ``pipeline``; labels None for a video without them."""
    for path in sorted(Path(folder).glob("*/frame_scores.csv")):
        higher = ((find_index(path) or {}).get("protocol") or {}).get("higher_error_is_anomalous")
        if higher is not None and bool(higher) != pipeline.higher_is_anomalous:
            raise ValueError(f"{path}: its errors are {'higher' if higher else 'lower'} when anomalous, the "
                             "pipeline scoring them takes the other direction")
        data = load_scores(path)
        names = list(data)
        scores = [pipeline.score(data[n]["error"], np.isfinite(data[n]["error"]))[0] for n in names]
        labels = [None if (data[n]["label"] < 0).all() else data[n]["label"] for n in names]
        yield path.parent.name, names, scores, labels


def exports_metrics(folder: str | Path, pipeline) -> dict[str, dict]:
    """Per export under ``folder``: :func:`~.metrics.frame_metrics` of its scores, rows ordered by
    how many parts their name joins (``a``, then ``a+b``, ...), then by name."""
    rows = {row: frame_metrics(names, scores, labels)
            for row, names, scores, labels in scored_exports(folder, pipeline)}
    return dict(sorted(rows.items(), key=lambda kv: (kv[0].count("+"), kv[0])))


def ablation_table(rows: Mapping[str, Mapping], first: str = "cues") -> str:
    """A Markdown table of :func:`exports_metrics`' rows: micro and macro AUC, EER, AP, frames
    evaluated and without a score."""
    def cell(v, digits=4):
        return "n/a" if v is None else f"{v:.{digits}f}"
    lines = [f"| {first} | micro AUC | macro AUC | EER | AP | frames | without score |",
             "|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {cell(m.get('auc_micro'))} | {cell(m.get('auc_macro'))} | {cell(m.get('eer'))} | "
                     f"{cell(m.get('ap'))} | {m.get('frames_evaluated', 0)} | {m.get('frames_unscored', 0)} |")
    return "\n".join(lines) + "\n"
