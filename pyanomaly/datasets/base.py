"""Videos with per-frame labels, decoded once into a cache, validated and cut into clips.

Every dataset is a :class:`VideoDataset` subclass that only says which videos a split holds
(:meth:`VideoDataset.list_videos`, returning :class:`VideoRecord` objects); decoding,
resizing, caching, validation and clip indexing are shared here.

Sample of a split (``__getitem__``)::

    {"frames": (T, C, H, W) float32 in [0, 1], "video": int, "frame": int,
     "flow": (T-1, 2, H, W) float32}                      only with ``flow`` (DATASET.FLOW)

where ``frame`` is the 0-based index of the clip's last frame in its video and ``flow[k]``
the optical flow (dx, dy in pixels) from clip frame ``k`` to ``k+1``, for a method to read
as input or as target. Test-time code reads whole videos with
:meth:`VideoDataset.video_frames` ``-> (N, C, H, W)``, :meth:`VideoDataset.video_flow`
``-> (N, 2, H, W)`` (NaN for the first frame, which has no flow) and
:meth:`VideoDataset.labels` ``-> (N,)`` uint8.

Cache: each video is decoded once at ``(image_size, channels)`` into
``cache_dir/<name>-<hash>.npy`` (uint8 ``(N, H, W, C)``), keyed by the source files' paths,
sizes and modification times (and, for a video cut by ``max_frames``, the frames kept); later
epochs, later runs and DataLoader workers open it with ``mmap`` and never decode again. A build
refuses at once when what it has to decode (or its flow) would not fit on the cache's disk. Optical flow (``flow``: ``{type, preset}``) is computed once
per video from the decoded frames into ``cache_dir/flow/<frames key>-<type>-<preset>-v<format
version>.npy`` (float16 ``(N, H, W, 2)``, NaN for frame 0): a flow of another algorithm,
preset, frame size or source, or of an older format, is never read for this one.

Example:
    >>> class MyData(VideoDataset):
    ...     def list_videos(self):
    ...         return [VideoRecord("cam1", Path(self.root) / "cam1.avi")]
    >>> ds = MyData("footage", split="testing", clip_length=5, image_size=(64, 64))
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pyanomaly.flow import OpticalFlow

from .array_cache import cached_npy, check_room, files_hash, frames_key, map_videos
from .frame_labels import frame_labels
from .video import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, DatasetError, VideoInfo, VideoRecord,  # noqa: F401
                    check_frame_files, claim_is_count, claimed_length, count_video_frames, decode,
                    media_problems, probe, report_truncated, sorted_frames, truncated_accepted)

logger = logging.getLogger(__name__)

# Bump when the flow cache's content changes (layout, dtype, how a flow is computed).
_FLOW_CACHE_VERSION = 1
# What to do when the decoded videos or their flow would not fit: {kept in memory: advice}
_ROOM_ADVICE = {False: "set DATASET.CACHE_DIR to a folder with room, or lower DATASET.IMAGE_SIZE",
                True: "set DATASET.CACHE_DIR to a folder on disk, or lower DATASET.IMAGE_SIZE"}


class VideoDataset(Dataset):
    """A split of videos, decoded at ``image_size`` into a cache, indexed as clips.

    Args:
        root: dataset folder.
        split: ``"training"`` or ``"testing"`` (subclasses map these to their layout).
        clip_length: frames per clip ``T``.
        image_size: ``(H, W)`` of the decoded frames.
        channels: 1 (grayscale) or 3 (RGB).
        clip_stride: step between the first frames of consecutive clips.
        frame_step: temporal subsampling inside a clip.
        cache_dir: folder of decoded uint8 arrays (``""``: ``$PYANOMALY_CACHE`` or
            ``~/.cache/pyanomaly``; ``None``: keep decoded videos in memory only).
        label_file: where the ground truth is read from, overriding the dataset's default
            (see each dataset); a relative path is taken from ``root``.
        accept_truncated: use truncated videos and frame files as decoded, with a warning each
            (see :mod:`pyanomaly.datasets.video`); None: the enclosing
            :func:`~pyanomaly.datasets.video.accepting_truncated` (``DATASET.ACCEPT_TRUNCATED``).
        flow: ``{type: dis | farneback, preset: ...}``: also give each clip's optical flow
            (:class:`~pyanomaly.flow.OpticalFlow`), cached; ``None`` = frames only.
        max_frames: read about this many frames of the split at most (0: all): when its videos
            claim more (frame files, or the containers' counts), only the first
            ``ceil(max_frames / videos)`` frames of each video are decoded, cached and indexed,
            and labels are cut alike. For a large training split (``TRAIN.MAX_FRAMES``,
            ``TRAIN.FIT_MAX_FRAMES``): the rest is never decoded.

    Raises:
        DatasetError: missing root, no videos, an empty or unreadable video, a truncated video
            or frame file, a gap in the frame numbering, mixed frame sizes, labels whose length
            differs from the video's.

    Attributes (after building): ``claimed`` frames per video (the container's count or the
    number of frame files; None when unknown) and ``truncated``: per video the problems found
    (empty unless truncated media are accepted, since otherwise they raise).
    """

    splits: tuple[str, ...] | None = ("training", "testing")  # None: any name (a folder under root)
    #: why the split has no labels (e.g. its label file is missing), when a subclass knows; the
    #: evaluation states it in the log and in ``metrics.json`` when every metric is n/a
    labels_missing: str | None = None
    #: per video name its anomalous events ``(kind, start, end)`` (0-based inclusive), when the
    #: dataset says which kind each anomaly is (``events.csv``: :mod:`.events`); None otherwise
    events: dict[str, list[tuple[str, int, int]]] | None = None

    def __init__(self, root: str | Path, split: str = "training", clip_length: int = 10,
                 image_size: Sequence[int] = (64, 64), channels: int = 1, clip_stride: int = 1,
                 frame_step: int = 1, cache_dir: str | Path | None = "",
                 label_file: str | Path | None = None, accept_truncated: bool | None = None,
                 flow: dict | None = None, max_frames: int = 0):
        self.root = Path(root)
        self.accept_truncated = truncated_accepted() if accept_truncated is None else bool(accept_truncated)
        self.split = split
        self.clip_length = int(clip_length)
        self.image_size = tuple(int(s) for s in image_size)
        self.channels = int(channels)
        self.clip_stride = int(clip_stride)
        self.frame_step = int(frame_step)
        if cache_dir == "":
            cache_dir = Path(os.environ.get("PYANOMALY_CACHE", Path.home() / ".cache" / "pyanomaly"))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.label_file = None
        if label_file:
            label_file = Path(label_file)
            self.label_file = label_file if label_file.is_absolute() else self.root / label_file
        try:
            self.optical_flow = OpticalFlow(**flow) if flow else None
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"DATASET.FLOW {flow}: {exc}") from None
        if self.optical_flow is not None and self.frame_step != 1:
            raise DatasetError(f"DATASET.FLOW needs consecutive frames (DATASET.FRAME_STEP 1), got FRAME_STEP "
                               f"{self.frame_step}: the cached flow is between consecutive frames")
        if self.splits is not None and split not in self.splits:
            raise DatasetError(f"{type(self).__name__}: split must be one of {self.splits}, got {split!r}")
        if not self.root.is_dir():
            raise DatasetError(f"dataset root not found: {self.root} (absolute: {self.root.absolute()})")
        self.videos: list[VideoRecord] = self.list_videos()
        if not self.videos:
            raise DatasetError(f"no videos found for split '{split}' under {self.root}")
        self._check_records()
        self.claimed: list[int | None] = [claimed_length(rec) for rec in self.videos]  # headers only
        self.max_frames = int(max_frames)
        self.stops = self._frame_budget()
        self._arrays: dict[int, np.ndarray] = {}
        self._cache_paths: dict[int, Path] = {}
        self._decoded_now: set[int] = set()  # decoded (and so checked) by this build, not read from the cache
        self._decode_all()
        self.lengths = [int(self._arrays[i].shape[0]) for i in range(len(self.videos))]
        self._check_media()
        self._flows: dict[int, np.ndarray] = {}
        if self.optical_flow is not None:
            self._flow_all()
        self._resolve_labels()
        span = (self.clip_length - 1) * self.frame_step + 1
        self.index = [(v, s) for v, n in enumerate(self.lengths)
                      for s in range(0, n - span + 1, self.clip_stride)]
        if not self.index:
            raise DatasetError(
                f"split '{split}' under {self.root}: no video is long enough for one clip of "
                f"{self.clip_length} frames (step {self.frame_step}); longest has {max(self.lengths)} frames")

    # -- what a subclass provides -------------------------------------------------------
    def list_videos(self) -> list[VideoRecord]:
        """The videos of ``self.split`` under ``self.root``, in a fixed order."""
        raise NotImplementedError

    # -- whole videos -------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [v.name for v in self.videos]

    @property
    def groups(self) -> list[str] | None:
        """Group name per video (e.g. ShanghaiTech scene ``"01"``), or None if not grouped."""
        groups = [v.group for v in self.videos]
        if all(g is None for g in groups):
            return None
        return [g if g is not None else "" for g in groups]

    def video_frames(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Frames ``start:stop`` (0-based; default all ``N``) of video ``i``: ``(n, C, H, W)`` float32 in [0, 1].

        Only that range is converted, so long videos can be streamed chunk by chunk.
        """
        return _to_tensor(self._array(i)[start:stop])

    def video_flow(self, i: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Optical flow into frames ``start:stop`` of video ``i``: ``(n, 2, H, W)`` float32 (dx, dy in
        pixels, from the frame before); NaN for frame 0, which has none. Needs ``flow``."""
        return _flow_tensor(self._flow(i)[start:stop])

    def labels(self, i: int) -> np.ndarray | None:
        """Per-frame labels ``(N,)`` uint8 of video ``i`` (1 = anomalous), or None if unknown."""
        return self.videos[i].labels

    def info(self, i: int) -> VideoInfo:
        """Original size and fps of video ``i`` (reads one frame or the container header)."""
        return probe(self.videos[i])

    # -- clips --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> dict:
        v, start = self.index[idx]
        stop = start + (self.clip_length - 1) * self.frame_step + 1
        clip = self._array(v)[start:stop:self.frame_step]
        sample = {"frames": _to_tensor(clip), "video": v, "frame": stop - 1}
        if self.optical_flow is not None:  # between the clip's frames: never the missing flow of frame 0
            sample["flow"] = _flow_tensor(self._flow(v)[start + 1:stop])
        return sample

    # -- decoding and cache -------------------------------------------------------------
    def _array(self, i: int) -> np.ndarray:
        arr = self._arrays.get(i)
        if arr is None:  # a DataLoader worker started by pickling: reopen the cache file
            arr = self._load_or_decode(i)
            self._arrays[i] = arr
        return arr

    def _frame_budget(self) -> list[int | None]:
        """Per video the frames to decode under ``max_frames`` (None: all of them)."""
        every: list[int | None] = [None] * len(self.videos)
        self.per_video: int | None = None  # frames kept of a video that is cut
        if self.max_frames <= 0:
            return every
        if None not in self.claimed and sum(self.claimed) <= self.max_frames:
            return every
        self.per_video = math.ceil(self.max_frames / len(self.videos))
        # a video whose container gives no count is cut too: decoding stops at its end if that comes first
        stops = [None if c is not None and c <= self.per_video else self.per_video for c in self.claimed]
        known = sum(c for c in self.claimed if c is not None)
        logger.info("max_frames %d: reading the first %d frames of each of the %d '%s' videos (%d cut; %d frames "
                    "claimed%s)", self.max_frames, self.per_video, len(self.videos), self.split,
                    sum(s is not None for s in stops), known, "" if None not in self.claimed else " by those that say")
        return stops

    def _frames_key(self, i: int) -> str:
        return frames_key(self.videos[i], self.image_size, self.channels, self.stops[i])

    def _decode_all(self) -> None:
        todo = list(range(len(self.videos)))
        if self.cache_dir is not None:
            for i in todo:
                self._cache_paths[i] = self.cache_dir / f"{self._frames_key(i)}.npy"
            missing = [i for i in todo if not self._cache_paths[i].is_file()]
            if missing:
                logger.info("decoding %d of %d '%s' videos into the cache %s (once)",
                            len(missing), len(todo), self.split, self.cache_dir)
        else:
            missing = todo
        if missing:  # a video whose container only estimates its frame count is left out of the estimate
            frames = sum(min(c, self.stops[i] or c) for i in missing
                         if (c := self.claimed[i]) is not None and claim_is_count(self.videos[i]))
            h, w = self.image_size
            check_room(self.cache_dir, frames * h * w * self.channels,
                       f"decoding {len(missing)} '{self.split}' videos ({frames} frames at {h}x{w}x{self.channels}, "
                       "uint8)", _ROOM_ADVICE[self.cache_dir is None])
        arrays = map_videos(self._load_or_decode, todo, f"decoding '{self.split}'" if missing else None)
        self._arrays = dict(zip(todo, arrays))

    def _load_or_decode(self, i: int) -> np.ndarray:
        record = self.videos[i]
        path = self._cache_paths.get(i)

        def decode_now() -> np.ndarray:
            self._decoded_now.add(i)
            return decode(record, self.image_size, self.channels, self.accept_truncated, self.stops[i])
        if path is None:
            return decode_now()
        expected = (*self.image_size, self.channels)
        return cached_npy(path, lambda a: a.dtype == np.uint8 and a.ndim == 4 and a.shape[1:] == expected, decode_now,
                          "frame cache")

    # -- optical flow and its cache ------------------------------------------------------
    def _flow(self, i: int) -> np.ndarray:
        if self.optical_flow is None:
            raise DatasetError(f"{type(self).__name__} '{self.split}' holds no optical flow: set DATASET.FLOW "
                               "(e.g. {type: dis, preset: medium})")
        arr = self._flows.get(i)
        if arr is None:  # a DataLoader worker started by pickling: reopen the cache file
            arr = self._load_or_compute_flow(i)
            self._flows[i] = arr
        return arr

    def flow_cache_path(self, i: int) -> Path | None:
        """Where video ``i``'s flow is cached (None without a cache): keyed by the frames' cache key,
        the algorithm and preset, and the flow cache's format version."""
        if self.cache_dir is None or self.optical_flow is None:
            return None
        return self.cache_dir / "flow" / f"{self._frames_key(i)}-{self.optical_flow.key()}-v{_FLOW_CACHE_VERSION}.npy"

    def _flow_all(self) -> None:
        todo = list(range(len(self.videos)))
        missing = [i for i in todo if (p := self.flow_cache_path(i)) is None or not p.is_file()]
        if missing:
            where = "" if self.cache_dir is None else f" into the cache {self.cache_dir} (once)"
            logger.info("computing %s optical flow of %d of %d '%s' videos%s", self.optical_flow.key(), len(missing),
                        len(todo), self.split, where)
            frames, (h, w) = sum(self.lengths[i] for i in missing), self.image_size
            check_room(None if self.cache_dir is None else self.cache_dir / "flow", frames * h * w * 2 * 2,
                       f"the optical flow of {len(missing)} '{self.split}' videos ({frames} frames at {h}x{w}, "
                       "2 float16)", _ROOM_ADVICE[self.cache_dir is None])
        arrays = map_videos(self._load_or_compute_flow, todo,
                            f"{self.optical_flow.key()} flow of '{self.split}'" if missing else None)
        self._flows = dict(zip(todo, arrays))

    def _load_or_compute_flow(self, i: int) -> np.ndarray:
        path = self.flow_cache_path(i)
        expected = (self.lengths[i], *self.image_size, 2)

        def compute() -> np.ndarray:  # one OpticalFlow per video: OpenCV's flow objects are not shared across threads
            return OpticalFlow(**self.optical_flow.spec()).video(np.asarray(self._array(i))).astype(np.float16)
        if path is None:
            return compute()
        return cached_npy(path, lambda a: a.dtype == np.float16 and a.shape == expected, compute, "flow cache")

    def cached_array(self, tag: str, files: Sequence[Path], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` once, then from the cache while ``files`` are unchanged.

        For labels derived from big annotation files (pixel masks): a subclass calls this in
        ``list_videos``. Without a cache it just calls ``compute()``.
        """
        if self.cache_dir is None:
            return compute()
        path = self.cache_dir / "labels" / f"{tag}-{files_hash(files, 'labels')}.npy"
        return cached_npy(path, lambda a: True, compute, "label cache", mmap=False)

    def __getstate__(self) -> dict:
        # Workers started by pickling (spawn) reopen cache files instead of copying arrays.
        state = self.__dict__.copy()
        state["_arrays"] = {i: a for i, a in self._arrays.items() if not isinstance(a, np.memmap)}
        state["_flows"] = {i: a for i, a in self._flows.items() if not isinstance(a, np.memmap)}
        return state

    # -- validation ---------------------------------------------------------------------
    def _check_records(self) -> None:
        seen: dict[str, int] = {}
        for rec in self.videos:
            if rec.name in seen:
                raise DatasetError(f"split '{self.split}' under {self.root}: two videos named '{rec.name}'")
            seen[rec.name] = 1
            if not rec.is_file:
                check_frame_files(rec.name, rec.source)
            elif not Path(rec.source).is_file():
                raise DatasetError(f"video '{rec.name}': missing video file {rec.source}")

    def _check_media(self) -> None:
        """Frames decoded vs claimed, and the frame files' structure, for every video.

        :func:`decode` checks as it decodes; this runs on every build because the frame cache
        is keyed by the files' sizes and times, not by whether truncated media were accepted
        when it was written. It reads only headers and the files' last bytes.
        """
        self.truncated: dict[str, list[str]] = {}
        for i, (rec, n) in enumerate(zip(self.videos, self.lengths)):
            problems = media_problems(rec, n, self.claimed[i], self.stops[i])
            if i not in self._decoded_now:  # decode() has reported these already
                for problem in problems:
                    report_truncated(rec.name, problem, self.accept_truncated)
            if problems:
                self.truncated[rec.name] = problems

    def _resolve_labels(self) -> None:
        for rec, n, stop in zip(self.videos, self.lengths, self.stops):
            # a video cut by max_frames goes on past what was read: its labels do too
            rec.labels = frame_labels(rec, n, cut=stop is not None and n == stop)


def generate_on_first_use(root: str | Path, name: str, make: Callable[..., object], generator: dict | None) -> Path:
    """Write a generated dataset with ``make(root, **generator)`` when ``root`` is missing or empty."""
    root = Path(root)
    if not root.exists() or not any(root.iterdir()):
        logger.info("generating the %s dataset at %s (first use)", name, root)
        make(root, **(generator or {}))
    return root


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, C) -> float32 (..., C, H, W) in [0, 1]."""
    # One copy: channels moved and converted to float together (the cache is a read-only mmap).
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, -3), dtype=np.float32)).div_(255.0)


def _flow_tensor(arr: np.ndarray) -> torch.Tensor:
    """float16 (..., H, W, 2) -> float32 (..., 2, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, -3), dtype=np.float32))
