"""One video on disk: what it is (:class:`VideoRecord`), how it is read, and what fails.

A video is either an ordered list of frame files (a frame folder) or one video file that
OpenCV can decode. Everything here works on a single video; the dataset-level cache and clip
index live in :mod:`pyanomaly.datasets.base`.

Conventions: frame indices are 0-based positions in the video (the ``k``-th frame file in
natural order, or the ``k``-th decoded frame of a file); sizes are ``(H, W)``; decoded
frames are uint8 ``(N, H, W, C)`` with ``C`` = 1 (gray) or 3 (RGB).

Truncated media: decoders give no error for a file cut short. OpenCV decodes a video file up
to the cut and stops, as if it had ended; libjpeg fills the missing part of a JPEG with grey
and only prints "Premature end of JPEG file" to the process's stderr (which cannot be read
back reliably from Python: it is one stream shared by every thread). So truncation is found
from the files' structure instead, the same way on every path that decodes
(:func:`decode`, the stream reader, ``tools/prepare_data.py``):

* a video file must decode to the frames its container claims (``CAP_PROP_FRAME_COUNT``; see
  :func:`frame_count_problem` for the tolerance per container);
* a JPEG frame file must hold its end-of-image marker after its last scan, a PNG its
  ``IEND`` chunk, and no frame file may be empty.

A truncated file is a :class:`DatasetError` naming it, unless truncated media are accepted
(``DATASET.ACCEPT_TRUNCATED``: :func:`accepting_truncated`), in which case it is used as
decoded and a warning per file says so.

Example:
    >>> rec = VideoRecord("01", sorted_frames(Path("ped2/testing/frames/01")))
    >>> decode(rec, size=(64, 64), channels=1).shape
    (180, 64, 64, 1)
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from pyanomaly.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v", ".webm")

logger = logging.getLogger(__name__)

ACCEPT_HINT = "set DATASET.ACCEPT_TRUNCATED True to use it as decoded"
# How exact a container's frame count is (see frame_count_problem): AVI's index is exact; MP4/MOV
# sample tables are, up to frames an edit list hides; other containers' counts are duration x fps.
EXACT_COUNT_EXTENSIONS = (".avi",)
INDEXED_COUNT_EXTENSIONS = (".mp4", ".mov", ".m4v")

_ACCEPT_TRUNCATED = contextvars.ContextVar("accept_truncated", default=False)


@dataclass
class VideoRecord:
    """One video of a split, as a dataset's ``list_videos()`` describes it.

    Attributes:
        name: unique name in its split (used in score files), e.g. ``"01"`` or ``"01_0014"``.
        source: the ordered list of its frame files, or one video file.
        labels: ``(num_frames,)`` uint8, 1 = anomalous frame, or ``None`` when unknown.
        intervals: anomalous frames as ``(start, end)`` pairs, **0-based, inclusive**; turned
            into ``labels`` by the dataset once the number of frames is known (so a video
            file is decoded once, not once to count and once to read).
        label_source: the file the labels come from, named in error messages.
        group: a group the video belongs to (ShanghaiTech: its scene/camera id), or ``None``.
    """

    name: str
    source: list[Path] | Path
    labels: np.ndarray | None = None
    intervals: list[tuple[int, int]] | None = None
    label_source: Path | None = None
    group: str | None = None

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, (str, Path))


@dataclass(frozen=True)
class VideoInfo:
    """What a video is on disk: original ``height`` x ``width`` and ``fps`` (None if unknown)."""

    height: int
    width: int
    fps: float | None


def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def sorted_frames(folder: Path) -> list[Path]:
    """Image files of ``folder`` in frame order (numeric-aware: 9.jpg before 10.jpg).

    Hidden files are skipped (archives made on macOS carry ``._001.tif`` companions).
    """
    files = [p for p in Path(folder).iterdir()
             if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=_natural_key)


def check_frame_files(name: str, files: Sequence[Path]) -> None:
    """Raise :class:`DatasetError` if a frame folder is empty or its numbering has gaps.

    Frame files are matched to labels by position, so one missing file would shift every
    later label. The number checked is the last run of digits in each file name; folders
    whose names hold no digits are only checked for being non-empty.
    """
    if not files:
        raise DatasetError(f"video '{name}' has no frames (no image file of {', '.join(IMAGE_EXTENSIONS)})")
    numbers = []
    for f in files:
        digits = re.findall(r"\d+", Path(f).stem)
        if not digits:
            return
        numbers.append(int(digits[-1]))
    for prev, cur, f_prev, f_cur in zip(numbers, numbers[1:], files, files[1:]):
        if cur != prev + 1:
            what = f"{cur - prev - 1} frame(s) missing" if cur > prev else "duplicate frame number"
            raise DatasetError(
                f"video '{name}': frame files are not consecutive: {Path(f_prev).name} is followed by "
                f"{Path(f_cur).name} ({what}) in {Path(f_cur).parent}")


def count_video_frames(path: Path) -> int:
    """Frames OpenCV decodes from a video file (decodes it: container counts can lie)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"cannot open video file {path}")
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


@contextlib.contextmanager
def accepting_truncated(accept: bool):
    """Within the block, datasets built without an explicit ``accept_truncated`` take ``accept``.

    ``build_dataset`` sets it from ``DATASET.ACCEPT_TRUNCATED``, so every dataset class (plugins
    included) follows the setting without having to pass it on.
    """
    token = _ACCEPT_TRUNCATED.set(bool(accept))
    try:
        yield
    finally:
        _ACCEPT_TRUNCATED.reset(token)


def truncated_accepted() -> bool:
    """The setting of the innermost :func:`accepting_truncated` block (False outside any)."""
    return _ACCEPT_TRUNCATED.get()


def claimed_frames(cap: cv2.VideoCapture) -> int | None:
    """The frame count an opened video's container claims, or None when it gives none."""
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(n) if math.isfinite(n) and n >= 1 else None


def frame_count_problem(path: Path, decoded: int, claimed: int | None) -> str | None:
    """What is wrong when a video file decodes to fewer frames than its container claims, or None.

    How exact the claim is depends on the container, so the shortfall tolerated does too:

    * AVI: the index lists every frame and every frame decodes: exact.
    * MP4, MOV, M4V: the sample table counts every frame, but an edit list may hide the first
      frame or two from the decoder: 2 frames.
    * Others (MKV, WebM, MPEG, WMV...): OpenCV estimates the count as duration x fps: 2 frames
      or 2 %, whichever is more. MPEG program streams estimate the duration from the file size,
      so a cut there is found only by the frame files' or the decoder's own checks; a count of 0
      (not given) is not checked.

    More frames than claimed is never a problem (nothing was lost).
    """
    if claimed is None or decoded >= claimed:
        return None
    ext = Path(path).suffix.lower()
    if ext in EXACT_COUNT_EXTENSIONS:
        tolerance = 0
    elif ext in INDEXED_COUNT_EXTENSIONS:
        tolerance = 2
    else:
        tolerance = max(2, math.ceil(0.02 * claimed))
    if claimed - decoded <= tolerance:
        return None
    return f"{path} decodes to {decoded} frames but its container claims {claimed} (truncated or damaged file)"


def frame_file_problem(path: Path, data: bytes | None = None) -> str | None:
    """What is wrong with a frame file's structure (empty, cut short), or None.

    ``data``: the file's bytes when already read; otherwise only its first and last bytes are
    read, and the whole file only when those do not already show a complete image. The format
    is told by the file's first bytes, not its name. A JPEG is complete when an end-of-image
    marker (FFD9) follows its last start-of-scan (FFDA; none at all: cut in its header): inside
    compressed data FF is always escaped, so a cut scan never holds one (bytes after the
    marker, as some cameras append, are fine). A PNG is complete when it holds its IEND chunk.
    """
    path = Path(path)
    if data is None:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
                size = f.seek(0, 2)
                f.seek(max(0, size - 64))
                tail = f.read()
        except OSError:
            return None  # a missing or unreadable file is reported by the reader
    else:
        size, head, tail = len(data), data[:8], data[-64:]
    if size == 0:
        return f"frame file {path} is empty (0 bytes)"
    if head[:2] == b"\xff\xd8":  # JPEG
        if tail.rstrip(b"\0").endswith(b"\xff\xd9"):
            return None  # the common case, from the last bytes
        data = path.read_bytes() if data is None else data
        last_scan = data.rfind(b"\xff\xda")
        if last_scan < 0 or data.rfind(b"\xff\xd9") < last_scan:
            return f"frame file {path} is truncated (a JPEG without its end-of-image marker)"
    elif head == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
        data = path.read_bytes() if data is None else data
        if data.rfind(b"IEND") < 0:
            return f"frame file {path} is truncated (a PNG without its IEND chunk)"
    return None


def report_truncated(video: str, problem: str, accept: bool) -> None:
    """Raise :class:`DatasetError` for a truncated file, or when ``accept``, log it as a warning."""
    if not accept:
        raise DatasetError(f"video '{video}': {problem}; {ACCEPT_HINT}")
    logger.warning("video '%s': %s; used as decoded (truncated media accepted)", video, problem)


def check_frame_count(video: str, path: Path, decoded: int, claimed: int | None, accept: bool) -> None:
    """The check every reader of a video file makes once it has decoded it to the end."""
    problem = frame_count_problem(path, decoded, claimed)
    if problem is not None:
        report_truncated(video, problem, accept)


def claimed_length(record: VideoRecord) -> int | None:
    """The frames a video claims without decoding it: its number of frame files, or its
    container's count (None when the container gives none)."""
    if not record.is_file:
        return len(record.source)
    cap = cv2.VideoCapture(str(record.source))
    claimed = claimed_frames(cap) if cap.isOpened() else None
    cap.release()
    return claimed


def claim_is_count(record: VideoRecord) -> bool:
    """Whether :func:`claimed_length` counts the video's frames (frame files, an AVI index, an
    MP4/MOV sample table) rather than estimating them (duration x fps)."""
    return not record.is_file or Path(record.source).suffix.lower() in EXACT_COUNT_EXTENSIONS + INDEXED_COUNT_EXTENSIONS


def media_check(record: VideoRecord, decoded: int, stop: int | None = None) -> tuple[int | None, list[str]]:
    """``(frames claimed, problems)`` of a video that decoded to ``decoded`` frames, of which only
    the first ``stop`` were asked for (None: all): :func:`claimed_length` and :func:`media_problems`.
    """
    claimed = claimed_length(record)
    return claimed, media_problems(record, decoded, claimed, stop)


def media_problems(record: VideoRecord, decoded: int, claimed: int | None, stop: int | None = None) -> list[str]:
    """What :func:`frame_count_problem` / :func:`frame_file_problem` find in what was read of a
    video that decoded to ``decoded`` frames and claims ``claimed`` (a video cut to its first
    ``stop`` frames is not checked for frames it never reached). Reads only the frame files'
    last bytes, so it is cheap enough to run on every build, including from the frame cache.
    """
    if record.is_file:
        reached_stop = stop is not None and decoded >= stop
        problem = None if reached_stop else frame_count_problem(Path(record.source), decoded, claimed)
        return [problem] if problem else []
    return [p for p in map(frame_file_problem, record.source[:stop]) if p is not None]


def probe(record: VideoRecord) -> VideoInfo:
    """Original size and frame rate of a video, read from its first frame or its container."""
    if record.is_file:
        cap = cv2.VideoCapture(str(record.source))
        if not cap.isOpened():
            raise DatasetError(f"video '{record.name}': cannot open {record.source}")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        cap.release()
        return VideoInfo(h, w, fps if fps > 0 else None)
    if not record.source:
        raise DatasetError(f"video '{record.name}' has no frames")
    img = cv2.imread(str(record.source[0]), cv2.IMREAD_UNCHANGED)  # the size only: no truncation check
    if img is None:
        img = _read_image(record.source[0], cv2.IMREAD_UNCHANGED, record.name)  # the error
    return VideoInfo(img.shape[0], img.shape[1], None)


def _read_image(path: Path, flag: int, video: str, accept_truncated: bool = False) -> np.ndarray:
    """One frame file decoded with ``cv2.imdecode(flag)``, after the structural check."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"video '{video}': missing frame file {path}") from None
    except OSError as exc:
        raise DatasetError(f"video '{video}': cannot read frame file {path} ({exc.strerror or exc})") from None
    problem = frame_file_problem(path, data)
    if problem is not None and not data:
        raise DatasetError(f"video '{video}': {problem}")  # nothing to use, even when accepted
    if problem is not None:
        report_truncated(video, problem, accept_truncated)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if img is None and problem is not None:  # imdecode refuses a cut JPEG that imread decodes, the rest grey
        img = cv2.imread(str(path), flag)
    if img is None:
        raise DatasetError(f"video '{video}': unreadable frame file {path} (corrupt or not an image)")
    return img


def prepare_frame(img: np.ndarray, size: Sequence[int], channels: int) -> np.ndarray:
    """A decoded frame (BGR, or gray as read) -> uint8 ``(H, W, C)`` at ``size = (H, W)``."""
    h, w = size
    if img.ndim == 3 and channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img.reshape(h, w, channels)


def decode(record: VideoRecord, size: Sequence[int], channels: int, accept_truncated: bool = False,
           stop: int | None = None) -> np.ndarray:
    """All frames of ``record`` (or its first ``stop``) as uint8 ``(N, H, W, C)`` at ``size = (H, W)``.

    Frames are converted to gray (``channels=1``) or RGB (``channels=3``), then resized with
    area interpolation. Raises :class:`DatasetError` for a file that cannot be opened or read,
    frames of different sizes within one video, a video without frames, and truncated media
    (see the module docstring) unless ``accept_truncated``, which logs them instead.
    """
    h, w = (int(s) for s in size)
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR  # 8-bit, alpha dropped
    frames: list[np.ndarray] = []
    first_shape = None

    def convert(img: np.ndarray, where: str) -> np.ndarray:
        nonlocal first_shape
        if first_shape is None:
            first_shape = img.shape[:2]
        elif img.shape[:2] != first_shape:
            raise DatasetError(
                f"video '{record.name}': {where} is {img.shape[1]}x{img.shape[0]} (WxH) but its first "
                f"frame is {first_shape[1]}x{first_shape[0]} (mixed frame sizes)")
        return prepare_frame(img, (h, w), channels)

    if record.is_file:
        cap = cv2.VideoCapture(str(record.source))
        if not cap.isOpened():
            what = "missing" if not Path(record.source).is_file() else "cannot open"
            raise DatasetError(f"video '{record.name}': {what} video file {record.source}")
        try:
            claimed = claimed_frames(cap)
            while stop is None or len(frames) < stop:
                ok, img = cap.read()
                if not ok:
                    break
                frames.append(convert(img, f"frame {len(frames)} of {record.source}"))
        finally:
            cap.release()
        if frames and (stop is None or len(frames) < stop):  # read to its end: all it claims must be there
            check_frame_count(record.name, Path(record.source), len(frames), claimed, accept_truncated)
    else:
        for f in record.source[:stop]:
            frames.append(convert(_read_image(f, flag, record.name, accept_truncated), f"frame file {f}"))
    if not frames:
        raise DatasetError(f"video '{record.name}' has no frames ({record.source} decodes to nothing)")
    return np.stack(frames)
