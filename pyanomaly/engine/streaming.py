"""Scoring a user's own video as a stream: ``tools/score_video.py``.

Frames are read one chunk at a time (``TEST.CHUNK``), resized as the datasets do
(:func:`pyanomaly.datasets.video.decode`: gray or RGB, ``INTER_AREA`` to
``DATASET.IMAGE_SIZE``), and fed to ``model.predict_stream`` with its state carried, so each
frame is predicted once and never from a later frame. Scores use causal normalisation
(``SCORE.CAUSAL_*``) and, with ``SCORE.SMOOTH_SIGMA > 0``, causal smoothing: the score of a
frame is final the moment the frame is read. Alarms follow ``SCORE.ALARM_THRESHOLD`` and
``SCORE.ALARM_MIN_FRAMES`` (:mod:`pyanomaly.scoring.alarms`).

Output folder::

    frame_scores.csv   video, frame, time_s, error, score (one row per frame; empty = none)
    alarms.json        per video: fps, frames, alarm segments; the threshold and the protocol
    plots/<video>.png  score curve with the threshold and the alarms shaded
    annotated/<video>.mp4   with --render: frames with a score bar, red border during alarms
    config.yaml, log.txt

Example:
    >>> scorer = StreamScorer(model, build_scorer(cfg), stream_pipeline(cfg, False), device)
    >>> for frames in chunks: error, score = scorer.push(frames)    # (n, C, H, W) -> (n,), (n,)
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from tqdm import tqdm
from yacs.config import CfgNode

from pyanomaly.config import save_cfg
from pyanomaly.datasets.video import (VIDEO_EXTENSIONS, DatasetError, _read_image, check_frame_files, prepare_frame,
                                      sorted_frames)
from pyanomaly.evaluation.export import file_stems, csv_text
from pyanomaly.evaluation.overlay import VideoRenderer
from pyanomaly.evaluation.plots import plot_video
from pyanomaly.scoring import AlarmTracker, ScorePipeline
from pyanomaly.utils import atomic_write, atomic_write_text

from .checkpoint import check_compatible, load_checkpoint, load_model_weights
from .inference import build_normalizer, build_scorer, error_description
from .inference import precision as inference_precision
from .launch import build_model, model_meta, setup

logger = logging.getLogger("pyanomaly")

DEFAULT_FPS = 25.0
STREAM_FIELDS = ("video", "frame", "time_s", "error", "score")


# -- inputs ----------------------------------------------------------------------------------
@dataclass
class StreamSource:
    """One input video: a file OpenCV decodes, or a frame folder (``frames``: its files in order)."""

    name: str
    path: Path
    frames: list[Path] | None = None

    def fps(self) -> float | None:
        if self.frames is not None:
            return None
        cap = cv2.VideoCapture(str(self.path))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
        cap.release()
        return fps if fps > 0 else None

    def announced_frames(self) -> int | None:
        """Frame count for the progress bar (a container's count may be off; never used for results)."""
        if self.frames is not None:
            return len(self.frames)
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        return n if n > 0 else None


def find_sources(path: str | Path) -> list[StreamSource]:
    """``--video``: a video file, a frame folder (image files), or a folder of video files."""
    path = Path(path)
    if path.is_file():
        return [StreamSource(path.stem, path)]
    if not path.is_dir():
        raise FileNotFoundError(f"--video: no such file or folder: {path}")
    images = sorted_frames(path)
    if images:
        check_frame_files(path.name, images)
        return [StreamSource(path.name, path, images)]
    videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))
    if not videos:
        raise DatasetError(f"--video: {path} holds neither image files nor video files ({', '.join(VIDEO_EXTENSIONS)})")
    return [StreamSource(p.stem, p) for p in videos]


def prepare(img: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """A decoded frame -> uint8 ``(H, W, C)`` exactly as the datasets' decode does."""
    return prepare_frame(img, size, channels)


def read_chunks(source: StreamSource, chunk: int, size: tuple[int, int], channels: int,
                keep_original: bool = False) -> Iterator[tuple[np.ndarray, list[np.ndarray] | None]]:
    """Yield ``(frames (n, H, W, C) uint8 at size, originals BGR or None)`` chunk by chunk."""
    first_shape = None

    def check(img: np.ndarray, where: str) -> None:
        nonlocal first_shape
        if first_shape is None:
            first_shape = img.shape[:2]
        elif img.shape[:2] != first_shape:
            raise DatasetError(f"video '{source.name}': {where} is {img.shape[1]}x{img.shape[0]} (WxH) but its first "
                               f"frame is {first_shape[1]}x{first_shape[0]} (mixed frame sizes)")

    if source.frames is not None:
        flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR  # as decode() reads frame files
        for s in range(0, len(source.frames), chunk):
            files = source.frames[s:s + chunk]
            imgs = [_read_image(f, flag, source.name) for f in files]
            for f, img in zip(files, imgs):
                check(img, f"frame file {f}")
            originals = [_read_image(f, cv2.IMREAD_COLOR, source.name) for f in files] if keep_original else None
            yield np.stack([prepare(img, size, channels) for img in imgs]), originals
        return
    cap = cv2.VideoCapture(str(source.path))
    if not cap.isOpened():
        raise DatasetError(f"video '{source.name}': OpenCV cannot open {source.path}")
    try:
        done = False
        index = 0
        while not done:
            batch, originals = [], []
            while len(batch) < chunk:
                ok, img = cap.read()
                if not ok:
                    done = True
                    break
                check(img, f"frame {index} of {source.path}")
                index += 1
                batch.append(prepare(img, size, channels))
                if keep_original:
                    originals.append(img)
            if batch:
                yield np.stack(batch), originals if keep_original else None
    finally:
        cap.release()
    if index == 0:
        raise DatasetError(f"video '{source.name}': {source.path} decodes to no frames")


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(n, H, W, C)`` -> float32 ``(n, C, H, W)`` in [0, 1] (as the datasets return)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, -3), dtype=np.float32)).div_(255.0)


# -- scoring ----------------------------------------------------------------------------------
def stream_pipeline(cfg: CfgNode, higher_is_anomalous: bool) -> ScorePipeline:
    """Causal normalisation (``SCORE.CAUSAL_*``) and causal smoothing of ``SCORE.SMOOTH_SIGMA``; no fill."""
    return ScorePipeline(build_normalizer(cfg, "causal"), higher_is_anomalous, cfg.SCORE.SMOOTH_SIGMA, "causal",
                         "exclude")


class StreamScorer:
    """Model + scorer + causal pipeline over one stream; ``push`` the frames as they come.

    Args:
        model: a method with ``predict_stream`` (see :mod:`pyanomaly.models.base`).
        scorer: raw error ``(pred, frame) -> (n,)`` with ``higher_is_anomalous``.
        pipeline: a causal :class:`~pyanomaly.scoring.ScorePipeline`.
        device: where the model runs.
        precision: ``TEST.PRECISION`` (``"fp32"`` or ``"bf16"``).
        fused_update: ``TEST.FUSED_UPDATE`` (the LSTM update as one compiled pass).
    """

    def __init__(self, model, scorer, pipeline: ScorePipeline, device: torch.device, precision: str = "fp32",
                 fused_update: bool = False):
        if not pipeline.causal:
            raise ValueError("a stream needs a causal scoring pipeline")
        self.model, self.scorer, self.device, self.precision = model, scorer, device, precision
        self.fused_update = fused_update
        self.stream = pipeline.stream()
        self.state = None
        self.frames = 0

    @torch.no_grad()
    def push(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Raw error ``(n,)`` (NaN: no prediction) and score ``(n,)`` (NaN: none yet) of ``frames`` ``(n, C, H, W)``."""
        x = frames.to(self.device)
        with inference_precision(self.precision, self.device, self.fused_update):
            pred, valid, self.state = self.model.predict_stream(x, self.state)
        pred = pred.float()
        valid = valid.cpu().numpy().astype(bool)
        error = np.where(valid, self.scorer(pred, x).double().cpu().numpy(), np.nan)
        self.frames += x.shape[0]
        return error, self.stream.push(error, valid)


def load_for_stream(cfg: CfgNode, checkpoint: str | Path, device: torch.device):
    """The method of ``cfg`` with the weights of ``checkpoint``, in eval mode.

    A checkpoint made for another method, arguments, ``DATASET.IMAGE_SIZE`` or
    ``DATASET.CHANNELS`` is refused (:func:`~pyanomaly.engine.checkpoint.check_compatible`).
    """
    ckpt = load_checkpoint(checkpoint)
    check_compatible(ckpt, model_meta(cfg), checkpoint)
    model = build_model(cfg, device)
    load_model_weights(model, ckpt, checkpoint)
    return model.eval()


def score_video(cfg: CfgNode, checkpoint: str | Path, video: str | Path, out_dir: str | Path,
                render: bool = False, config_path: str | None = None) -> dict:
    """Score every frame of ``video`` (file, frame folder or folder of videos) as a stream; write ``out_dir``.

    Returns the content of ``alarms.json``.
    """
    out = Path(out_dir)
    if render and cfg.TEST.RENDER_FORMAT not in ("mp4", "avi"):
        raise ValueError(f"TEST.RENDER_FORMAT must be 'mp4' or 'avi', got {cfg.TEST.RENDER_FORMAT!r}")
    sources = find_sources(video)  # a bad --video fails before anything is written
    device, _, _ = setup(cfg, config_path, output_dir=out)
    save_cfg(cfg, out / "config.yaml")
    model = load_for_stream(cfg, checkpoint, device)
    scorer = build_scorer(cfg)
    pipeline = stream_pipeline(cfg, scorer.higher_is_anomalous)
    if cfg.SCORE.NORMALIZE != "causal" or (cfg.SCORE.SMOOTH_SIGMA > 0 and cfg.SCORE.SMOOTH_MODE != "causal"):
        logger.info("a stream is scored causally: SCORE.NORMALIZE %s / SCORE.SMOOTH_MODE %s do not apply here",
                    cfg.SCORE.NORMALIZE, cfg.SCORE.SMOOTH_MODE)
    size, channels = tuple(cfg.DATASET.IMAGE_SIZE), cfg.DATASET.CHANNELS
    threshold, min_frames = cfg.SCORE.ALARM_THRESHOLD, cfg.SCORE.ALARM_MIN_FRAMES
    rows: list[dict] = []
    summary = {
        "threshold": threshold, "min_frames": min_frames,
        "rule": f"an alarm is >= {min_frames} consecutive frames with score > {threshold:g}; it is raised at its "
                f"{min_frames}-th frame (raised_frame); frames are 0-based, times are frame / fps",
        "checkpoint": str(checkpoint),
        "protocol": {"error": error_description(cfg), "higher_error_is_anomalous": scorer.higher_is_anomalous,
                     **pipeline.describe(), "image_size": list(size), "channels": channels},
        "videos": [],
        "complete": False,
    }
    interrupted = False
    try:
        for source, stem in zip(sources, file_stems([s.name for s in sources])):
            summary["videos"].append(_score_one(cfg, model, scorer, pipeline, device, source, stem, out, render, rows))
        summary["complete"] = True
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: writing the frames scored so far")
    finally:
        atomic_write_text(out / "frame_scores.csv", csv_text(rows, STREAM_FIELDS))
        atomic_write_text(out / "alarms.json", json.dumps(summary, indent=2))
    if interrupted:
        raise KeyboardInterrupt
    export = getattr(model, "write_stream_outputs", None)
    if export is not None:  # what a method makes of the stream besides scores (STREAMER: events.json)
        export(out, [v["video"] for v in summary["videos"]])
    total = sum(len(v["alarms"]) for v in summary["videos"])
    logger.info("wrote %s: frame_scores.csv (%d frames), alarms.json (%d alarms)%s", out, len(rows), total,
                ", annotated/" if render else "")
    return summary


def _score_one(cfg, model, scorer, pipeline, device, source: StreamSource, stem: str, out: Path,
               render: bool, rows: list[dict]) -> dict:
    fps, fps_source = (cfg.TEST.FPS, "TEST.FPS") if cfg.TEST.FPS > 0 else (source.fps(), "the video file")
    if fps is None:
        fps, fps_source = DEFAULT_FPS, f"assumed ({DEFAULT_FPS:g}; the input gives none: set TEST.FPS)"
        logger.warning("video '%s' has no frame rate; assuming %g fps (set TEST.FPS)", source.name, fps)
    stream = StreamScorer(model, scorer, pipeline, device, cfg.TEST.PRECISION, cfg.TEST.FUSED_UPDATE)
    tracker = AlarmTracker(cfg.SCORE.ALARM_THRESHOLD, cfg.SCORE.ALARM_MIN_FRAMES, fps)
    renderer = None
    scores: list[np.ndarray] = []
    bar = tqdm(total=source.announced_frames(), desc=source.name, unit="frame", disable=not cfg.LOG.PROGRESS,
               dynamic_ncols=True)
    start, n = time.perf_counter(), 0
    try:
        for frames, originals in read_chunks(source, cfg.TEST.CHUNK, tuple(cfg.DATASET.IMAGE_SIZE),
                                             cfg.DATASET.CHANNELS, keep_original=render):
            error, score = stream.push(to_tensor(frames))
            active = tracker.push(score)
            for i in range(len(frames)):
                t = n + i
                rows.append({"video": source.name, "frame": t, "time_s": round(t / fps, 4),
                             "error": float(error[i]) if np.isfinite(error[i]) else None,
                             "score": float(score[i]) if np.isfinite(score[i]) else None})
            if render:
                if renderer is None:
                    ext = cfg.TEST.RENDER_FORMAT
                    renderer = VideoRenderer(out / "annotated" / f"{stem}.{ext}", fps, originals[0].shape[:2],
                                             cfg.SCORE.ALARM_THRESHOLD)
                for i, img in enumerate(originals):
                    renderer.write(img, n + i, (n + i) / fps, float(score[i]), bool(active[i]))
            scores.append(score)
            n += len(frames)
            bar.update(len(frames))
    finally:
        bar.close()
        if renderer is not None:
            renderer.close()
    seconds = time.perf_counter() - start
    segments = tracker.finish()
    all_scores = np.concatenate(scores) if scores else np.empty(0)
    spans = [(a["start_frame"], a["end_frame"]) for a in segments]
    png = out / "plots" / f"{stem}.png"
    atomic_write(png, lambda tmp: plot_video(tmp, source.name, all_scores, None, threshold=cfg.SCORE.ALARM_THRESHOLD,
                                             threshold_label="alarm threshold", alarms=spans))
    logger.info("video '%s': %d frames in %.1f s (%.1f frames/s), %d alarm(s)", source.name, n, seconds,
                n / max(seconds, 1e-9), len(segments))
    return {"video": source.name, "source": str(source.path), "frames": n,
            "frames_scored": int(np.isfinite(all_scores).sum()), "fps": fps, "fps_source": fps_source,
            "frames_per_second_processed": round(n / max(seconds, 1e-9), 2),
            "annotated": str(Path("annotated") / f"{stem}.{cfg.TEST.RENDER_FORMAT}") if render else None,
            "plot": str(Path("plots") / f"{stem}.png"), "alarms": segments}
