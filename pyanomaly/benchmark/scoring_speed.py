"""End-to-end scoring speed of a published model on a real video: decode, every cue, the score.

A checkpoint (which carries its recipe) scores one video as ``pyanomaly score`` does: frames
are read and resized by the stream reader (:func:`~pyanomaly.datasets.sources.read_chunks`,
``TEST.CHUNK`` at a time), then pushed through the scoring loop (the method's predictions,
the recipe's error, a causal pipeline). Reported per frame: the decode time, the scoring time
and, for a method that combines cues (:class:`~pyanomaly.models.fusion.Fusion`), each cue's
share (its method's predictions; the error measures and the fusion are the rest), measured
twice: with the cues computed one after another, then in parallel threads (where their
shares overlap). Frames/s end to end = frames / (decode + scoring). One warm-up chunk is scored first, outside the timing
(first-call costs: weight packing, allocation). The weights, the frames and the protocol are
the real ones, so the scores are computed as in a real run.

Example:
    >>> rows = scoring_speed("checkpoints/ped2_cues.pth", "../shared/data/ped2/testing/frames/01")
    >>> [(r["cues"], r["fps"], r["cues_ms"]) for r in rows]
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

__all__ = ["scoring_speed", "format_scoring_speed"]


class _Timed:
    """Wraps a cue method's ``predict_streams`` and adds up the seconds it takes."""

    def __init__(self, method):
        self.method, self.seconds = method, 0.0
        self._call = method.predict_streams

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._call(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def scoring_speed(checkpoint: str | Path, video: str | Path, device: str = "cpu", frames: int = 0,
                  log: Callable[[str], None] = print) -> list[dict]:
    """Rows ``{checkpoint, method, video, frames, size, threads, cues, decode_ms, score_ms,
    cues_ms, fps, score_fps}`` of ``checkpoint`` scoring ``video`` (its first ``frames`` frames;
    0 = all): one row, or for a method with cues two (``cues`` "one after another", "parallel")."""
    from pyanomaly.api import load
    from pyanomaly.datasets.sources import open_sources, read_chunks, to_tensor
    from pyanomaly.scoring.build import build_scorer, build_stream_pipeline
    from pyanomaly.scoring.video import VideoScorer

    detector = load(checkpoint, device=device)
    cfg, model = detector.cfg, detector.model
    source = open_sources(video)[0]
    log(f"  scoring speed: {Path(checkpoint).name} ({cfg.MODEL.NAME}) on {source.name} ...")
    size, channels, chunk = tuple(cfg.DATASET.IMAGE_SIZE), cfg.DATASET.CHANNELS, cfg.TEST.CHUNK
    start = time.perf_counter()
    chunks, read = [], 0
    for batch, _ in read_chunks(source, chunk, size, channels):
        if frames:
            batch = batch[:frames - read]
        chunks.append(to_tensor(batch))
        read += batch.shape[0]
        if frames and read >= frames:
            break
    decode = time.perf_counter() - start
    if read == 0:
        raise ValueError(f"{video}: no frame to score")
    scorer = build_scorer(cfg)
    loop = VideoScorer(model, scorer, build_stream_pipeline(cfg, scorer.higher_is_anomalous), detector.device,
                       cfg.TEST.PRECISION)
    cues = getattr(model, "cues", None)
    names = list(getattr(model, "names", [f"cue {i}" for i in range(len(cues or []))]))
    modes = [False, True] if hasattr(model, "parallel") else [None]
    rows = []
    for parallel in modes:
        if parallel is not None:
            model.parallel = parallel
        with torch.inference_mode():
            loop.start().push(chunks[0])  # warm-up, outside the timing
            timers = [_Timed(m) for m in cues] if cues is not None else []
            for t in timers:
                t.method.predict_streams = t
            try:
                run, start = loop.start(), time.perf_counter()
                for x in chunks:
                    run.push(x)
                run.finish()
                score = time.perf_counter() - start
            finally:
                for t in timers:
                    del t.method.predict_streams  # the class's method again
        rows.append({"checkpoint": str(checkpoint), "method": cfg.MODEL.NAME, "video": str(video), "frames": read,
                     "size": "x".join(map(str, size)), "threads": torch.get_num_threads(),
                     "cues": {None: "-", False: "one after another", True: "parallel"}[parallel],
                     "decode_ms": 1000 * decode / read, "score_ms": 1000 * score / read,
                     "cues_ms": {n: 1000 * t.seconds / read for n, t in zip(names, timers)},
                     "fps": read / (decode + score), "score_fps": read / score})
    return rows


def format_scoring_speed(rows: list[dict]) -> str:
    """A Markdown table of :func:`scoring_speed` rows."""
    lines = ["| checkpoint | method | frames | cues | decode ms/frame | scoring ms/frame | of which, per cue "
             "(ms/frame) | frames/s end to end |", "|---|---|---:|---|---:|---:|---|---:|"]
    for r in rows:
        cues = ", ".join(f"{n} {ms:.1f}" for n, ms in r["cues_ms"].items()) or "-"
        lines.append(f"| {Path(r['checkpoint']).name} | {r['method']} | {r['frames']} | {r['cues']} | "
                     f"{r['decode_ms']:.1f} | "
                     f"{r['score_ms']:.1f} | {cues} | {r['fps']:.1f} |")
    return "\n".join(lines)
