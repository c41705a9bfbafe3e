"""Results by kind of anomaly: which kinds a method catches, and which cues catch which kind.

When a dataset says which kind each anomalous interval is (``events.csv``:
:mod:`pyanomaly.datasets.events`), the frame-level micro AUC of kind ``k`` is the AUC of the
scores over the normal frames of every video plus the anomalous frames of the events of kind
``k``; anomalous frames of other kinds (and anomalous frames in no event) are left out. The
scores are those the protocol gives (per-video min-max normalisation, smoothing: the
scoring pipeline), and the AUC is :func:`~.metrics.frame_metrics`' ``auc_micro``. Frames of
an event that its labels call normal stay normal: the labels decide what is anomalous, the
events only which kind.

``metrics.json`` then holds ``auc_by_kind`` (:func:`auc_by_kind`), and a method that writes
several exports of its errors (Fusion's ``cues/<subset>/``: the ablation of its cues) gets
them re-scored by kind into one Markdown table, ``by_kind.md`` beside them
(:func:`exports_by_kind`, :func:`kinds_table`): rows the exports, columns the kinds and
``all`` (every kind: the micro AUC).

Example:
    >>> auc_by_kind(names, scores, labels, dataset.events)
    {'fall': {'auc_micro': 0.91, 'frames_anomalous': 57, 'videos': 1}, ...}
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .ablation import scored_exports
from .metrics import frame_metrics

Events = Mapping[str, Sequence[tuple[str, int, int]]]


def kinds_of(events: Events) -> list[str]:
    """The kinds of ``events``, in order of first appearance."""
    return list(dict.fromkeys(kind for evs in events.values() for kind, _, _ in evs))


def kind_labels(name: str, labels: np.ndarray | None, events: Events, kind: str) -> np.ndarray | None:
    """Labels of video ``name`` for kind ``kind``: anomalous frames of events of another kind (or of
    no event) become -1 (left out); normal frames and frames of ``kind``'s events stay as they are."""
    if labels is None:
        return None
    labels = np.asarray(labels).astype(np.int64)
    mine = np.zeros(labels.shape, dtype=bool)
    for k, start, end in events.get(name, ()):
        if end >= labels.size:
            raise ValueError(f"event {k} {start}..{end} of video '{name}' ends past its last frame "
                             f"{labels.size - 1}")
        if k == kind:
            mine[start:end + 1] = True
    out = labels.copy()
    out[(labels == 1) & ~mine] = -1
    return out


def auc_by_kind(names: Sequence[str], scores: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                events: Events) -> dict[str, dict]:
    """Per kind: ``auc_micro`` over the normal frames and that kind's frames (None without both
    classes), ``frames_anomalous`` (that kind's frames evaluated) and ``videos`` (holding them)."""
    out = {}
    for kind in kinds_of(events):
        kl = [kind_labels(n, l, events, kind) for n, l in zip(names, labels)]
        m = frame_metrics(list(names), list(scores), kl)
        out[kind] = {"auc_micro": m["auc_micro"], "frames_anomalous": m.get("frames_anomalous", 0),
                     "videos": sum(1 for l in kl if l is not None and (l == 1).any())}
    return out


def exports_by_kind(folder: str | Path, events: Events, pipeline) -> dict[str, dict[str, float | None]]:
    """Every export under ``folder`` (``<row>/frame_scores.csv``, by row name), its raw errors scored by
    ``pipeline`` (:class:`~pyanomaly.scoring.pipeline.ScorePipeline`: the run's protocol) and
    evaluated by kind: per row ``{kind: micro AUC, ..., "all": micro AUC over every kind}``."""
    rows = {}
    for row, names, scores, labels in scored_exports(folder, pipeline):
        rows[row] = {k: v["auc_micro"] for k, v in auc_by_kind(names, scores, labels, events).items()}
        rows[row]["all"] = frame_metrics(names, scores, labels)["auc_micro"]
    return rows


def kinds_table(rows: Mapping[str, Mapping[str, float | None]], first: str = "cues") -> str:
    """A Markdown table: one row per entry of ``rows``, one column per kind (then ``all``), micro AUCs."""
    columns = list(dict.fromkeys(k for r in rows.values() for k in r if k != "all")) + ["all"]

    def cell(v):
        return "n/a" if v is None else f"{v:.3f}"
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    lines += [f"| {name} | " + " | ".join(cell(r.get(c)) for c in columns) + " |" for name, r in rows.items()]
    return "\n".join(lines) + "\n"
