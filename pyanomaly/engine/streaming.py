"""Scoring a user's own video as a stream: ``tools/score_video.py``.

Frames are read one chunk at a time (``TEST.CHUNK``; :mod:`pyanomaly.datasets.sources`) and
go through the same scoring loop as an evaluation (:class:`~pyanomaly.scoring.video.VideoScorer`)
with the live protocol of ``STREAM.*``: a causal normaliser and, with ``STREAM.SMOOTH_SIGMA >
0``, one-sided smoothing, so the score of a frame is final the moment the frame is read.
Alarms follow ``STREAM.ALARM_THRESHOLD`` and ``STREAM.ALARM_MIN_FRAMES``
(:mod:`pyanomaly.scoring.alarms`). The run logs the ``STREAM`` section and writes it to
``config.yaml`` and ``alarms.json``.

Output folder::

    frame_scores.csv   video, frame, time_s, error, score (one row per frame; empty = none)
    alarms.json        per video: fps, frames, alarm segments, latency (p50/p95/max ms from capture
                       to score), frames dropped and reconnects (live sources), why it ended;
                       the threshold and the protocol
    plots/<video>.png  score curve with the threshold and the alarms shaded
    annotated/<video>.mp4   with --render: frames with a score bar, red border during alarms
    config.yaml, log.txt

A live source (camera index, rtsp/http URL; :mod:`pyanomaly.datasets.live`) is scored as it
arrives; ``max_frames`` and ``duration`` end a video (live or not) cleanly, outputs written as
for a whole file.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm
from yacs.config import CfgNode

from pyanomaly.config import cfg_to_dict, save_cfg
from pyanomaly.datasets.sources import (LiveSettings, LiveSource, StreamSource, frame_rate, open_sources, read_chunks,
                                        to_tensor)
from pyanomaly.deploy.onnx import onnxruntime_method
from pyanomaly.errors import ConfigError
from pyanomaly.evaluation.export import csv_text, file_stems
from pyanomaly.evaluation.overlay import VideoRenderer
from pyanomaly.evaluation.plots import plot_video
from pyanomaly.models.build import build_model, model_meta
from pyanomaly.scoring import AlarmTracker
from pyanomaly.scoring.build import build_scorer, build_stream_pipeline, build_video_scorer, describe_error
from pyanomaly.scoring.video import VideoScorer
from pyanomaly.utils import atomic_write, atomic_write_text

from .checkpoint import check_compatible, load_checkpoint, load_model_weights
from .latency import LatencyLog
from .session import setup

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


def score_video(cfg: CfgNode, checkpoint: str | Path, video: str | Path | list[str | Path], out_dir: str | Path,
                render: bool = False, config_path: str | None = None, max_frames: int | None = None,
                duration: float | None = None, backend: str = "torch") -> dict:
    """Score every frame of ``video`` as a stream; write ``out_dir``.

    ``video``: one or several of a file, a frame folder, a folder of videos, a camera index
    (``"0"``) or an rtsp(s)/http(s) URL, scored one after the other. ``max_frames`` /
    ``duration`` (seconds): end each video after that many frames or that long (a live source
    otherwise runs until it ends or is given up, or Ctrl-C). ``backend``: what runs the
    network, ``"torch"`` or ``"onnxruntime"`` (see :func:`load_for_stream`). Returns the
    content of ``alarms.json``.
    """
    out = Path(out_dir)
    check_backend(cfg, backend)
    sources = open_sources(video, LiveSettings.from_stream_cfg(cfg.STREAM))  # a bad --video fails before any write
    scorer = build_scorer(cfg)
    pipeline = build_stream_pipeline(cfg, scorer.higher_is_anomalous)  # a non-causal STREAM.NORMALIZE fails here
    device, _, _ = setup(cfg, config_path, output_dir=out)
    save_cfg(cfg, out / "config.yaml")
    logger.info("live protocol (STREAM): %s", yaml.safe_dump(cfg_to_dict(cfg.STREAM), default_flow_style=True,
                                                             width=10**6).strip())
    model = load_for_stream(cfg, checkpoint, device, backend)
    logger.info("backend: %s", backend)
    loop = build_video_scorer(cfg, model, device, pipeline, scorer)
    st = cfg.STREAM
    rows: list[dict] = []
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
    interrupted = False
    try:
        for source, stem in zip(sources, file_stems([s.name for s in sources])):
            summary["videos"].append(_score_one(cfg, loop, source, stem, out, render, rows, max_frames, duration))
            if summary["videos"][-1]["ended"] == "interrupted":  # Ctrl-C: this video's summary is kept
                raise KeyboardInterrupt
        summary["complete"] = True
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: writing the frames scored so far")
    finally:
        atomic_write_text(out / "frame_scores.csv", csv_text(rows, STREAM_FIELDS))
        atomic_write_text(out / "alarms.json", json.dumps(summary, indent=2))
    if interrupted:
        raise KeyboardInterrupt
    own = getattr(model, "write_outputs", None)
    if own is not None:  # what a method makes of the stream besides scores (STREAMER: events.json)
        own(out, [v["video"] for v in summary["videos"]], "stream")
    total = sum(len(v["alarms"]) for v in summary["videos"])
    logger.info("wrote %s: frame_scores.csv (%d frames), alarms.json (%d alarms)%s", out, len(rows), total,
                ", annotated/" if render else "")
    return summary


def _score_one(cfg: CfgNode, loop: VideoScorer, source: StreamSource | LiveSource, stem: str, out: Path,
               render: bool, rows: list[dict], max_frames: int | None = None, duration: float | None = None) -> dict:
    st = cfg.STREAM
    fps, fps_source = frame_rate(st.FPS, source)
    if fps_source.startswith("assumed"):
        logger.warning("video '%s' has no frame rate; assuming %g fps (set STREAM.FPS)", source.name, fps)
    run = loop.start()
    tracker = AlarmTracker(st.ALARM_THRESHOLD, st.ALARM_MIN_FRAMES, fps)
    renderer = None
    bar = tqdm(total=source.announced_frames(), desc=source.name, unit="frame", disable=not cfg.LOG.PROGRESS,
               dynamic_ncols=True)
    start = time.perf_counter()
    deadline = None if duration is None else time.monotonic() + duration
    latency, ended, done = LatencyLog(), "end of video", 0
    chunks = read_chunks(source, cfg.TEST.CHUNK, tuple(cfg.DATASET.IMAGE_SIZE), cfg.DATASET.CHANNELS,
                         keep_original=render, deadline=deadline, accept_truncated=cfg.DATASET.ACCEPT_TRUNCATED)
    try:
        for frames, originals in chunks:
            arrived = time.monotonic()
            if max_frames is not None and done + len(frames) > max_frames:
                frames = frames[:max_frames - done]
                originals = originals[:len(frames)] if originals is not None else None
            chunk = run.push(to_tensor(frames))
            captured = getattr(source, "capture_times", None)  # live: per frame; a file: when the chunk came
            ms = latency.add(captured[:len(frames)] if captured is not None else np.full(len(frames), arrived),
                             time.monotonic())
            logger.debug("video '%s': frames %d-%d, latency %.1f-%.1f ms", source.name, done, done + len(frames) - 1,
                         ms.min(), ms.max())
            done += len(frames)
            error, score = chunk.errors, chunk.scores
            active = tracker.push(score)
            for i in range(len(frames)):
                t = chunk.start + i
                rows.append({"video": source.name, "frame": t, "time_s": round(t / fps, 4),
                             "error": float(error[i]) if np.isfinite(error[i]) else None,
                             "score": float(score[i]) if np.isfinite(score[i]) else None})
            if render:
                if renderer is None:
                    renderer = VideoRenderer(out / "annotated" / f"{stem}.{st.RENDER_FORMAT}", fps,
                                             originals[0].shape[:2], st.ALARM_THRESHOLD)
                for i, img in enumerate(originals):
                    t = chunk.start + i
                    renderer.write(img, t, t / fps, float(score[i]), bool(active[i]))
            bar.update(len(frames))
            if max_frames is not None and done >= max_frames:
                ended = "max_frames"
                break
            if deadline is not None and time.monotonic() >= deadline:
                ended = "duration"
                break
        else:
            if isinstance(source, LiveSource):  # the stream's end, given up, or --duration while waiting
                ended = source.ended if source.ended in ("end of stream", "stream lost") else "duration"
    except KeyboardInterrupt:
        ended = "interrupted"
    finally:
        chunks.close()  # a live source stops reading here
        bar.close()
        if renderer is not None:
            renderer.close()
    seconds = time.perf_counter() - start
    result = run.finish()
    n = result.frames
    segments = tracker.finish()
    spans = [(a["start_frame"], a["end_frame"]) for a in segments]
    png = out / "plots" / f"{stem}.png"
    atomic_write(png, lambda tmp: plot_video(tmp, source.name, result.scores, None, threshold=st.ALARM_THRESHOLD,
                                             threshold_label="alarm threshold", alarms=spans))
    logger.info("video '%s': %d frames in %.1f s (%.1f frames/s), %d alarm(s)", source.name, n, seconds,
                n / max(seconds, 1e-9), len(segments))
    for a in segments:
        a["raised_latency_ms"] = round(latency.ms[a["raised_frame"]], 1)
    lat = latency.summary()
    live = {"frames_read": source.read, "frames_dropped": source.dropped, "reconnects": source.reconnects} \
        if isinstance(source, LiveSource) else {}
    logger.info("video '%s': ended (%s); latency capture->score %s%s", source.name, ended,
                "p50 {p50_ms} ms, p95 {p95_ms} ms, max {max_ms} ms".format(**lat) if lat else "-",
                "".join(f", {k.replace('_', ' ')} {v}" for k, v in live.items()))
    return {"video": source.name, "source": str(source.path), "live": isinstance(source, LiveSource), "frames": n,
            "frames_scored": int(np.isfinite(result.scores).sum()), "fps": fps, "fps_source": fps_source,
            "frames_per_second_processed": round(n / max(seconds, 1e-9), 2),
            "annotated": str(Path("annotated") / f"{stem}.{st.RENDER_FORMAT}") if render else None,
            "plot": str(Path("plots") / f"{stem}.png"), "ended": ended, "latency": lat, **live,
            "alarms": segments}
