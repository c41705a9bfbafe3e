"""Scoring a user's own videos as streams: ``tools/score_video.py``.

Frames are read one chunk at a time (``TEST.CHUNK``; :mod:`pyanomaly.datasets.sources`) and
go through the same scoring loop as an evaluation (:class:`~pyanomaly.scoring.video.VideoScorer`)
with the live protocol of ``STREAM.*``: a causal normaliser and, with ``STREAM.SMOOTH_SIGMA >
0``, one-sided smoothing, so the score of a frame is final the moment the frame is read.
Alarms follow ``STREAM.ALARM_THRESHOLD`` and ``STREAM.ALARM_MIN_FRAMES``
(:mod:`pyanomaly.scoring.alarms`). The run logs the ``STREAM`` section and writes it to
``config.yaml`` and ``alarms.json``.

Several sources are scored together through one model: their chunks are taken in turns
(one from each source that has one) and predicted in shared forward passes
(:meth:`~pyanomaly.scoring.video.VideoScorer.push_many`), each source with its own model
state, normaliser, alarms, plot and annotated video, so every score is the one it would get
scored alone. A source is a :class:`Stream`: a name, a frame rate and an iterator of chunks
``(frames (n, H, W, C) uint8 at DATASET.IMAGE_SIZE, originals BGR or None)``;
:func:`open_stream` makes one of a video file or frame folder. A method that holds its
stream state in the module (``concurrent_streams = False``, STREAMER) scores the sources
one after another.

A live source (camera index, rtsp/http URL; :mod:`pyanomaly.datasets.live`) is scored as it
arrives; ``max_frames`` and ``duration`` end a video (live or not) cleanly, outputs written as
for a whole file.

Output folder::

    frame_scores.csv   video, frame, time_s, error, score (one row per frame, videos in the
                       order given; empty = none)
    alarms.json        per video: fps, frames, alarm segments, latency (p50/p95/max ms from capture
                       to score), frames dropped and reconnects (live sources), why it ended;
                       the threshold, the protocol and the backend
    plots/<video>.png  score curve with the threshold and the alarms shaded
    maps/<video>.npy   with --maps: each frame's per-pixel error map (N, h, w) float16, NaN where
                       no prediction, averaged over EVAL.MAPS_DOWNSAMPLE blocks
    annotated/<video>.mp4   with --render: frames with a score bar, red border during alarms; with
                       --maps too, the map as a heat overlay (scaled causally: evaluation/heatmap.py)
    config.yaml, log.txt
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import yaml
from yacs.config import CfgNode

from pyanomaly.config import cfg_to_dict, save_cfg
from pyanomaly.datasets.sources import (LiveSettings, LiveSource, StreamSource, frame_rate, open_sources, read_chunks,
                                        to_tensor)
from pyanomaly.deploy.onnx import onnxruntime_method
from pyanomaly.errors import ConfigError, DatasetError
from pyanomaly.evaluation.export import csv_text, file_stems
from pyanomaly.models.build import build_model, model_meta
from pyanomaly.scoring.build import build_scorer, build_stream_pipeline, build_video_scorer, check_maps, describe_error
from pyanomaly.scoring.video import VideoScorer
from pyanomaly.utils import atomic_write_text

from .checkpoint import check_compatible, load_checkpoint, load_model_weights
from .session import setup
from .stream_output import StreamOutput

logger = logging.getLogger("pyanomaly")

STREAM_FIELDS = ("video", "frame", "time_s", "error", "score")
#: what runs the method's network: PyTorch, or its ONNX export in onnxruntime
BACKENDS = ("torch", "onnxruntime")


# -- the model -------------------------------------------------------------------------------
def check_backend(cfg: CfgNode, backend: str) -> None:
    """Refuse an unknown ``backend`` or one that cannot honour ``cfg`` (naming the key)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime" and cfg.TEST.PRECISION != "fp32":
        raise ConfigError(f"TEST.PRECISION {cfg.TEST.PRECISION} is a PyTorch autocast setting; the onnxruntime "
                          "backend runs the exported float32 graph: set TEST.PRECISION fp32")


def load_for_stream(cfg: CfgNode, checkpoint: str | Path, device: torch.device, backend: str = "torch"):
    """The method of ``cfg`` with the weights of ``checkpoint``, in eval mode.

    A checkpoint made for another method, arguments, ``DATASET.IMAGE_SIZE`` or
    ``DATASET.CHANNELS`` is refused (:func:`~pyanomaly.engine.checkpoint.check_compatible`).
    ``backend`` ``"onnxruntime"``: the method with its network exported to ONNX and run by
    onnxruntime (:func:`~pyanomaly.deploy.onnx.onnxruntime_method`); same interface.
    """
    check_backend(cfg, backend)
    ckpt = load_checkpoint(checkpoint)
    check_compatible(ckpt, model_meta(cfg), checkpoint)
    model = build_model(cfg, device)
    load_model_weights(model, ckpt, checkpoint)
    if backend == "onnxruntime":
        return onnxruntime_method(model.eval(), None, cfg.DATASET.IMAGE_SIZE, cfg.DATASET.CHANNELS)
    return model.eval()


@dataclass
class Stream:
    """One source of :func:`score_video`.

    Attributes:
        name: the video's name in ``frame_scores.csv`` and ``alarms.json`` (unique in a run).
        source: where it comes from (a path or an address), as written in ``alarms.json``.
        fps: frames per second, for times; ``fps_source`` says where it came from.
        chunks: yields ``(frames (n, H, W, C) uint8 at DATASET.IMAGE_SIZE, originals)``, the
            original BGR frames a list when rendering, else None (``n = 0``: nothing new yet,
            skipped this round); the stream ends with it. It is asked for one chunk per round,
            in turn with the other streams, so a live source should hand over what it has
            rather than wait long.
        announced_frames: frame count for the progress bar, if known (never used for results).
        live: the live source behind it (its capture times, drops, reconnects), or None.
    """

    name: str
    source: str
    fps: float
    fps_source: str
    chunks: Iterator[tuple[np.ndarray, list[np.ndarray] | None]]
    announced_frames: int | None = None
    live: LiveSource | None = None

    def __post_init__(self):
        self.chunks = iter(self.chunks)

    def close(self) -> None:
        """Stop reading (a live source's reader thread ends)."""
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def open_stream(cfg: CfgNode, source: StreamSource | LiveSource, render: bool = False,
                duration: float | None = None) -> Stream:
    """A video file, frame folder or live source as a :class:`Stream`: up to ``TEST.CHUNK`` frames
    per chunk, resized to ``DATASET.IMAGE_SIZE``, at ``STREAM.FPS`` or the source's own frame rate.
    ``duration``: seconds from the stream's first chunk after which a live source stops waiting."""
    fps, fps_source = frame_rate(cfg.STREAM.FPS, source)
    if fps_source.startswith("assumed"):
        logger.warning("video '%s' has no frame rate; assuming %g fps (set STREAM.FPS)", source.name, fps)

    def chunks():  # the deadline starts when the stream is first asked for frames
        deadline = None if duration is None else time.monotonic() + duration
        yield from read_chunks(source, cfg.TEST.CHUNK, tuple(cfg.DATASET.IMAGE_SIZE), cfg.DATASET.CHANNELS,
                               keep_original=render, deadline=deadline, accept_truncated=cfg.DATASET.ACCEPT_TRUNCATED)

    return Stream(source.name, str(source.path), fps, fps_source, chunks(), source.announced_frames(),
                  source if isinstance(source, LiveSource) else None)


def score_video(cfg: CfgNode, checkpoint: str | Path, video: str | Path | Stream | Sequence[str | Path | Stream],
                out_dir: str | Path, render: bool = False, config_path: str | None = None,
                max_frames: int | None = None, duration: float | None = None, backend: str = "torch",
                maps: bool = False) -> dict:
    """Score every frame of ``video`` as a stream; write ``out_dir``. Returns the content of ``alarms.json``.

    ``video``: one or several of a video file, a frame folder, a folder of videos, a camera
    index (``"0"``), an rtsp(s)/http(s) URL or a :class:`Stream`; all their videos are scored
    together, through one model (see the module docstring). ``max_frames`` / ``duration``
    (seconds): end each video after that many frames or that long (a live source otherwise
    runs until it ends or is given up, or Ctrl-C). ``backend``: what runs the network,
    ``"torch"`` or ``"onnxruntime"`` (see :func:`load_for_stream`). ``maps``: write each video's
    per-pixel error maps to ``maps/`` and, with ``render``, draw them over the annotated frames.
    """
    out = Path(out_dir)
    check_backend(cfg, backend)
    items = list(video) if isinstance(video, (list, tuple)) else [video]
    # a bad --video fails before anything is written
    live = LiveSettings.from_stream_cfg(cfg.STREAM)
    sources = [[s] if isinstance(s, Stream) else open_sources(s, live) for s in items]
    _check_names([s.name for group in sources for s in group],
                 [str(s.source if isinstance(s, Stream) else s.path) for group in sources for s in group])
    scorer = build_scorer(cfg)
    if maps:  # a scorer without maps (FRAME_ERROR) fails before anything is written
        check_maps(scorer, cfg.SCORE.ERROR, "--maps")
    pipeline = build_stream_pipeline(cfg, scorer.higher_is_anomalous)  # a non-causal STREAM.NORMALIZE fails here
    device, _, _ = setup(cfg, config_path, output_dir=out)
    save_cfg(cfg, out / "config.yaml")
    logger.info("live protocol (STREAM): %s", yaml.safe_dump(cfg_to_dict(cfg.STREAM), default_flow_style=True,
                                                             width=10**6).strip())
    model = load_for_stream(cfg, checkpoint, device, backend)
    logger.info("backend: %s", backend)
    loop = build_video_scorer(cfg, model, device, pipeline, scorer, maps="--maps" if maps else None)
    streams = [s if isinstance(s, Stream) else open_stream(cfg, s, render, duration)
               for group in sources for s in group]
    st = cfg.STREAM
    summary = {
        "threshold": st.ALARM_THRESHOLD, "min_frames": st.ALARM_MIN_FRAMES,
        "rule": f"an alarm is >= {st.ALARM_MIN_FRAMES} consecutive frames with score > {st.ALARM_THRESHOLD:g}; it is "
                f"raised at its {st.ALARM_MIN_FRAMES}-th frame (raised_frame); frames are 0-based, times are "
                "frame / fps",
        "checkpoint": str(checkpoint),
        "backend": backend,
        "protocol": {"error": describe_error(cfg), "higher_error_is_anomalous": scorer.higher_is_anomalous,
                     **pipeline.describe(), "image_size": list(cfg.DATASET.IMAGE_SIZE),
                     "channels": cfg.DATASET.CHANNELS},
        "stream_settings": cfg_to_dict(cfg.STREAM),
        "stop": {"max_frames": max_frames, "duration_s": duration},
        "latency": "per video (and per alarm at raised_frame): milliseconds from a frame's capture (live: read "
                   "from the stream, queue wait included; file: its chunk read) to its score being available",
        "videos": [],
        "complete": False,
    }
    outputs: list[StreamOutput | None] = [None] * len(streams)
    interrupted = False
    start = time.perf_counter()
    try:
        score_streams(cfg, loop, streams, out, render, outputs, max_frames, duration)
        summary["complete"] = True
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: writing the frames scored so far")
    finally:
        for stream in streams:
            stream.close()
        for o in outputs:
            if o is not None and o.entry is None:
                if interrupted:  # the videos being scored keep their summary
                    o.finish("interrupted")
                else:
                    o.abort()
        done = [o for o in outputs if o is not None]
        summary["videos"] = [o.entry for o in done if o.entry is not None]
        rows = [r for o in done for r in o.rows]
        atomic_write_text(out / "frame_scores.csv", csv_text(rows, STREAM_FIELDS))
        atomic_write_text(out / "alarms.json", json.dumps(summary, indent=2))
    if interrupted:
        raise KeyboardInterrupt
    own = getattr(model, "write_outputs", None)
    if own is not None:  # what a method makes of the stream besides scores (STREAMER: events.json)
        own(out, [v["video"] for v in summary["videos"]], "stream")
    total = sum(len(v["alarms"]) for v in summary["videos"])
    seconds = time.perf_counter() - start
    logger.info("wrote %s: frame_scores.csv (%d frames of %d video(s), %.1f frames/s in all), alarms.json "
                "(%d alarms)%s%s", out, len(rows), len(streams), len(rows) / max(seconds, 1e-9), total,
                ", maps/" if maps else "", ", annotated/" if render else "")
    return summary


def _check_names(names: list[str], paths: list[str]) -> None:
    seen: dict[str, str] = {}
    for name, path in zip(names, paths):
        if name in seen:
            raise DatasetError(f"--video: two videos are named '{name}' ({seen[name]} and {path}); the rows of "
                               "frame_scores.csv would mix them: give one another name")
        seen[name] = path


def score_streams(cfg: CfgNode, loop: VideoScorer, streams: Sequence[Stream], out: Path, render: bool,
                  outputs: list | None = None, max_frames: int | None = None,
                  duration: float | None = None) -> list[dict]:
    """Score ``streams`` together; their ``alarms.json`` entries, in order. ``outputs`` (one slot
    per stream) receives each stream's outputs as it starts, so that a caller can write what
    was scored when it is interrupted. ``max_frames`` / ``duration``: end each stream after
    that many frames or seconds.

    Streams are taken in turns: one chunk from each running stream, predicted in one
    :meth:`~pyanomaly.scoring.video.VideoScorer.push_many` call. All streams run at once,
    unless the method holds its stream state in the module (``concurrent_streams`` False):
    then one after another. A ``loop`` that keeps maps writes each stream's ``maps/<stem>.npy``
    (and draws them on its annotated video).
    """
    outputs = outputs if outputs is not None else [None] * len(streams)
    stems = file_stems([s.name for s in streams])
    limit = len(streams) if getattr(loop.model, "concurrent_streams", True) else 1
    waiting, running = deque(range(len(streams))), []
    while waiting or running:
        while waiting and len(running) < limit:
            k = waiting.popleft()
            outputs[k] = StreamOutput(cfg, streams[k], stems[k], out, render, loop.start(), position=len(running),
                                       max_frames=max_frames, duration=duration)
            running.append(k)
        batch = []
        for k in list(running):
            item = next(streams[k].chunks, None)
            if item is None:
                outputs[k].finish()
                running.remove(k)
            elif len(item[0]):  # a live source may have nothing new yet
                frames, originals = outputs[k].take(*item)
                batch.append((k, frames, originals, outputs[k].captured(len(frames))))
        if batch:
            chunks = loop.push_many([outputs[k].run for k, *_ in batch], [to_tensor(f) for _, f, _, _ in batch])
            for (k, _, originals, captured), chunk in zip(batch, chunks):
                outputs[k].add(chunk, originals, captured)
                if outputs[k].ended is not None:  # max_frames or duration reached
                    streams[k].close()
                    outputs[k].finish()
                    running.remove(k)
    return [o.entry for o in outputs]
