"""Several live streams through one model: total frames/s of one batched process against one process per stream.

N synthetic streams of a benchmark model's frame size are scored as ``tools/score_video.py``
scores several sources: each round takes the next ``chunk`` frames of every stream and
predicts them in one :meth:`~pyanomaly.scoring.video.VideoScorer.push_many` call (each stream
with its own state and causal normaliser; the recipe's error). The same N streams are then
scored by N processes at once, one stream each (``VideoRun.push``), started together and
given ``threads // N`` threads each (at least one), so that together they use the cores the
batched process uses and do not oversubscribe them. Frames are random (speed does not depend
on them); weights are random (the recipe's network). A stream is real time at ``stream_fps``
when the batched process scores ``N * stream_fps`` frames/s.

Example:
    >>> rows = multi_stream(torch.device("cpu"), "unet_ped2", streams=(1, 2, 4), seconds=5)
"""
from __future__ import annotations

import math
import multiprocessing as mp
import time
from typing import Callable, Sequence

import torch

from .recipes import MODEL_CONFIGS, BenchConfig, build_model

__all__ = ["multi_stream"]


def _scoring_loop(bench: BenchConfig, mode: str, device: torch.device, precision: str):
    """The model of ``bench`` in ``mode`` and its live scoring loop (the recipe's error, a causal pipeline)."""
    from pyanomaly.scoring.build import build_scorer, build_stream_pipeline
    from pyanomaly.scoring.video import VideoScorer

    cfg = bench.load(mode)
    model = build_model(bench, mode, device)
    scorer = build_scorer(cfg)
    return VideoScorer(model, scorer, build_stream_pipeline(cfg, scorer.higher_is_anomalous), device, precision)


def _videos(bench: BenchConfig, count: int, frames: int = 24) -> list[torch.Tensor]:
    c, h, w = bench.input
    return [torch.rand(frames, c, h, w, generator=torch.Generator().manual_seed(i)) for i in range(count)]


def _run_streams(loop, videos: list[torch.Tensor], chunk: int, seconds: float) -> tuple[int, float]:
    """Rounds of one chunk per stream (videos cycled) for about ``seconds`` after one warm-up
    round; frames scored and the seconds taken."""
    runs = [loop.start() for _ in videos]
    position = 0

    def round_() -> int:
        nonlocal position
        idx = [(position + i) % videos[0].shape[0] for i in range(chunk)]
        frames = [v[idx] for v in videos]
        position += chunk
        if len(runs) == 1:
            runs[0].push(frames[0])  # what a process scoring one source does
        else:
            loop.push_many(runs, frames)
        return chunk * len(runs)

    with torch.inference_mode():
        round_()  # warm-up: first-call costs (weight packing, allocation)
        done, start = 0, time.perf_counter()
        while True:
            done += round_()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return done, elapsed


def _separate_worker(bench: BenchConfig, mode: str, device: str, precision: str, chunk: int, seconds: float,
                     threads: int, seed: int, barrier, results) -> None:
    torch.set_num_threads(threads)
    loop = _scoring_loop(bench, mode, torch.device(device), precision)
    videos = _videos(bench, seed + 1)[seed:]
    with torch.inference_mode():
        loop.start().push(videos[0][:chunk])  # first-call costs before the common start
    barrier.wait()
    results.put(_run_streams(loop, videos, chunk, seconds))


def _separate(bench: BenchConfig, mode: str, device: torch.device, precision: str, n: int, chunk: int,
              seconds: float, threads: int) -> float:
    """Total frames/s of ``n`` processes scoring one stream each, at the same time."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per process, as separate tool runs are
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_separate_worker, args=(bench, mode, str(device), precision, chunk, seconds,
                                                        threads, i, barrier, results), daemon=True)
             for i in range(n)]
    for p in procs:
        p.start()
    try:
        out = [results.get(timeout=600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    return sum(frames / elapsed for frames, elapsed in out)


def multi_stream(device: torch.device, model: str = "unet_ped2", mode: str = "window",
                 streams: Sequence[int] = (1, 2, 4, 8), seconds: float = 5.0, chunk: int = 1,
                 precision: str = "fp32", stream_fps: float = 10.0, separate: bool = True,
                 log: Callable[[str], None] = print) -> dict:
    """Rows ``{streams, batched_fps, separate_fps, speedup, per_stream_fps, real_time}`` for each
    number of streams, and ``real_time_streams``: the most streams measured whose every stream
    keeps ``stream_fps`` in the batched process (0 if none)."""
    bench = MODEL_CONFIGS[model]
    c, h, w = bench.input
    threads = torch.get_num_threads()
    loop = _scoring_loop(bench, mode, device, precision)
    rows = []
    for n in streams:
        log(f"  multi-stream {model} {mode}: {n} stream(s) in one process ...")
        frames, elapsed = _run_streams(loop, _videos(bench, n), chunk, seconds)
        row = {"streams": n, "batched_fps": frames / elapsed}
        if separate:
            per = max(1, threads // n)
            log(f"  multi-stream {model} {mode}: {n} process(es), {per} thread(s) each ...")
            row["separate_fps"] = _separate(bench, mode, device, precision, n, chunk, seconds, per)
            row["separate_threads"] = per
            row["speedup"] = row["batched_fps"] / row["separate_fps"]
        row["per_stream_fps"] = row["batched_fps"] / n
        row["real_time"] = row["per_stream_fps"] >= stream_fps
        rows.append(row)
    best = max(r["batched_fps"] for r in rows)
    return {"model": model, "mode": mode, "input": f"{c}x{h}x{w}", "precision": precision, "chunk": chunk,
            "seconds": seconds, "threads": threads, "stream_fps": stream_fps, "rows": rows,
            "real_time_streams": max([r["streams"] for r in rows if r["real_time"]], default=0),
            "real_time_streams_estimate": math.floor(best / stream_fps)}
