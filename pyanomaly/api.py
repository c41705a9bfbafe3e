"""The Python API: train a method, load a checkpoint, score a video or follow a stream.

``pyanomaly.load`` rebuilds the method from the config a checkpoint carries (checkpoints
written by training and by ``pyanomaly export`` hold it under ``meta["config"]``); an older
checkpoint without one needs the YAML it was trained with. See ``docs/api.md``.

Example:
    >>> import pyanomaly
    >>> pyanomaly.train("configs/prednet.yaml", TRAIN__MAX_STEPS=10)        # -> metrics
    >>> det = pyanomaly.load("outputs/prednet/checkpoints/best.pth")
    >>> result = det.score("my_clip.avi")          # result.scores: (N,) one per frame
    >>> for frame, score, alarm in det.stream("my_clip.avi"):
    ...     ...
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

import numpy as np
import torch

from pyanomaly.config import CfgNode, cfg_from_dict, cfg_to_dict, load_cfg
from pyanomaly.datasets.sources import (LiveSettings, LiveSource, StreamSource, find_sources, frame_rate, prepare,
                                        read_chunks, to_tensor)
from pyanomaly.engine import launch
from pyanomaly.engine.checkpoint import check_compatible, load_checkpoint, load_model_weights
from pyanomaly.errors import CheckpointError, ConfigError, DatasetError
from pyanomaly.evaluation.maps import MapRecorder
from pyanomaly.models.build import build_model, model_meta
from pyanomaly.registry import import_plugins
from pyanomaly.scoring.alarms import AlarmTracker
from pyanomaly.scoring.build import build_scorer, build_stream_pipeline, build_video_scorer
from pyanomaly.utils import resolve_device

__all__ = ["Detector", "Scores", "StreamFrame", "checkpoint_cfg", "load", "train", "make_cfg"]


def make_cfg(cfg: str | Path | CfgNode | Mapping | None = None, overrides: Mapping[str, Any] | None = None,
             **kw: Any) -> CfgNode:
    """A checked, frozen config from a YAML path, a config, or a mapping of sections, plus overrides.

    Overrides are config keys with values: ``{"TRAIN.MAX_STEPS": 10}`` as a mapping, or the same
    as keyword arguments with ``__`` for the dot, ``TRAIN__MAX_STEPS=10``. A value is a Python
    value (a string is read as on the command line: ``"[64, 64]"`` is a list).
    """
    return _cfg_with(cfg, _opts(overrides, kw))


def _opts(overrides: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> list[Any]:
    """Overrides as a mapping and as ``SECTION__KEY=value`` keywords -> ``[KEY, VALUE, ...]``."""
    opts: list[Any] = []
    for key, value in [*(overrides or {}).items(), *((k.replace("__", "."), v) for k, v in kw.items())]:
        opts += [key, value]
    return opts


def _cfg_with(cfg: str | Path | CfgNode | Mapping | None, opts: list[Any]) -> CfgNode:
    """:func:`make_cfg` with overrides as a ``[KEY, VALUE, ...]`` list (as on the command line)."""
    if cfg is None or isinstance(cfg, (str, Path)):
        return load_cfg(cfg, opts)
    if isinstance(cfg, CfgNode):
        cfg = cfg_to_dict(cfg)
    if isinstance(cfg, Mapping):
        return cfg_from_dict(dict(cfg), opts)
    raise ConfigError(f"a config is a YAML path, a CfgNode or a mapping of sections, got {type(cfg).__name__}")


def train(cfg: str | Path | CfgNode | Mapping, overrides: Mapping[str, Any] | None = None, *, resume: bool = False,
          **kw: Any) -> dict | None:
    """Train as ``pyanomaly train`` does; returns the final metrics (``metrics.json``'s content).

    ``cfg``: a YAML path, a config or a mapping of sections; overrides as in :func:`make_cfg`,
    e.g. ``train("configs/prednet.yaml", TRAIN__MAX_STEPS=10, SYSTEM__OUTPUT_DIR="outputs/quick")``.
    The run directory is ``SYSTEM.OUTPUT_DIR``; its checkpoints carry the config.
    """
    path = str(cfg) if isinstance(cfg, (str, Path)) else None
    return launch.train(make_cfg(cfg, overrides, **kw), resume=resume, config_path=path)


@dataclass
class Scores:
    """One video's per-frame results, all ``(N,)``, one entry per frame of the source.

    ``frames``: 0-based frame index (int64); ``errors``: the raw error (``SCORE.ERROR``, e.g. PSNR
    in dB), NaN where the method makes no prediction (the first frames of its history);
    ``scores``: the anomaly score, higher = more anomalous, NaN where none (``SCORE.MISSING``);
    ``maps``: with ``score(..., maps=True)``, each frame's per-pixel error map ``(N, h, w)``
    float16 (the scorer's ``error_map``, higher = more anomalous, averaged over
    ``EVAL.MAPS_DOWNSAMPLE`` blocks), NaN where no prediction; else None.
    """

    frames: np.ndarray
    errors: np.ndarray
    scores: np.ndarray
    maps: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frames.size)


class StreamFrame(NamedTuple):
    """One frame of a stream: index (0-based), score (NaN while none yet), alarm active at it."""

    frame: int
    score: float
    alarm: bool


class Detector:
    """A trained method ready to score videos (made by :func:`load`).

    Attributes: ``cfg`` (the frozen config), ``model`` (the method, eval mode), ``device``,
    ``checkpoint`` (its path).
    """

    def __init__(self, cfg: CfgNode, model: torch.nn.Module, device: torch.device, checkpoint: str | Path):
        self.cfg, self.model, self.device, self.checkpoint = cfg, model, device, Path(checkpoint)

    def __repr__(self) -> str:
        size = "x".join(map(str, self.cfg.DATASET.IMAGE_SIZE))
        return f"Detector({self.cfg.MODEL.NAME}, {size}x{self.cfg.DATASET.CHANNELS}, {self.checkpoint}, {self.device})"

    def score(self, source: str | Path | np.ndarray, maps: bool = False) -> Scores:
        """Score every frame of one whole video with the offline protocol (``SCORE.*``).

        ``source``: a video file, a folder of frame images, or frames as a uint8 array
        ``(N, H, W)`` or ``(N, H, W, C)`` (C = 3 in BGR order, as OpenCV decodes; any size:
        resized to ``DATASET.IMAGE_SIZE`` as the datasets do). The offline protocol is that of
        ``pyanomaly test`` (e.g. per-video min-max normalisation and two-sided smoothing), so the
        scores of a file match its evaluation; it needs the whole video, which :meth:`stream`
        does not. ``maps``: also return where each frame is anomalous (``Scores.maps``, as
        ``pyanomaly score --maps`` saves them); a scorer of one number per frame
        (``SCORE.ERROR FRAME_ERROR``) has none and is refused.
        """
        loop = build_video_scorer(self.cfg, self.model, self.device, maps="score(maps=True)" if maps else None)
        recorder = MapRecorder(self.cfg.EVAL.MAPS_DOWNSAMPLE) if maps else None
        try:
            result = loop.score((to_tensor(frames) for frames in self._chunks(source, self.cfg.TEST.CHUNK)),
                                None if recorder is None else lambda chunk: recorder.add(chunk.maps))
            return Scores(np.arange(result.frames, dtype=np.int64), result.errors, result.scores,
                          None if recorder is None else recorder.array())
        finally:
            if recorder is not None:
                recorder.close()

    def stream(self, source: str | Path | np.ndarray | Iterable[np.ndarray], fps: float | None = None,
               chunk: int | None = None) -> Iterator[StreamFrame]:
        """Yield ``StreamFrame(frame, score, alarm)`` per frame, as each is scored (live protocol, ``STREAM.*``).

        Every score uses earlier frames only (a causal normaliser, one-sided smoothing), so it is
        final when yielded; ``alarm`` follows ``STREAM.ALARM_THRESHOLD`` / ``STREAM.ALARM_MIN_FRAMES``.
        ``source``: as for :meth:`score`, a live source as a string (a camera index ``"0"`` or an
        ``rtsp://``/``http(s)://`` URL, read in a thread with reconnection and a bounded queue as
        ``pyanomaly score`` reads it: ``STREAM.QUEUE_SIZE``, ``STREAM.RECONNECT_*``), or any iterable
        of frames ``(H, W[, C])`` uint8 (a camera loop of your own), which is scored frame by frame
        as it comes (files and arrays in ``TEST.CHUNK`` chunks, live sources what has arrived up to
        that, or ``chunk``). ``fps``: for the alarms' times (default ``STREAM.FPS``, the source's, 25).
        Stopping the iteration stops a live source's reading.
        """
        scorer = build_scorer(self.cfg)
        loop = build_video_scorer(self.cfg, self.model, self.device,
                                  build_stream_pipeline(self.cfg, scorer.higher_is_anomalous), scorer)
        st = self.cfg.STREAM
        if isinstance(source, (str, Path)):
            source = _source(source, LiveSettings.from_stream_cfg(st))  # opened once: fps and frames
        if fps is None:
            fps, _ = frame_rate(st.FPS, source if isinstance(source, (StreamSource, LiveSource)) else None)
        size = chunk or (self.cfg.TEST.CHUNK if isinstance(source, (StreamSource, LiveSource, np.ndarray)) else 1)
        run = loop.start()
        tracker = AlarmTracker(st.ALARM_THRESHOLD, st.ALARM_MIN_FRAMES, fps)
        for frames in self._chunks(source, size):
            pushed = run.push(to_tensor(frames))
            active = tracker.push(pushed.scores)
            for i in range(len(frames)):
                yield StreamFrame(pushed.start + i, float(pushed.scores[i]), bool(active[i]))

    def _chunks(self, source, size: int) -> Iterator[np.ndarray]:
        """``source`` as uint8 ``(n, H, W, C)`` chunks at the model's size and channels."""
        image_size, channels = tuple(self.cfg.DATASET.IMAGE_SIZE), self.cfg.DATASET.CHANNELS
        if isinstance(source, (str, Path)):
            source = _source(source, LiveSettings.from_stream_cfg(self.cfg.STREAM))
        if isinstance(source, (StreamSource, LiveSource)):
            for frames, _ in read_chunks(source, size, image_size, channels,
                                         accept_truncated=self.cfg.DATASET.ACCEPT_TRUNCATED):
                yield frames
            return
        if isinstance(source, np.ndarray):
            if source.ndim not in (3, 4) or source.dtype != np.uint8 or len(source) == 0:
                raise DatasetError(f"frames must be a non-empty uint8 array (N, H, W) or (N, H, W, C), got "
                                   f"{source.dtype} {source.shape}")
            source = iter(source)
        batch: list[np.ndarray] = []
        for img in source:
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim not in (2, 3):
                raise DatasetError(f"a frame must be a uint8 array (H, W) or (H, W, C), got {img.dtype} {img.shape}")
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[..., 0]
            if img.ndim == 2 and channels == 3:
                img = np.repeat(img[..., None], 3, axis=2)  # gray to a colour model: equal channels
            batch.append(prepare(img, image_size, channels))
            if len(batch) == size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)


def _source(path: str | Path, live: LiveSettings) -> StreamSource | LiveSource:
    """The one video at ``path`` (a file, a frame folder, a camera index or a URL)."""
    sources = find_sources(path, live)
    if len(sources) != 1:
        raise DatasetError(f"{path} holds {len(sources)} videos; score one video at a time, e.g. "
                           f"[det.score(p) for p in sorted(Path({str(path)!r}).iterdir())]")
    return sources[0]


def checkpoint_cfg(checkpoint: str | Path, cfg: str | Path | CfgNode | Mapping | None = None,
                   opts: list[Any] | tuple = (), ckpt: dict | None = None) -> CfgNode:
    """The config to use ``checkpoint`` with: ``cfg`` (a YAML path, a config or a mapping) when
    given, else the one the checkpoint carries (``meta["config"]``), with ``opts`` overrides
    (``[KEY, VALUE, ...]``). ``ckpt``: the checkpoint already loaded. A checkpoint written before
    checkpoints carried their config needs ``cfg`` (:class:`CheckpointError` otherwise)."""
    if cfg is None:
        ckpt = load_checkpoint(checkpoint) if ckpt is None else ckpt
        cfg = ckpt.get("meta", {}).get("config")
        if cfg is None:
            raise CheckpointError(f"checkpoint {checkpoint} carries no config (it was written before checkpoints "
                                  "stored theirs): pass the YAML it was trained with, e.g. "
                                  f"pyanomaly.load({str(checkpoint)!r}, cfg='configs/<recipe>.yaml') or "
                                  "pyanomaly score --cfg configs/<recipe>.yaml ..., or export it once with one: "
                                  "pyanomaly export SRC DST --cfg configs/<recipe>.yaml")
    return _cfg_with(cfg, list(opts))


def load(checkpoint: str | Path, cfg: str | Path | CfgNode | Mapping | None = None, *, device: str | None = None,
         overrides: Mapping[str, Any] | None = None, **kw: Any) -> Detector:
    """The method of ``checkpoint`` with its weights, in eval mode, ready to score.

    The config is the one the checkpoint carries (``meta["config"]``), unless ``cfg`` (a YAML
    path, a config or a mapping) is given; a checkpoint written before checkpoints carried their
    config needs ``cfg``. Either is checked against the checkpoint (method, arguments, image size,
    channels). Overrides as in :func:`make_cfg` change how it scores, e.g.
    ``STREAM__ALARM_THRESHOLD=2.0``. ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (default:
    ``SYSTEM.DEVICE`` of a given ``cfg``, else ``"auto"``).
    """
    ckpt = load_checkpoint(checkpoint)
    config = checkpoint_cfg(checkpoint, cfg, _opts(overrides, kw), ckpt)
    if cfg is None:
        device = device or "auto"  # the machine that trained it may have had a GPU this one lacks
        search = [Path.cwd()]
    else:
        device = device or config.SYSTEM.DEVICE
        search = [Path.cwd()] + ([Path(cfg).resolve().parent] if isinstance(cfg, (str, Path)) else [])
    import_plugins(config.SYSTEM.IMPORTS, search)  # a method or network of the user's registers here
    check_compatible(ckpt, model_meta(config), checkpoint)
    dev = resolve_device(device)
    model = build_model(config, dev)
    load_model_weights(model, ckpt, checkpoint)
    return Detector(config, model.eval(), dev, checkpoint)
