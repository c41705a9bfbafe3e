"""Anomaly-map files: each frame's per-pixel error map, reduced and written once per video.

A scoring loop that keeps maps (``VideoScorer(..., maps=True)``) gives every chunk the
scorer's per-pixel error map ``(n, H, W)`` float32 at the model's frame size (PSNR/MSE: the
squared error, AREA: the absolute error, CELL_*: the method's anomaly map; higher = more
anomalous). Kept whole, a video's maps would cost more than its frames, so a
:class:`MapRecorder` averages them over ``f x f`` pixel blocks (``EVAL.MAPS_DOWNSAMPLE``),
stores them as float16 and spools them to an unnamed temporary file as they come, so a long
stream holds none of them in memory. :meth:`MapRecorder.save` writes one ``.npy`` per video,
atomically::

    <stem>.npy   (N, ceil(H / f), ceil(W / f)) float16, NaN on frames without a prediction

float16 keeps about 3 significant digits; a value above 65504 reads as inf.

Example:
    >>> rec = MapRecorder(downsample=4)
    >>> rec.add(chunk.maps)                    # (n, H, W), chunk after chunk
    >>> rec.save(Path("scores/maps/01.npy"))   # (N, ceil(H/4), ceil(W/4)) float16
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pyanomaly.utils import atomic_write

__all__ = ["MapRecorder", "downsample_maps"]


def downsample_maps(maps: np.ndarray, factor: int) -> np.ndarray:
    """Maps ``(n, H, W)`` averaged over ``factor x factor`` blocks -> ``(n, ceil(H/f), ceil(W/f))``
    float16 (a block cut short at the right or bottom averages the pixels it has); a frame of NaN
    stays NaN."""
    if int(factor) < 1:
        raise ValueError(f"EVAL.MAPS_DOWNSAMPLE must be >= 1, got {factor}")
    x = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
    if factor > 1 and x.shape[0]:
        x = F.avg_pool2d(x[:, None], int(factor), stride=int(factor), ceil_mode=True)[:, 0]
    return x.numpy().astype(np.float16)


class MapRecorder:
    """One video's maps, downsampled and spooled chunk by chunk (see the module docstring).

    Args:
        downsample: the block side ``f`` maps are averaged over (1 = full size).
    """

    def __init__(self, downsample: int = 1):
        if int(downsample) < 1:
            raise ValueError(f"EVAL.MAPS_DOWNSAMPLE must be >= 1, got {downsample}")
        self.downsample = int(downsample)
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (h, w) of the saved maps
        self._spool = tempfile.TemporaryFile()

    def add(self, maps: np.ndarray) -> None:
        """The next frames' maps ``(n, H, W)`` (every chunk of a video at the same ``H, W``)."""
        small = downsample_maps(maps, self.downsample)
        if self.size is None:
            self.size = small.shape[1:]
        elif small.shape[1:] != self.size:
            raise ValueError(f"maps of {maps.shape[1:]} pixels after maps of another size in the same video")
        self._spool.write(small.tobytes())
        self.frames += small.shape[0]

    def array(self) -> np.ndarray:
        """Every map so far ``(N, h, w)`` float16."""
        self._spool.flush()
        self._spool.seek(0)
        data = np.frombuffer(self._spool.read(), dtype=np.float16)
        self._spool.seek(0, 2)
        return data.reshape(self.frames, *(self.size or (0, 0))).copy()

    def save(self, path: str | Path) -> None:
        """Write every map so far to ``path`` as an ``.npy`` ``(N, h, w)`` float16 (atomically)."""
        self._spool.flush()
        shape = (self.frames, *(self.size or (0, 0)))

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False,
                        "shape": shape})
                self._spool.seek(0)
                shutil.copyfileobj(self._spool, f)
            self._spool.seek(0, 2)
        atomic_write(path, write)

    def close(self) -> None:
        """Drop the spool (its file is deleted)."""
        self._spool.close()
