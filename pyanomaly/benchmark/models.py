"""The benchmark models: frames/s, latency, training clips/s, memory and FLOPs per variant and test mode.

Variants: ``reference`` (the plain fp32 code), ``fp32`` and ``bf16`` (the optimised inference
path, bf16 = bfloat16 autocast), ``fused``/``fused-bf16`` (the same with the LSTM update as
one ``torch.compile``'d pass, ``TEST.FUSED_UPDATE``), ``compile``/``compile-bf16``
(``torch.compile`` of the plain code). Test modes: ``window`` (each frame predicted from a
fresh state over the ``clip_length - 1`` frames before it) and ``stream`` (one carried state).
Each model is a recipe of ``configs/`` built as training builds it (:class:`BenchConfig`), the
variant's fast path set on it (:func:`variant_switches`).
"""
from __future__ import annotations

import copy
import statistics
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from pyanomaly.config import CfgNode, load_cfg
from pyanomaly.models.build import build_model as build_method
from pyanomaly.networks.fast import FastPath, using_fast_path
from pyanomaly.registry import MODELS, accepted_arguments

from .timing import _median_time, _sync, _timed, count_flops, interleaved, peak_memory_mb, tune_malloc

# The repository, whose configs/ the benchmark models are read from.
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchConfig:
    """A benchmark model: a recipe of ``configs/`` (or the defaults), built as training builds it.

    The frame ``(C, H, W)`` and the clip length ``T`` are the config's ``DATASET.CHANNELS``,
    ``DATASET.IMAGE_SIZE`` and ``DATASET.CLIP_LENGTH`` (after ``overrides``).

    Args:
        config: a config file, relative to the repository (``"configs/prednet.yaml"``); None: the defaults.
        overrides: ``{KEY: value}`` applied to it where the benchmark differs from the recipe
            (e.g. ``{"DATASET.IMAGE_SIZE": [256, 256]}``), as ``KEY VALUE`` overrides of ``load_cfg``.
        frames: frames predicted per timed call.
        batch: test windows per forward pass (``MODEL.ARGS.batch_windows``).
        train_batch: training clips per step.
        modes: test modes: ``"window"`` and, for PredNet, ``"stream"`` (``MODEL.ARGS.test_window 0``).
    """
    config: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    frames: int = 32
    batch: int = 16
    train_batch: int = 4
    modes: tuple[str, ...] = ("window",)

    def load(self, mode: str | None = None, clip_length: int | None = None) -> CfgNode:
        """The config: the file, then ``overrides``; for a test ``mode`` also ``batch`` and the
        mode's ``test_window``; ``clip_length`` replaces ``DATASET.CLIP_LENGTH``."""
        path = ROOT / self.config if self.config is not None else None
        overrides = dict(self.overrides)
        if clip_length is not None:
            overrides["DATASET.CLIP_LENGTH"] = clip_length
        if mode is not None:
            accepted = accepted_arguments(MODELS.get(load_cfg(path, _pairs(overrides)).MODEL.NAME))
            if accepted is None or "batch_windows" in accepted:
                overrides["MODEL.ARGS.batch_windows"] = self.batch
            if mode == "stream":
                overrides["MODEL.ARGS.test_window"] = 0
        return load_cfg(path, _pairs(overrides))

    @property
    def input(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of a frame."""
        cfg = self.load()
        return (cfg.DATASET.CHANNELS, *cfg.DATASET.IMAGE_SIZE)

    @property
    def clip_length(self) -> int:
        """``T``: the training clip and the test window."""
        return self.load().DATASET.CLIP_LENGTH


def _pairs(overrides: dict[str, Any]) -> list:
    return [item for kv in overrides.items() for item in kv]


# Lotter et al.'s KITTI PredNet: no recipe of ours, so the whole method is given here.
_KITTI = {"MODEL.NAME": "PredNetPredictor", "DATASET.CHANNELS": 3, "DATASET.IMAGE_SIZE": [128, 160],
          "DATASET.CLIP_LENGTH": 10,
          "MODEL.ARGS.network": dict(type="PredNet", stack_sizes=[3, 48, 96, 192], R_stack_sizes=[3, 48, 96, 192],
                                     A_filter_sizes=[3, 3, 3], Ahat_filter_sizes=[3, 3, 3, 3],
                                     R_filter_sizes=[3, 3, 3, 3])}

MODEL_CONFIGS: dict[str, BenchConfig] = {
    "prednet_kitti": BenchConfig(None, _KITTI, frames=4, batch=4, train_batch=2, modes=("window", "stream")),
    "prednet_ped2": BenchConfig("configs/ped2_prednet.yaml", frames=16, batch=16, modes=("window", "stream")),
    "prednet_synthetic": BenchConfig("configs/prednet.yaml", modes=("window", "stream")),
    "prednet_256": BenchConfig("configs/prednet.yaml", {"DATASET.IMAGE_SIZE": [256, 256]}, frames=8, batch=8,
                               modes=("window", "stream")),
    "convlstm_64": BenchConfig("configs/convlstm.yaml"),
    "convlstm_ped2": BenchConfig("configs/ped2_convlstm.yaml", frames=16, batch=16),
    "convlstm_rgb": BenchConfig("configs/convlstm.yaml", {"DATASET.CHANNELS": 3, "DATASET.IMAGE_SIZE": [128, 160],
                                                          "MODEL.ARGS.network.in_channels": 3}, frames=16, batch=8),
    "convlstm_256": BenchConfig("configs/convlstm.yaml", {"DATASET.IMAGE_SIZE": [256, 256]}, frames=16, batch=8),
    # U-Net over 4 frames at Ped2's own 240x360 (window mode only)
    "unet_ped2": BenchConfig("configs/ped2_unet_native.yaml", frames=8, batch=8),
}
VARIANTS = ("reference", "fp32", "bf16", "fused", "fused-bf16", "compile", "compile-bf16")
ABLATION = ("channels_last", "packed", "fold", "subpixel", "zero_skip", "malloc")  # fast-path switches, plus tune_malloc


def variant_switches(name: str) -> FastPath:
    """The fast path of a variant: none (reference, compile*), the fused update (fused*) or the default."""
    if name == "reference" or name.startswith("compile"):
        return FastPath.reference()
    return FastPath(fused=name.startswith("fused"))


def _variant(name: str, model: torch.nn.Module, device: torch.device) -> ExitStack:
    """The context a variant runs in: ``model`` holding :func:`variant_switches` (restored after
    it) and, for ``*-bf16``, bf16 autocast."""
    stack = ExitStack()
    stack.enter_context(using_fast_path(model, variant_switches(name)))
    if name.endswith("bf16"):
        stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    return stack


def _compiled(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose network's plain code runs through ``torch.compile``."""
    model = copy.deepcopy(model)
    net = model.net
    # every compiled copy has its own entries in dynamo's cache (keyed by the code object, shared
    # by all PredNets): a small limit would silently run later models uncompiled
    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, limit, max(getattr(config, limit), 256))
    if hasattr(net, "reference_step"):  # PredNet: the step is what the loops call
        net.reference_step = torch.compile(net.reference_step)
    else:
        net.forward = torch.compile(net.forward)
    return model


def build_model(bench: BenchConfig, mode: str, device: torch.device, clip_length: int | None = None,
                seed: int = 0) -> torch.nn.Module:
    """The method of ``bench``'s config for test ``mode``, with fixed random weights, in eval mode."""
    torch.manual_seed(seed)
    return build_method(bench.load(mode, clip_length), device).eval()


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
