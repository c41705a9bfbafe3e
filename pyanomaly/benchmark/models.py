"""Timing the benchmark models (:mod:`.recipes`): frames/s, latency, training clips/s, memory and FLOPs
per variant and test mode.

Variants: ``reference`` (the plain fp32 code), ``fp32`` and ``bf16`` (the optimised inference
path, bf16 = bfloat16 autocast), ``fused``/``fused-bf16`` (the same with the LSTM update as
one ``torch.compile``'d pass, ``TEST.FUSED_UPDATE``), ``compile``/``compile-bf16``
(``torch.compile`` of the plain code). Test modes: ``window`` (each frame predicted from a
fresh state over the ``clip_length - 1`` frames before it) and ``stream`` (one carried state).
"""
from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from typing import Callable

import torch

from pyanomaly.networks.fast import FastPath, using_fast_path

from .recipes import (ABLATION, MODEL_CONFIGS, VARIANTS, BenchConfig, _compiled, _variant, build_model,
                      variant_switches)
from .timing import _median_time, _sync, _timed, count_flops, interleaved, peak_memory_mb, tune_malloc

__all__ = ["ABLATION", "ABLATION_RUNS", "MODEL_CONFIGS", "VARIANTS", "BenchConfig", "ablation", "benchmark_model",
           "build_model", "clip_length_sweep", "variant_switches"]


def _stream_call(model, video: torch.Tensor, warm: int, n: int):
    """``predict_stream`` over ``video[warm:warm + n]`` from the state after ``video[:warm]``."""
    with torch.no_grad():
        _, _, state = model.predict_stream(video[:warm], None)
    return lambda: model.predict_stream(video[warm:warm + n], state)


def _latency(model, video: torch.Tensor, warm: int, sync, budget_s: float, max_frames: int) -> list[float]:
    """Seconds per frame fed one at a time with the state carried (at least 5 frames)."""
    with torch.no_grad():
        _, _, state = model.predict_stream(video[:warm], None)
        model.predict_stream(video[warm:warm + 1], state)  # warm the caches
        out, start = [], time.perf_counter()
        for i in range(warm, min(video.shape[0], warm + max_frames)):
            t = time.perf_counter()
            _, _, state = model.predict_stream(video[i:i + 1], state)
            sync()
            out.append(time.perf_counter() - t)
            if len(out) >= 5 and time.perf_counter() - start > budget_s:
                break
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(int(q * len(s)), len(s) - 1)]


def benchmark_model(name: str, device: torch.device, repeats: int = 3, variants=("reference", "fp32", "bf16"),
                    train: bool = True, latency_budget_s: float = 3.0, log: Callable[[str], None] = print) -> list[dict]:
    """Rows ``{model, variant, mode, ...}`` for every variant and test mode of ``MODEL_CONFIGS[name]``."""
    bench = MODEL_CONFIGS[name]
    c, h, w = bench.input
    T, sync = bench.clip_length, _sync(device)
    warm = T - 1
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(warm + max(bench.frames, 24), c, h, w, generator=gen).to(device)
    rows = []
    for mode in bench.modes:
        model = build_model(bench, mode, device)
        flops = count_flops(_stream_call(model, video, warm, bench.frames), model=model) / bench.frames
        executed = count_flops(_stream_call(model, video, warm, bench.frames), executed=True,
                               model=model) / bench.frames
        models, compile_s = {}, {}
        if any(v.startswith("compile") for v in variants):
            torch._dynamo.reset()
        for v in variants:
            models[v] = _compiled(model) if v.startswith("compile") else model
        calls = {}
        for v in variants:
            call = _stream_call(models[v], video, warm, bench.frames)

            def run(v=v, call=call):
                with torch.inference_mode(), _variant(v, models[v], device):
                    return call()
            if v.startswith(("compile", "fused")):
                log(f"  compiling {name} {mode} {v} ...")
                compile_s[v] = _timed(run, sync)  # first call: tracing and code generation
            calls[v] = run
        log(f"  {name} {mode}: timing {', '.join(variants)} ...")
        times = interleaved(calls, repeats, sync)
        for v in variants:
            t = statistics.median(times[v])
            row = {"model": name, "input": f"{c}x{h}x{w}", "clip_length": T, "variant": v, "mode": mode,
                   "gflop_per_frame": flops / 1e9, "fps": bench.frames / t, "fps_runs": [bench.frames / s for s in times[v]],
                   "gflop_executed_per_frame": (flops if v in ("reference", "compile", "compile-bf16") else executed) / 1e9}
            row["achieved_gflops"] = row["gflop_per_frame"] * row["fps"]
            row["executed_gflops"] = row["gflop_executed_per_frame"] * row["fps"]
            with _variant(v, models[v], device):
                lat = _latency(models[v], video, warm, sync, latency_budget_s, 30)
            row["latency_ms_p50"], row["latency_ms_p95"] = 1e3 * _pct(lat, 0.5), 1e3 * _pct(lat, 0.95)
            if v in compile_s:
                row["compile_s"] = compile_s[v]
            row["peak_mem_mb"], row["mem_before_mb"] = peak_memory_mb(calls[v], device)
            rows.append(row)
    if train:
        clip = torch.rand(bench.train_batch, T, c, h, w, generator=gen).to(device)
        for v in variants:
            if v in ("reference", "bf16"):  # training runs the plain code; "fp32" would repeat "reference"
                rows_v = [r for r in rows if r["variant"] == v]
                log(f"  {name}: training ({v}) ...")
                t, peak = _train_time(bench, device, clip, v, repeats)
                for r in rows_v:
                    r["train_clips_per_s"], r["train_peak_mem_mb"] = bench.train_batch / t, peak
    return rows


def _train_time(bench: BenchConfig, device: torch.device, clip: torch.Tensor, variant: str,
                repeats: int) -> tuple[float, float]:
    model = build_model(bench, bench.modes[0], device).train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if variant.endswith("bf16") else nullcontext()

    def forward(batch):
        with amp:  # the forward pass only, as the trainer's autocast does
            return model(batch)
    def step():
        model.train_step({"frames": clip}, opt, forward=forward)
    t = _median_time(step, max(1, repeats - 1), _sync(device))
    return t, peak_memory_mb(step, device)[0]


def clip_length_sweep(name: str, device: torch.device, lengths=(4, 10, 20), variants=("fp32",), repeats: int = 3,
                      log: Callable[[str], None] = print) -> list[dict]:
    """Frames/s per test mode against the clip length: the window's cost grows with it, the stream's not."""
    bench = MODEL_CONFIGS[name]
    c, h, w = bench.input
    video = torch.rand(max(lengths) + bench.frames, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for mode in bench.modes:
        for v in variants:
            calls = {}
            for T in lengths:
                model = build_model(bench, mode, device, clip_length=T)
                call = _stream_call(model, video, T - 1, bench.frames)

                def run(call=call, model=model, v=v):
                    with torch.inference_mode(), _variant(v, model, device):
                        return call()
                calls[T] = run
            log(f"  {name} {mode} {v}: clip lengths {', '.join(map(str, lengths))} ...")
            times = interleaved(calls, repeats, _sync(device))
            rows.append({"model": name, "mode": mode, "variant": v,
                         "fps": {T: bench.frames / statistics.median(times[T]) for T in lengths}})
    return rows


def ablation(name: str, device: torch.device, repeats: int = 3, precisions=("fp32", "bf16"), mode: str = "stream",
             clip_length: int | None = None, switches: tuple[str, ...] = ABLATION,
             log: Callable[[str], None] = print) -> list[dict]:
    """Frames/s of ``name`` in ``mode`` with everything on, the plain code, and each switch off."""
    bench = MODEL_CONFIGS[name]
    c, h, w = bench.input
    mode = mode if mode in bench.modes else bench.modes[0]
    T = clip_length or bench.clip_length
    n = max(bench.frames, 8) if mode == "stream" else bench.frames
    video = torch.rand(T - 1 + n, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    model = build_model(bench, mode, device, clip_length=T)
    call = _stream_call(model, video, T - 1, n)
    rows = []
    for prec in precisions:
        amp = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if prec == "bf16" else nullcontext
        settings = {"all on": {}, "plain code": {"enabled": False}}
        settings.update({f"no {s}": {s: False} for s in switches})

        def make(opts):
            def run():
                malloc = opts.get("malloc", True)
                if not malloc:
                    tune_malloc(False)
                try:
                    fast_path = FastPath(**{k: v for k, v in opts.items() if k != "malloc"})
                    with torch.inference_mode(), amp(), using_fast_path(model, fast_path):
                        return call()
                finally:
                    if not malloc:
                        tune_malloc(True)
            return run
        log(f"  ablation {name} {mode} T={T} {prec} ...")
        times = interleaved({k: make(o) for k, o in settings.items()}, repeats, _sync(device))
        base = n / statistics.median(times["all on"])
        for k in settings:
            fps = n / statistics.median(times[k])
            rows.append({"model": name, "mode": mode, "clip_length": T, "precision": prec, "setting": k, "fps": fps,
                         "vs_all_on": fps / base})
    return rows


# (model, mode, clip length, precisions, switches) of the default ablation
ABLATION_RUNS = (("prednet_kitti", "stream", None, ("fp32", "bf16"), tuple(a for a in ABLATION if a != "zero_skip")),
                 ("prednet_kitti", "window", 4, ("bf16",), ("subpixel", "zero_skip")),
                 ("convlstm_256", "window", None, ("fp32", "bf16"), ("channels_last", "packed", "zero_skip", "malloc")))
