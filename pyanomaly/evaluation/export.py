"""Writing and reading per-frame scores and metrics.

``scores/frame_scores.csv`` and ``scores/frame_scores.json`` hold one row per test frame:
``video, frame, error, score, label`` (``frame`` is the 0-based index in its video; ``error``
the raw scorer output; ``score`` higher = more anomalous; empty/null where the frame has no
score or no label). See docs/scores.md.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from pyanomaly.utils import atomic_write_text

FIELDS = ("video", "frame", "error", "score", "label")


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def frame_rows(names: Sequence[str], errors: Sequence[np.ndarray], scores: Sequence[np.ndarray],
               labels: Sequence[np.ndarray | None]) -> list[dict]:
    rows = []
    for name, e, s, l in zip(names, errors, scores, labels):
        for i in range(len(s)):
            rows.append({"video": name, "frame": i, "error": _num(e[i]), "score": _num(s[i]),
                         "label": None if l is None else int(l[i])})
    return rows


def write_scores(out_dir: str | Path, rows: list[dict]) -> None:
    """``frame_scores.csv`` and ``frame_scores.json`` in ``out_dir`` (atomic writes)."""
    out_dir = Path(out_dir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for r in rows:
        w.writerow(["" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in FIELDS])
    atomic_write_text(out_dir / "frame_scores.csv", buf.getvalue())
    atomic_write_text(out_dir / "frame_scores.json", json.dumps(rows))


def load_scores(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read ``frame_scores.csv`` or ``.json`` -> ``{video: {"error", "score", "label"}}``.

    Arrays are indexed by frame; missing values are NaN (labels: -1 when unknown).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores file not found: {path}")
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
    else:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    videos: dict[str, list] = {}
    for r in rows:
        videos.setdefault(str(r["video"]), []).append(r)
    out = {}
    for name, rs in videos.items():
        n = max(int(r["frame"]) for r in rs) + 1
        arr = {k: np.full(n, np.nan) for k in ("error", "score")}
        label = np.full(n, -1, dtype=np.int64)
        for r in rs:
            i = int(r["frame"])
            for k in ("error", "score"):
                if r[k] not in (None, ""):
                    arr[k][i] = float(r[k])
            if r["label"] not in (None, ""):
                label[i] = int(r["label"])
        arr["label"] = label
        out[name] = arr
    return out


def write_metrics(path: str | Path, metrics: dict) -> None:
    atomic_write_text(path, json.dumps(metrics, indent=2))
