"""Writing and reading per-frame scores and metrics.

A run's ``scores/`` folder (see docs/scores.md)::

    frame_scores.csv, frame_scores.json   one row per test frame: video, frame, error, score, label
    index.json                            {"protocol": {...}, "videos": [{"video", "group", "frames", "npy"}]}
    npy/<stem>_error.npy                  (N,) float64 raw error, NaN where no prediction
    npy/<stem>_score.npy                  (N,) float64 score, NaN where no score
    npy/<stem>_label.npy                  (N,) int8 label, 1 anomalous, 0 normal, -1 unknown

``frame`` is the 0-based index in its video; ``error`` the raw scorer output; ``score``
higher = more anomalous; empty/null where the frame has no score or no label. ``<stem>`` is
the video name made safe as a file name (``index.json`` maps names to stems).
:func:`load_scores` reads any of the three forms back.
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

FIELDS = ("video", "frame", "error", "score", "label")


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
    """Rows as CSV text: floats with 6 significant digits, None as an empty cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow(["" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in fields])
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


def _save_npy(path: Path, arr: np.ndarray) -> None:
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
            _save_npy(out_dir / "npy" / f"{stem}_error.npy", np.asarray(e, dtype=np.float64))
            _save_npy(out_dir / "npy" / f"{stem}_score.npy", np.asarray(s, dtype=np.float64))
            _save_npy(out_dir / "npy" / f"{stem}_label.npy", label)
    atomic_write_text(out_dir / "index.json", json.dumps({"protocol": protocol or {}, "videos": videos}, indent=1))


def find_index(path: str | Path) -> dict | None:
    """``index.json`` beside a score file or in/above a score folder, or None when there is none."""
    path = Path(path)
    where = [path] if path.name == "index.json" else (
        [path / "index.json", path.parent / "index.json"] if path.is_dir() else [path.parent / "index.json"])
    for p in where:
        if p.is_file():
            try:
                return json.loads(p.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p} is not valid JSON: {exc}") from None
    return None


def load_scores(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read scores -> ``{video: {"error", "score", "label"}}``, arrays indexed by frame.

    ``path``: ``frame_scores.csv`` / ``.json`` (or another CSV with at least ``video, frame``
    and some of ``error, score, label``, such as ``tools/score_video.py``'s), or a scores
    folder / its ``npy/`` folder / its ``index.json`` (read from the ``.npy`` arrays).
    Missing values are NaN (labels: -1 when unknown).
    """
    path = Path(path)
    if path.is_dir() or path.name == "index.json":
        return _load_npy(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores file not found: {path}")
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
    else:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    if not isinstance(rows, list) or (rows and not {"video", "frame"} <= set(rows[0])):
        raise ValueError(f"{path}: expected rows with at least the columns video, frame (and error, score, label)")
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
                if r.get(k) not in (None, ""):
                    arr[k][i] = float(r[k])
            if r.get("label") not in (None, ""):
                label[i] = int(r["label"])
        arr["label"] = label
        out[name] = arr
    return out


def _load_npy(path: Path) -> dict[str, dict[str, np.ndarray]]:
    index = find_index(path)
    if index is None:
        raise FileNotFoundError(f"no index.json in or above {path}: cannot tell which .npy file is which video")
    folder = (path.parent if path.name == "index.json" else path if (path / "index.json").is_file() else path.parent)
    out = {}
    for v in index.get("videos", []):
        if not v.get("npy"):
            raise FileNotFoundError(f"{folder / 'index.json'}: video '{v['video']}' was exported without .npy arrays")
        arrays = {}
        for key in ("error", "score", "label"):
            f = folder / "npy" / f"{v['npy']}_{key}.npy"
            if not f.is_file():
                raise FileNotFoundError(f"missing {f} (listed in {folder / 'index.json'})")
            arrays[key] = np.load(f, allow_pickle=False)
        arrays["label"] = arrays["label"].astype(np.int64)
        out[v["video"]] = arrays
    return out


def write_metrics(path: str | Path, metrics: dict) -> None:
    """``metrics.json`` (keys starting with ``_`` are in-memory extras, left out)."""
    atomic_write_text(path, json.dumps({k: v for k, v in metrics.items() if not k.startswith("_")}, indent=2))
