"""Reading exported per-frame scores back, checked row by row (``tools/test.py --scores``).

Any of the three forms that :mod:`.export` writes: ``frame_scores.csv``, ``frame_scores.json``,
or the ``scores/`` (``npy/``) folder with its ``index.json``. Every frame of every video must
be there once (0..N-1), every value a finite number or empty, every label 0, 1 or empty; a
file cut short (no final newline, JSON that does not parse, fewer videos or frames than its
``index.json`` lists) is refused. Each refusal is one :class:`~pyanomaly.errors.ScoreFileError`
naming the file, the line or row, the video, the frame and the value.

Example:
    >>> scores = load_scores("outputs/run/scores/frame_scores.csv")
    >>> scores["01"]["error"]          # (N,) float64, NaN where the frame has no prediction
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from pyanomaly.errors import ScoreFileError

FIELDS = ("video", "frame", "error", "score", "label")  # the columns of frame_scores.csv / .json


def find_index(path: str | Path) -> dict | None:
    """``index.json`` beside a score file or in/above a score folder, or None when there is none."""
    p = _index_path(Path(path))
    if p is None:
        return None
    try:
        index = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScoreFileError(f"{p} is not valid JSON ({exc}): the file looks truncated or damaged") from None
    if not isinstance(index, dict) or not isinstance(index.get("videos", []), list):
        raise ScoreFileError(f"{p}: expected an object {{\"protocol\": {{...}}, \"videos\": [...]}}")
    return index


def _index_path(path: Path) -> Path | None:
    where = [path] if path.name == "index.json" else (
        [path / "index.json", path.parent / "index.json"] if path.is_dir() else [path.parent / "index.json"])
    return next((p for p in where if p.is_file()), None)


def _listed_frames(index: dict | None, index_path: Path | None) -> dict[str, int]:
    """``{video: frames}`` for the videos ``index.json`` lists with a frame count."""
    out = {}
    for i, v in enumerate((index or {}).get("videos", [])):
        if not isinstance(v, dict) or not isinstance(v.get("video"), str):
            raise ScoreFileError(f"{index_path}: videos[{i}] is {v!r}; expected an object with a 'video' name")
        if type(v.get("frames")) is int:
            out[v["video"]] = v["frames"]
    return out


def load_scores(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read scores -> ``{video: {"error", "score", "label"}}``, arrays indexed by frame.

    ``path``: ``frame_scores.csv`` / ``.json`` (or another CSV with at least ``video, frame``
    and some of ``error, score, label``, such as ``tools/score_video.py``'s), or a scores
    folder / its ``npy/`` folder / its ``index.json`` (read from the ``.npy`` arrays).
    Missing values are NaN (labels: -1 when unknown).

    Every row is checked: frames of a video are 0..N-1, each once; numbers are finite or
    empty; labels are 0, 1 or empty; a file cut while written (a last line without a newline,
    a row with missing fields, JSON that does not parse, fewer videos or frames than the
    ``index.json`` beside it lists) is refused. Raises :class:`~pyanomaly.errors.ScoreFileError`
    naming the file, line (CSV) or row (JSON), video, frame and value.
    """
    path = Path(path)
    if path.is_dir() or path.name == "index.json":
        return _load_npy(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores file not found: {path}")
    records = _json_records(path) if path.suffix == ".json" else _csv_records(path)
    index_path = path.parent / "index.json"
    return _assemble(path, records, _listed_frames(find_index(path), index_path), index_path)


def _bad(path: Path, where: str, what: str) -> ScoreFileError:
    return ScoreFileError(f"{path}, {where}: {what}")


def _csv_records(path: Path):
    """``(where, video, frame, error, score, label)`` per CSV row, each cell checked."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a BOM: saved by Excel
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ScoreFileError(f"{path}: byte {exc.start} is not UTF-8 text; expected a CSV of scores") from None
    if not text:
        return
    if not text.endswith(("\n", "\r")):
        raise _bad(path, f"line {text.count(chr(10)) + 1}", "the file ends in the middle of a line (no newline): "
                   "it looks truncated")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        if not {"video", "frame"} <= set(header):
            raise ScoreFileError(f"{path}: header {','.join(header)!r}; expected rows with at least the columns "
                                 "video, frame (and error, score, label)")
        col = {k: header.index(k) for k in FIELDS if k in header}
        for row in reader:
            if not row:
                continue
            where = f"line {reader.line_num}"
            if len(row) != len(header):
                raise _bad(path, where, f"{len(row)} fields {','.join(row)!r}; expected {len(header)} "
                           f"({','.join(header)}): the file looks truncated or damaged")
            video = row[col["video"]]
            if not video:
                raise _bad(path, where, "empty video name; expected the video's name")
            try:
                frame = int(row[col["frame"]])
            except ValueError:
                frame = row[col["frame"]]
            frame = _check_frame(path, where, video, frame)
            vals = [_number(path, where, video, frame, k, row[col[k]] if k in col else "", True)
                    for k in ("error", "score")]
            label = row[col["label"]] if "label" in col else ""
            if label not in ("", "0", "1"):
                raise _bad(path, where, f"video {video!r} frame {frame}: label {label!r}; expected 0, 1 or empty")
            yield where, video, frame, *vals, int(label) if label else -1
    except csv.Error as exc:
        raise _bad(path, f"line {reader.line_num}", f"not valid CSV ({exc}): the file looks truncated or damaged")


def _json_records(path: Path):
    """``(where, video, frame, error, score, label)`` per JSON row, each value checked."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScoreFileError(f"{path} is not valid JSON ({exc}): the file looks truncated or damaged") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ScoreFileError(f"{path}: expected a list of rows with at least the keys video, frame "
                             "(and error, score, label)")
    keys = ("video", "frame", *(k for k in ("error", "score", "label") if rows and k in rows[0]))
    for i, r in enumerate(rows):
        where = f"row [{i}]"
        if not set(keys) <= set(r):
            raise _bad(path, where, f"{r!r} has no {', '.join(k for k in keys if k not in r)}; expected the keys "
                       f"{', '.join(keys)} like the first row: the file looks truncated or damaged")
        video = str(r["video"]) if type(r["video"]) is int else r["video"]
        if not isinstance(video, str) or not video:
            raise _bad(path, where, f"video {r['video']!r}; expected the video's name")
        frame = _check_frame(path, where, video, r["frame"])
        vals = [_number(path, where, video, frame, k, r.get(k), False) for k in ("error", "score")]
        label = r.get("label")
        if label is not None and not (type(label) is int and label in (0, 1)):
            raise _bad(path, where, f"video {video!r} frame {frame}: label {label!r}; expected 0, 1 or null")
        yield where, video, frame, *vals, -1 if label is None else label


def _check_frame(path: Path, where: str, video: str, frame) -> int:
    if type(frame) is not int or frame < 0:
        raise _bad(path, where, f"video {video!r}: frame {frame!r}; expected a whole number >= 0")
    return frame


def _number(path: Path, where: str, video: str, frame: int, key: str, value, cell: bool) -> float | None:
    """A CSV ``cell`` (text, empty = none) or a JSON value (a number or null) -> float or None."""
    if value is None or (cell and value == ""):
        return None
    try:
        x = float(value) if (isinstance(value, str) if cell else type(value) in (int, float)) else None
    except ValueError:
        x = None
    if x is None or not math.isfinite(x):
        raise _bad(path, where, f"video {video!r} frame {frame}: {key} {value!r}; expected a finite number or "
                   + ("empty" if cell else "null"))
    return x


def _assemble(path: Path, records, listed: dict[str, int], index_path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Checked records -> arrays; frames must be 0..N-1 once each, and as many as ``index.json`` lists."""
    videos: dict[str, dict[int, tuple]] = {}
    for where, video, frame, error, score, label in records:
        frames = videos.setdefault(video, {})
        if frame in frames:
            raise _bad(path, where, f"video {video!r} frame {frame} appears again (first at {frames[frame][0]}); "
                       "expected each frame once")
        if listed and video not in listed:
            raise _bad(path, where, f"video {video!r} is not among the {len(listed)} videos {index_path} lists")
        if video in listed and frame >= listed[video]:
            raise _bad(path, where, f"video {video!r}: frame {frame}; expected 0..{listed[video] - 1} "
                       f"({index_path} lists {listed[video]} frames)")
        frames[frame] = (where, error, score, label)
    for video, n in listed.items():
        if video not in videos:
            raise ScoreFileError(f"{path}: no rows for video {video!r}; {index_path} lists {len(listed)} videos, "
                                 f"the file holds {len(videos)}: it looks truncated")
    out = {}
    for video, frames in videos.items():
        n, last = len(frames), max(frames)
        if last != n - 1:
            gap = next(i for i in range(n) if i not in frames)
            after = min(i for i in frames if i > gap)
            raise _bad(path, frames[after][0], f"video {video!r} has no frame {gap} (the next it has is {after}, "
                       f"its highest {last}); expected frames 0..N-1 without gaps")
        if video in listed and n < listed[video]:
            raise ScoreFileError(f"{path}: video {video!r} has {n} frames, {index_path} lists {listed[video]}: "
                                 "the file looks truncated")
        cols = [frames[i] for i in range(n)]
        out[video] = {"error": np.array([np.nan if c[1] is None else c[1] for c in cols], dtype=np.float64),
                      "score": np.array([np.nan if c[2] is None else c[2] for c in cols], dtype=np.float64),
                      "label": np.array([c[3] for c in cols], dtype=np.int64)}
    return out


def _load_npy(path: Path) -> dict[str, dict[str, np.ndarray]]:
    index = find_index(path)
    if index is None:
        raise FileNotFoundError(f"no index.json in or above {path}: cannot tell which .npy file is which video")
    index_path = _index_path(path)
    folder = index_path.parent
    listed = _listed_frames(index, index_path)
    out = {}
    for v in index.get("videos", []):
        if not v.get("npy"):
            raise FileNotFoundError(f"{index_path}: video '{v['video']}' was exported without .npy arrays")
        arrays = {}
        for key in ("error", "score", "label"):
            f = folder / "npy" / f"{v['npy']}_{key}.npy"
            if not f.is_file():
                raise FileNotFoundError(f"missing {f} (listed in {index_path})")
            try:
                a = np.load(f, allow_pickle=False)
            except (ValueError, EOFError, OSError) as exc:
                raise ScoreFileError(f"{f}: not a readable .npy array ({exc}): it looks truncated or damaged") from None
            n = listed.get(v["video"], len(arrays.get("error", a)))
            if a.ndim != 1 or len(a) != n or a.dtype.kind not in ("iu" if key == "label" else "fiu"):
                raise ScoreFileError(f"{f}: video {v['video']!r}: a {a.dtype} array of shape {a.shape}; expected "
                                     f"({n},) {'integers' if key == 'label' else 'numbers'} ({index_path})")
            arrays[key] = a
        label = arrays["label"].astype(np.int64)
        bad = np.flatnonzero((label < -1) | (label > 1))
        if len(bad):
            raise ScoreFileError(f"{folder / 'npy' / (v['npy'] + '_label.npy')}: video {v['video']!r} frame {bad[0]}: "
                                 f"label {label[bad[0]]}; expected 1, 0 or -1 (unknown)")
        arrays["label"] = label
        out[v["video"]] = arrays
    return out
