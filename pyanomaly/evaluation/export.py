"""Writing per-frame scores and metrics (reading them back: :mod:`.score_files`).

A run's ``scores/`` folder (see docs/scores.md)::

    frame_scores.csv, frame_scores.json   one row per test frame: video, frame, error, score, label
    index.json                            {"protocol": {...}, "videos": [{"video", "group", "frames", "npy"}]}
    npy/<stem>_error.npy                  (N,) float64 raw error, NaN where no prediction
    npy/<stem>_score.npy                  (N,) float64 score, NaN where no score
    npy/<stem>_label.npy                  (N,) int8 label, 1 anomalous, 0 normal, -1 unknown
    maps/<stem>.npy                       with EVAL.SAVE_MAPS: (N, h, w) float16 per-pixel error map,
                                          NaN where no prediction (written by .outputs, .maps)

``frame`` is the 0-based index in its video; ``error`` the raw scorer output; ``score``
higher = more anomalous; empty/null where the frame has no score or no label. ``<stem>`` is
the video name made safe as a file name (``index.json`` maps names to stems).
:func:`~pyanomaly.evaluation.score_files.load_scores` reads any of the three forms back,
bit-exact, and refuses a damaged one.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from pyanomaly.utils import atomic_write, atomic_write_text

from .score_files import FIELDS, find_index, load_scores

__all__ = ["FIELDS", "frame_rows", "csv_text", "write_scores", "file_stems", "save_npy", "write_score_files",
           "write_metrics",
           "find_index", "load_scores"]  # the readers too: what is written here is read back there


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def frame_rows(names: Sequence[str], errors: Sequence[np.ndarray], scores: Sequence[np.ndarray],
               labels: Sequence[np.ndarray | None]) -> list[dict]:
    rows = []
    for name, e, s, l in zip(names, errors, scores, labels):
        for i in range(len(s)):
            rows.append({"video": name, "frame": i, "error": _num(e[i]), "score": _num(s[i]),
                         "label": None if l is None or int(l[i]) < 0 else int(l[i])})
    return rows


def csv_text(rows: list[dict], fields: Sequence[str] = FIELDS) -> str:
    """Rows as CSV text: floats as ``repr`` (the shortest text that reads back bit-exact), None as an
    empty cell, so that re-scoring the CSV reproduces the metrics exactly."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow(["" if r[k] is None else (repr(float(r[k])) if isinstance(r[k], float) else r[k]) for k in fields])
    return buf.getvalue()


def write_scores(out_dir: str | Path, rows: list[dict]) -> None:
    """``frame_scores.csv`` and ``frame_scores.json`` in ``out_dir`` (atomic writes)."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "frame_scores.csv", csv_text(rows))
    atomic_write_text(out_dir / "frame_scores.json", json.dumps(rows))


def file_stems(names: Sequence[str]) -> list[str]:
    """File-safe, unique stems of video names (``a/b`` -> ``a_b``)."""
    out, seen = [], set()
    for name in names:
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "video"
        base, k = stem, 1
        while stem in seen:
            stem, k = f"{base}~{k}", k + 1
        seen.add(stem)
        out.append(stem)
    return out


def save_npy(path: Path, arr: np.ndarray) -> None:
    """``arr`` as an ``.npy`` file at ``path``, written atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    atomic_write(path, write)


def write_score_files(out_dir: str | Path, names: Sequence[str], errors: Sequence[np.ndarray],
                      scores: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                      groups: Sequence[str] | None = None, protocol: dict | None = None, npy: bool = True) -> None:
    """Everything in ``scores/`` (see the module docstring); ``npy=False`` skips ``npy/``."""
    out_dir = Path(out_dir)
    write_scores(out_dir, frame_rows(names, errors, scores, labels))
    stems = file_stems(names)
    videos = []
    for i, (name, stem, e, s, l) in enumerate(zip(names, stems, errors, scores, labels)):
        videos.append({"video": name, "group": groups[i] if groups is not None else None, "frames": len(s),
                       "npy": stem if npy else None})
        if npy:
            label = np.full(len(s), -1, dtype=np.int8) if l is None else np.asarray(l).astype(np.int8)
            save_npy(out_dir / "npy" / f"{stem}_error.npy", np.asarray(e, dtype=np.float64))
            save_npy(out_dir / "npy" / f"{stem}_score.npy", np.asarray(s, dtype=np.float64))
            save_npy(out_dir / "npy" / f"{stem}_label.npy", label)
    atomic_write_text(out_dir / "index.json", json.dumps({"protocol": protocol or {}, "videos": videos}, indent=1))


def write_metrics(path: str | Path, metrics: dict) -> None:
    """``metrics.json`` (keys starting with ``_`` are in-memory extras, left out)."""
    atomic_write_text(path, json.dumps({k: v for k, v in metrics.items() if not k.startswith("_")}, indent=2))
