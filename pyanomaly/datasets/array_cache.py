"""Arrays cached on disk as ``.npy`` files, and work spread over a split's videos.

:func:`cached_npy` is the one mechanism behind the frame cache, the optical-flow cache and the
label cache of :class:`~pyanomaly.datasets.base.VideoDataset`: the file is used when it holds
what is expected, else the array is computed and written atomically (a read-only or full cache
only costs speed, never a result).

Example:
    >>> arr = cached_npy(path, lambda a: a.shape == (180, 240, 360, 1), lambda: decode(...), "frame cache")
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from pyanomaly.errors import DatasetError
from pyanomaly.utils import atomic_write

from .video import VideoRecord

logger = logging.getLogger("pyanomaly")


# Bump when decode() changes what it produces, so caches written before re-decode.
CACHE_VERSION = 2


def files_hash(files: Sequence[Path], extra: str) -> str:
    """A key for what ``files`` hold now (paths, sizes, modification times) and ``extra``."""
    h = hashlib.sha1(f"{CACHE_VERSION}|{extra}|{len(files)}".encode())
    for f in files:
        st = os.stat(f)
        h.update(f"|{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def frames_key(record: VideoRecord, size: Sequence[int], channels: int, stop: int | None = None) -> str:
    """The frame cache's name for a video: its source files as they are now plus the decode
    settings (and the frames kept of a video cut to its first ``stop``): a changed file re-decodes."""
    files = [record.source] if record.is_file else record.source
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in record.name)
    settings = f"{tuple(size)}|{channels}" + ("" if stop is None else f"|first {stop}")
    return f"{safe}-{files_hash(files, settings)}"


def cached_npy(path: Path, valid: Callable[[np.ndarray], bool], compute: Callable[[], np.ndarray], what: str,
               mmap: bool = True) -> np.ndarray:
    """The array in ``path`` when ``valid`` says it is the expected one, else ``compute()`` written
    there (then read back memory-mapped with ``mmap``). ``what`` names the cache in warnings."""
    if path.is_file():
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None)
            if valid(arr):
                return arr
            logger.warning("%s file %s holds %s %s; computing it again", what, path, arr.dtype, arr.shape)
        except (ValueError, OSError):
            logger.warning("%s file %s is damaged; computing it again", what, path)
    arr = compute()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    try:
        atomic_write(path, write)
    except OSError as exc:
        logger.warning("cannot write %s %s (%s); keeping the array in memory", what, path, exc)
        return arr
    return np.load(path, mmap_mode="r") if mmap else arr


#: room left free beside a cache being filled (other writers, the .npy headers, temporaries)
HEADROOM_BYTES = 256 * 2 ** 20
#: where Linux says how much memory a process can still take (``MemAvailable``)
MEMINFO = "/proc/meminfo"


def free_bytes(folder: Path | None) -> int | None:
    """Bytes free where ``folder`` is (its nearest existing parent), or with ``None`` the memory
    available to this process (``MemAvailable``); None when the system does not say."""
    if folder is None:
        try:
            with open(MEMINFO) as f:
                fields = dict(line.split(":", 1) for line in f)
            return int(fields["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def check_room(folder: Path | None, need: int, what: str, advice: str) -> None:
    """Raise :class:`DatasetError` naming ``what``, the bytes it needs, the bytes free and
    ``advice`` when ``need`` bytes (and a headroom) do not fit in ``folder`` (None: memory): said
    before the work starts, not after hours of decoding or flow end in a full disk or a killed
    process. Nothing is checked when the system does not say what is free."""
    free = free_bytes(folder)
    if free is None or need + HEADROOM_BYTES <= free:
        return
    where = "memory" if folder is None else str(folder)
    raise DatasetError(f"{what} needs about {need / 1e9:.1f} GB in {where}, which has {free / 1e9:.1f} GB free; "
                       f"{advice}")


_PROGRESS = contextvars.ContextVar("cache_progress", default=False)


@contextlib.contextmanager
def showing_progress(show: bool):
    """Within the block, :func:`map_videos` given a ``desc`` shows a progress bar on the console
    (``build_dataset`` sets it from ``LOG.PROGRESS``)."""
    token = _PROGRESS.set(bool(show))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def map_videos(fn: Callable[[int], np.ndarray], indices: Sequence[int], desc: str | None = None) -> list[np.ndarray]:
    """``[fn(i) for i in indices]``, on up to 8 threads: OpenCV releases the GIL while decoding,
    resizing and computing flow, so threads use every core. With ``desc``, a progress bar over
    the videos, when :func:`showing_progress` is on."""
    threads = max(1, min(8, os.cpu_count() or 1, len(indices)))
    bar = tqdm(total=len(indices), desc=desc, unit="video", disable=desc is None or not _PROGRESS.get(), leave=False)
    with bar, ThreadPoolExecutor(threads) as pool:
        results = []
        for out in (map if threads == 1 else pool.map)(fn, indices):  # in order, counted by this thread
            results.append(out)
            bar.update(1)
        return results
