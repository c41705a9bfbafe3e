"""Readers of the MATLAB files that hold VAD benchmarks' ground truth.

Three forms are in use:

* a MATLAB script, as UCSD ships it (``UCSDped2.m``)::

      TestVideoFile{end+1}.gt_frame = [61:180];
      TestVideoFile{end+1}.gt_frame = [1:100, 120:180];

  one entry per test video, in order: :func:`read_ucsd_m`;
* a frame-interval ``.mat`` (``ped2.mat``, ``avenue.mat``), key ``gt``: a 1xV cell array whose
  entry ``v`` is a 2xK array of ``[start; end]`` columns: :func:`read_interval_mat`;
* per-frame pixel masks (CUHK Avenue's ``1_label.mat``), key ``volLabel``: a 1xN cell of
  HxW masks: :func:`read_vol_label`.

Interval readers return the numbers **as the file holds them: 1-based, inclusive** (MATLAB's
convention). :func:`to_zero_based` converts them to the 0-based inclusive intervals of
:class:`~pyanomaly.datasets.base.VideoRecord`. Every malformed file raises
:class:`~pyanomaly.datasets.base.DatasetError` naming the file, the entry and the shape.

Example:
    >>> gt = read_interval_mat("ped2/ped2.mat")
    >>> gt[0], to_zero_based(gt[0])
    ([(61, 180)], [(60, 179)])
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .video import DatasetError

Intervals = list[tuple[int, int]]


def load_mat(path: Path) -> dict:
    """``scipy.io.loadmat(path)``, with failures turned into :class:`DatasetError`."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file not found: {path}")
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError:  # scipy's answer to MATLAB v7.3 (HDF5) files
        raise DatasetError(f"{path} is a MATLAB v7.3 (HDF5) file, which cannot be read here; "
                           "re-save it in MATLAB with save(..., '-v7')") from None
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DatasetError(f"{path} is not a readable MATLAB .mat file ({exc})") from None


def _cell(path: Path, data: dict, key: str) -> list:
    if key not in data:
        keys = sorted(k for k in data if not k.startswith("__"))
        raise DatasetError(f"{path}: no variable '{key}' (variables: {', '.join(keys) or 'none'})")
    value = data[key]
    if not isinstance(value, np.ndarray) or value.dtype != object or value.ndim > 2 or (
            value.ndim == 2 and 1 not in value.shape):
        shape = getattr(value, "shape", None)
        dtype = getattr(value, "dtype", type(value).__name__)
        raise DatasetError(f"{path}: '{key}' must be a 1xN cell array, got {dtype} of shape {shape}")
    return list(value.ravel())


def read_interval_mat(path: Path, key: str = "gt") -> list[Intervals]:
    """Per video, its anomalous ``(start, end)`` intervals, **1-based inclusive** as stored.

    ``key`` holds a 1xV cell array; entry ``v`` is a 2xK array (one ``[start; end]`` column per
    interval) or empty for a video without anomalies.
    """
    path = Path(path)
    videos = []
    for v, entry in enumerate(_cell(path, load_mat(path), key)):
        arr = np.asarray(entry)
        if arr.size == 0:
            videos.append([])
            continue
        if arr.ndim == 1 and arr.size == 2:
            arr = arr.reshape(2, 1)
        if arr.ndim != 2 or arr.shape[0] != 2:
            hint = " (transposed? expected [start; end] columns)" if arr.ndim == 2 and arr.shape[1] == 2 else ""
            raise DatasetError(f"{path}: '{key}' entry {v + 1} has shape {arr.shape}, expected 2xK{hint}")
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.mod(arr, 1) == 0):
            raise DatasetError(f"{path}: '{key}' entry {v + 1} must hold whole frame numbers, got {arr.tolist()}")
        pairs = [(int(s), int(e)) for s, e in arr.astype(np.int64).T]
        _check_one_based(pairs, f"{path}: '{key}' entry {v + 1}")
        videos.append(pairs)
    return videos


_ENTRY = re.compile(r"TestVideoFile\s*\{\s*(end\s*\+\s*1|\d+)\s*\}\s*\.\s*gt_frame\s*=\s*(.*?)\s*;?\s*$")


def read_ucsd_m(path: Path) -> list[Intervals]:
    """Per test video, its ``gt_frame`` intervals from a UCSD ``.m`` file, **1-based inclusive**.

    Understands ``TestVideoFile{end+1}.gt_frame = [a:b, c:d];`` (and ``{k}`` for an explicit
    1-based video number, single frames ``[a]``, ranges separated by commas or spaces, an
    empty ``[]``); ``%`` comments are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"label file not found: {path}")
    entries: dict[int, Intervals] = {}
    for lineno, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.split("%", 1)[0].strip()
        if "gt_frame" not in line:
            continue
        m = _ENTRY.search(line)
        if m is None:
            raise DatasetError(f"{path} line {lineno}: cannot parse '{raw.strip()}'")
        index = len(entries) + 1 if m.group(1).startswith("end") else int(m.group(1))
        where = f"{path} line {lineno}"
        expr = re.sub(r"\s*:\s*", ":", m.group(2).strip())
        if not (expr.startswith("[") and expr.endswith("]")):
            expr = f"[{expr}]"
        pairs = []
        for token in re.split(r"[\s,;]+", expr[1:-1].strip()):
            if not token:
                continue
            if re.fullmatch(r"\d+:\d+", token):
                start, end = (int(t) for t in token.split(":"))
            elif re.fullmatch(r"\d+", token):
                start = end = int(token)
            else:
                raise DatasetError(f"{where}: cannot read the frame range '{token}' in '{raw.strip()}'")
            pairs.append((start, end))
        _check_one_based(pairs, where)
        entries[index] = entries.get(index, []) + pairs
    if not entries:
        raise DatasetError(f"{path}: no 'TestVideoFile{{...}}.gt_frame = [...]' lines found")
    missing = sorted(set(range(1, max(entries) + 1)) - set(entries))
    if missing:
        raise DatasetError(f"{path}: no gt_frame entry for test video(s) {missing}")
    return [entries[k] for k in range(1, max(entries) + 1)]


def read_vol_label(path: Path, key: str = "volLabel") -> np.ndarray:
    """Per-frame labels ``(N,)`` uint8 from a cell of N pixel masks: 1 if any pixel > 0."""
    path = Path(path)
    masks = _cell(path, load_mat(path), key)
    labels = np.zeros(len(masks), dtype=np.uint8)
    for t, mask in enumerate(masks):
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise DatasetError(f"{path}: '{key}' mask {t + 1} has shape {mask.shape}, expected a 2-D HxW mask")
        labels[t] = bool(np.any(mask > 0))
    return labels


def to_zero_based(intervals: Intervals) -> Intervals:
    """1-based inclusive ``(start, end)`` pairs -> 0-based inclusive (both minus one)."""
    return [(s - 1, e - 1) for s, e in intervals]


def _check_one_based(pairs: Intervals, where: str) -> None:
    for s, e in pairs:
        if s < 1 or e < s:
            raise DatasetError(f"{where}: interval [{s}:{e}] needs 1 <= start <= end (1-based frame numbers)")
