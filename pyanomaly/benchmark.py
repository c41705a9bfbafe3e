"""Speed of the machine, the networks and the data path, measured in one run.

Every model figure is set against the machine's own measured limit, so that "fast" means
"close to what this hardware can do", and every optimisation is set against the plain code
it replaced, in the same run (timings on shared machines are noisy: variants are timed
interleaved, repeated, and medians reported):

* machine: GFLOP/s of a large matmul (fp32, bf16) and of a 3x3 convolution, at the start
  and at the end of the run;
* per named model and variant (``reference`` = the plain fp32 code, ``fp32`` and ``bf16`` =
  the optimised inference path, ``compile``/``compile-bf16`` = ``torch.compile`` of the plain
  code) and per test mode (``window``: each frame predicted from a fresh state over the
  ``clip_length - 1`` frames before it; ``stream``: one carried state): model FLOPs per
  frame (``torch.utils.flop_counter``, the plain code's count), frames/s, streaming latency
  per frame (p50/p95), training clips/s, peak memory, utilisation = achieved GFLOP/s /
  matmul GFLOP/s;
* frames/s against ``clip_length`` (4, 10, 20) in both modes;
* an ablation: PredNet-KITTI frames/s with each optimisation of the fast path switched off;
* bf16 against fp32 on a briefly trained synthetic model: prediction change, PSNR change, AUC;
* data: decoded frames/s from a JPEG folder and from a video file, without and with the cache.

Example:
    >>> from pyanomaly.benchmark import run_benchmarks, format_report
    >>> print(format_report(run_benchmarks(models=["prednet_synthetic"], ablation=False, data=False)))
"""
from __future__ import annotations

import copy
import ctypes
import dataclasses
import ctypes.util
import os
import platform
import resource
import statistics
import tempfile
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from pyanomaly.networks.meta import _fast as fast
from pyanomaly.registry import MODELS, build

_KITTI = dict(type="PredNet", stack_sizes=(3, 48, 96, 192), R_stack_sizes=(3, 48, 96, 192),
              A_filter_sizes=(3, 3, 3), Ahat_filter_sizes=(3, 3, 3, 3), R_filter_sizes=(3, 3, 3, 3))
_GRAY = dict(type="PredNet", stack_sizes=(1, 16, 32, 64), R_stack_sizes=(16, 16, 32, 64),  # configs/prednet.yaml
             A_filter_sizes=(3, 3, 3), Ahat_filter_sizes=(3, 3, 3, 3), R_filter_sizes=(3, 3, 3, 3))
_FORECASTER = dict(type="FramePredictor", network=dict(type="ConvLSTMForecaster", in_channels=1))


@dataclass(frozen=True)
class BenchConfig:
    """A method at its input size.

    Args:
        method: ``MODELS`` config (``type`` and arguments; ``clip_length`` is added).
        input: ``(C, H, W)`` of a frame.
        clip_length: ``T``, the training clip and the test window.
        frames: frames predicted per timed call.
        batch: training clips per step, and test windows per forward pass.
        modes: test modes: ``"window"`` and, for PredNet, ``"stream"`` (``test_window=0``).
    """
    method: dict
    input: tuple[int, int, int]
    clip_length: int = 10
    frames: int = 32
    batch: int = 16
    train_batch: int = 4
    modes: tuple[str, ...] = ("window",)


MODEL_CONFIGS: dict[str, BenchConfig] = {
    "prednet_kitti": BenchConfig(dict(type="PredNetPredictor", network=_KITTI), (3, 128, 160), 10,
                                 frames=4, batch=4, train_batch=2, modes=("window", "stream")),
    "prednet_ped2": BenchConfig(dict(type="PredNetPredictor", network=_GRAY), (1, 128, 128), 10,
                                frames=16, batch=16, modes=("window", "stream")),
    "prednet_synthetic": BenchConfig(dict(type="PredNetPredictor", network=_GRAY), (1, 64, 64), 10,
                                     modes=("window", "stream")),
    "convlstm_64": BenchConfig(_FORECASTER, (1, 64, 64), 5),
    "convlstm_256": BenchConfig(_FORECASTER, (1, 256, 256), 5, frames=16, batch=8),
}
VARIANTS = ("reference", "fp32", "bf16", "compile", "compile-bf16")
ABLATION = ("channels_last", "packed", "fold", "subpixel", "zero_skip", "malloc")  # fast-path switches, plus tune_malloc


# -- timing and the process -------------------------------------------------------------------
def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None] = lambda: None,
                warmup: bool = True) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in turns (``a b c a b c ...``) so that a change
    in the machine's load hits every variant alike."""
    if warmup:
        for fn in fns.values():
            fn()
        sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(_timed(fn, sync))
    return times


def _median_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    return statistics.median(interleaved({"f": fn}, repeats, sync)["f"])


def tune_malloc(enable: bool = True) -> bool:
    """Keep freed memory in the process (glibc ``mallopt``): no ``mmap``/page faults per tensor.

    torch allocates CPU tensors with ``malloc``; glibc serves big blocks with ``mmap`` and
    returns them at ``free``, so every large temporary of a step costs fresh page faults (at
    256x256 this halves the ConvLSTM's speed). ``enable=False`` restores glibc's defaults.
    Returns False where there is no glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        ok = libc.mallopt(m_mmap_max, 0 if enable else 65536) == 1
        ok = ok and libc.mallopt(m_trim_threshold, 2 ** 30 if enable else 128 * 1024) == 1
        if not enable:
            libc.malloc_trim(0)  # hand back what was kept, so that the default behaviour shows
        return ok
    except (OSError, AttributeError):
        return False


def _reset_peak_rss() -> None:  # VmHWM := current RSS
    try:  # Linux: "5" resets the peak resident set size of the process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """``(peak, before)`` memory in MiB around one call of ``fn``: CUDA max allocated, or on
    CPU the process's resident set (malloc's kept memory handed back first, so that the peak
    is what ``fn`` needs on top of what is live; it includes torch itself, ~0.5 GB)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2 ** 20
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2 ** 20, before
    tuned = tune_malloc(False)
    try:
        _reset_peak_rss()
        before = _peak_rss_mb()
        fn()
        return _peak_rss_mb(), before
    finally:
        if tuned:
            tune_malloc(True)


def count_flops(fn: Callable[[], object], executed: bool = False) -> int:
    """Floating-point operations of one call of ``fn`` (convolutions and matmuls).

    By default counted on the plain code: the model's FLOPs, the same for every variant (the
    figure utilisation is computed from). ``executed``: on the optimised path as it runs
    (which skips provably-zero work and computes the upsampled part of PredNet's gates on
    the small map), with prepacking off so that the counter sees its convolutions.
    """
    with (fast.options(packed=False) if executed else fast.reference_mode()), FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            fn()
    return counter.get_total_flops()


# -- the machine ----------------------------------------------------------------------------------
def machine_limits(device: torch.device, repeats: int = 5, n: int = 2048) -> dict:
    """Achieved GFLOP/s of an ``n x n`` matmul (fp32, bf16) and a 3x3 conv (fp32 NCHW/NHWC, bf16 NHWC)."""
    out, sync = {}, _sync(device)
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        out[f"matmul_{name}_gflops"] = 2 * n ** 3 / _median_time(lambda: a @ b, repeats, sync) / 1e9
    x = torch.randn(8, 64, 128, 128, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    flops = 2 * 8 * 64 * 64 * 9 * 128 * 128
    with torch.inference_mode():
        for name, fmt, dtype in (("conv3x3_fp32_nchw", torch.contiguous_format, torch.float32),
                                 ("conv3x3_fp32_nhwc", torch.channels_last, torch.float32),
                                 ("conv3x3_bf16_nhwc", torch.channels_last, torch.bfloat16)):
            xc, cc = x.to(dtype=dtype, memory_format=fmt), conv.to(dtype=dtype, memory_format=fmt)
            out[f"{name}_gflops"] = flops / _median_time(lambda: cc(xc), repeats, sync) / 1e9
    return out


def environment(device: torch.device) -> dict:
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
           "cpu": cpu, "cores": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "device": str(device), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
           "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


# -- models -----------------------------------------------------------------------------------------
def _variant(name: str, device: torch.device) -> ExitStack:
    """The context a variant runs in: the plain code (reference, compile*) and/or bf16 autocast."""
    stack = ExitStack()
    if name == "reference" or name.startswith("compile"):
        stack.enter_context(fast.reference_mode())
    if name.endswith("bf16"):
        stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    return stack


def _compiled(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose network's plain code runs through ``torch.compile``."""
    model = copy.deepcopy(model)
    net = model.net
    if hasattr(net, "reference_step"):  # PredNet: the step is what the loops call
        net.reference_step = torch.compile(net.reference_step)
    else:
        net.forward = torch.compile(net.forward)
    return model


def build_model(cfg: BenchConfig, mode: str, device: torch.device, clip_length: int | None = None,
                seed: int = 0) -> torch.nn.Module:
    """The method of ``cfg`` for test ``mode``, with fixed random weights."""
    torch.manual_seed(seed)
    extra = {"test_window": 0} if mode == "stream" else {}
    return build(MODELS, dict(cfg.method), clip_length=clip_length or cfg.clip_length, batch_windows=cfg.batch,
                 **extra).to(device).eval()


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
    cfg = MODEL_CONFIGS[name]
    c, h, w = cfg.input
    T, sync = cfg.clip_length, _sync(device)
    warm = T - 1
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(warm + max(cfg.frames, 24), c, h, w, generator=gen).to(device)
    rows = []
    for mode in cfg.modes:
        model = build_model(cfg, mode, device)
        flops = count_flops(_stream_call(model, video, warm, cfg.frames)) / cfg.frames
        executed = count_flops(_stream_call(model, video, warm, cfg.frames), executed=True) / cfg.frames
        models, compile_s = {}, {}
        for v in variants:
            models[v] = _compiled(model) if v.startswith("compile") else model
        calls = {}
        for v in variants:
            call = _stream_call(models[v], video, warm, cfg.frames)

            def run(v=v, call=call):
                with torch.inference_mode(), _variant(v, device):
                    return call()
            if v.startswith("compile"):
                log(f"  compiling {name} {mode} {v} ...")
                compile_s[v] = _timed(run, sync)  # first call: tracing and code generation
            calls[v] = run
        log(f"  {name} {mode}: timing {', '.join(variants)} ...")
        times = interleaved(calls, repeats, sync)
        for v in variants:
            t = statistics.median(times[v])
            row = {"model": name, "input": f"{c}x{h}x{w}", "clip_length": T, "variant": v, "mode": mode,
                   "gflop_per_frame": flops / 1e9, "fps": cfg.frames / t, "fps_runs": [cfg.frames / s for s in times[v]],
                   "gflop_executed_per_frame": (flops if v in ("reference", "compile", "compile-bf16") else executed) / 1e9}
            row["achieved_gflops"] = row["gflop_per_frame"] * row["fps"]
            row["executed_gflops"] = row["gflop_executed_per_frame"] * row["fps"]
            with _variant(v, device):
                lat = _latency(models[v], video, warm, sync, latency_budget_s, 30)
            row["latency_ms_p50"], row["latency_ms_p95"] = 1e3 * _pct(lat, 0.5), 1e3 * _pct(lat, 0.95)
            if v in compile_s:
                row["compile_s"] = compile_s[v]
            row["peak_mem_mb"], row["mem_before_mb"] = peak_memory_mb(calls[v], device)
            rows.append(row)
    if train:
        clip = torch.rand(cfg.train_batch, T, c, h, w, generator=gen).to(device)
        for v in variants:
            if v in ("reference", "bf16"):  # training runs the plain code; "fp32" would repeat "reference"
                rows_v = [r for r in rows if r["variant"] == v]
                log(f"  {name}: training ({v}) ...")
                t, peak = _train_time(cfg, device, clip, v, repeats)
                for r in rows_v:
                    r["train_clips_per_s"], r["train_peak_mem_mb"] = cfg.train_batch / t, peak
    return rows


def _train_time(cfg: BenchConfig, device: torch.device, clip: torch.Tensor, variant: str, repeats: int) -> float:
    model = build_model(cfg, cfg.modes[0], device).train()
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
    cfg = MODEL_CONFIGS[name]
    c, h, w = cfg.input
    video = torch.rand(max(lengths) + cfg.frames, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for mode in cfg.modes:
        for v in variants:
            calls = {}
            for T in lengths:
                call = _stream_call(build_model(cfg, mode, device, clip_length=T), video, T - 1, cfg.frames)

                def run(call=call, v=v):
                    with torch.inference_mode(), _variant(v, device):
                        return call()
                calls[T] = run
            log(f"  {name} {mode} {v}: clip lengths {', '.join(map(str, lengths))} ...")
            times = interleaved(calls, repeats, _sync(device))
            rows.append({"model": name, "mode": mode, "variant": v,
                         "fps": {T: cfg.frames / statistics.median(times[T]) for T in lengths}})
    return rows


def ablation(name: str, device: torch.device, repeats: int = 3, precisions=("fp32", "bf16"), mode: str = "stream",
             clip_length: int | None = None, switches: tuple[str, ...] = ABLATION,
             log: Callable[[str], None] = print) -> list[dict]:
    """Frames/s of ``name`` in ``mode`` with everything on, the plain code, and each switch off."""
    cfg = MODEL_CONFIGS[name]
    c, h, w = cfg.input
    mode = mode if mode in cfg.modes else cfg.modes[0]
    T = clip_length or cfg.clip_length
    n = max(cfg.frames, 8) if mode == "stream" else cfg.frames
    video = torch.rand(T - 1 + n, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    call = _stream_call(build_model(cfg, mode, device, clip_length=T), video, T - 1, n)
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
                    with torch.inference_mode(), amp(), fast.options(**{k: v for k, v in opts.items() if k != "malloc"}):
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
                 ("convlstm_256", "window", None, ("fp32", "bf16"), ("channels_last", "packed", "malloc")))


# -- numerics of bf16 on the synthetic set -------------------------------------------------------------
def precision_check(device: torch.device, train_steps: int = 150, size: int = 64,
                    log: Callable[[str], None] = print) -> dict:
    """bf16 against fp32 on a briefly trained synthetic PredNet: predictions, PSNR and AUC.

    The model (configs/prednet.yaml's network) is trained ``train_steps`` steps on a small
    generated dataset, then its test videos are predicted in both test modes with the plain
    fp32 code, the fp32 fast path and the bf16 fast path.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from pyanomaly.datasets.synthetic import make_synthetic
    from pyanomaly.registry import DATASETS

    out: dict = {"train_steps": train_steps, "size": size}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(Path(tmp) / "synthetic", seed=0, size=size, num_train=2, num_test=3, frames_per_video=90)
        kw = dict(clip_length=10, image_size=(size, size), channels=1, cache_dir=None)
        train_set = build(DATASETS, dict(type="synthetic", root=str(root), split="training", **kw))
        test_set = build(DATASETS, dict(type="synthetic", root=str(root), split="testing", **kw))
        cfg = MODEL_CONFIGS["prednet_synthetic"]
        model = build_model(cfg, "window", device).train()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(0)
        log(f"  training the synthetic PredNet {train_steps} steps ...")
        for _ in range(train_steps):
            idx = torch.randint(len(train_set), (4,), generator=gen).tolist()
            model.train_step({"frames": torch.stack([train_set[i]["frames"] for i in idx]).to(device)}, opt)
        model.eval()
        state = copy.deepcopy(model.state_dict())
        for mode in MODEL_CONFIGS["prednet_synthetic"].modes:
            m = build_model(cfg, mode, device)
            m.load_state_dict(state)
            preds: dict[str, list] = {}
            for v in ("reference", "fp32", "bf16"):
                with _variant(v, device):
                    preds[v] = [m.predict_video(test_set.video_frames(i).to(device)) for i in range(len(test_set.videos))]
            frames = [test_set.video_frames(i).to(device) for i in range(len(test_set.videos))]
            labels = np.concatenate([test_set.labels(i)[valid.cpu().numpy()] for i, (_, valid) in enumerate(preds["reference"])])

            def psnr(v):
                per_video = []
                for (p, valid), x in zip(preds[v], frames):
                    mse = ((p.float() - x) ** 2).mean(dim=(1, 2, 3))[valid]
                    per_video.append((10 * torch.log10(1 / mse.clamp_min(1e-10))).double().cpu().numpy())
                return per_video

            def auc(per_video):
                scores = [1 - (s - s.min()) / max(s.max() - s.min(), 1e-12) for s in per_video]
                return float(roc_auc_score(labels, np.concatenate(scores)))
            ref = psnr("reference")
            res = {"frames": int(labels.size), "auc_reference": auc(ref)}
            for v in ("fp32", "bf16"):
                d = torch.cat([(p.float() - q.float()).abs()[valid].flatten()
                               for (p, valid), (q, _) in zip(preds[v], preds["reference"])])
                dp = np.abs(np.concatenate(psnr(v)) - np.concatenate(ref))
                res[v] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
                          "psnr_mean_abs_diff_db": float(dp.mean()), "psnr_max_abs_diff_db": float(dp.max()),
                          "auc": auc(psnr(v))}
            out[mode] = res
    return out


# -- the data path --------------------------------------------------------------------------------------
def benchmark_data(repeats: int = 2, image_size=(256, 256), log: Callable[[str], None] = print) -> dict:
    """Decoded frames/s through the dataset class: a JPEG frame folder and a video file,
    without the cache (decode every time) and with it (the uint8 arrays memory-mapped), both
    up to float tensors ``(N, C, H, W)``."""
    import cv2
    import numpy as np

    from pyanomaly.registry import DATASETS

    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    out = {"image_size": list(image_size)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = shared / "ped2" / "testing" / "frames" / "01"
        video = shared / "videos" / "vtest.avi"
        sources = {}
        if folder.is_dir():
            sources["jpeg_folder"] = folder
        else:  # a generated stand-in
            sources["jpeg_folder"] = tmp / "gen" / "frames"
            sources["jpeg_folder"].mkdir(parents=True)
            rng = np.random.default_rng(0)
            for i in range(120):
                cv2.imwrite(str(sources["jpeg_folder"] / f"{i:03d}.jpg"), rng.integers(0, 255, (240, 360), dtype=np.uint8))
        if video.is_file():
            sources["video_file"] = video
        else:
            sources["video_file"] = tmp / "gen" / "clip.avi"
            wr = cv2.VideoWriter(str(sources["video_file"]), cv2.VideoWriter_fourcc(*"MJPG"), 10, (360, 240))
            for img in np.random.default_rng(1).integers(0, 255, (120, 240, 360, 3), dtype=np.uint8):
                wr.write(img)
            wr.release()
        for label, src in sources.items():
            root = tmp / label
            (root / "testing").mkdir(parents=True)
            (root / "testing" / ("01" + src.suffix if src.is_file() else "01")).symlink_to(src)
            log(f"  data: {label} ({src}) ...")

            def load(cache_dir):
                ds = build(DATASETS, dict(type="folder", root=str(root), split="testing", clip_length=2,
                                          image_size=image_size, channels=1, cache_dir=cache_dir))
                return ds.video_frames(0).shape[0]
            cache = tmp / f"cache-{label}"
            n = load(cache)  # fills the cache
            t_decode = _median_time(lambda: load(None), repeats)
            t_cache = _median_time(lambda: load(cache), max(repeats, 3))
            out[f"{label}_frames"] = n
            out[f"{label}_source"] = str(src)
            out[f"decode_{label}_fps"] = n / t_decode
            out[f"cache_{label}_fps"] = n / t_cache
    return out


# -- everything -----------------------------------------------------------------------------------------
@dataclass
class Options:
    """What :func:`run_benchmarks` measures (the command line's options)."""
    models: list[str] = field(default_factory=lambda: list(MODEL_CONFIGS))
    variants: list[str] = field(default_factory=lambda: ["reference", "fp32", "bf16"])
    device: str = "cpu"
    repeats: int = 3
    train: bool = True
    sweep: bool = True
    sweep_variants: list[str] = field(default_factory=lambda: ["fp32", "bf16"])
    ablation: bool = True
    precision: bool = True
    data: bool = True


def run_benchmarks(options: Options | None = None, log: Callable[[str], None] = print, **overrides) -> dict:
    """Everything in one report dict: ``environment``, ``machine``, ``models``, ``sweep``,
    ``ablation``, ``precision``, ``data``, ``goals``. ``overrides`` replace fields of ``options``."""
    o = dataclasses.replace(options or Options(), **overrides)
    dev = torch.device(o.device)
    for kind, names, known in (("model", o.models, MODEL_CONFIGS), ("variant", o.variants + o.sweep_variants, VARIANTS)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown {kind}(s) {unknown}; known: {', '.join(known)}")
    report: dict = {"environment": environment(dev), "options": dataclasses.asdict(o)}
    env = report["environment"]
    env["malloc_tuned"] = tune_malloc(True) if dev.type == "cpu" else False
    env["load_start"] = _load()
    try:
        _measure(report, o, dev, log)
    finally:
        if env["malloc_tuned"]:
            tune_malloc(False)  # the process's allocator as it was
    report["goals"] = _goals(report)
    return report


def _measure(report: dict, o: Options, dev: torch.device, log: Callable[[str], None]) -> None:
    env = report["environment"]
    log(f"machine limits on {env['cpu']} ({env['threads']} threads) ...")
    start = machine_limits(dev, max(o.repeats, 5))
    report["models"], report["sweep"], report["ablation"] = [], [], []
    for name in o.models:
        log(f"model {name} ...")
        report["models"] += benchmark_model(name, dev, o.repeats, o.variants, o.train, log=log)
    for name in o.models:
        if o.sweep and "stream" in MODEL_CONFIGS[name].modes:
            report["sweep"] += clip_length_sweep(name, dev, variants=o.sweep_variants, repeats=o.repeats, log=log)
    for name, mode, T, precisions, switches in ABLATION_RUNS if o.ablation and dev.type == "cpu" else ():
        if name in o.models:
            report["ablation"] += ablation(name, dev, o.repeats, precisions, mode, T, switches, log=log)
    if o.precision:
        report["precision"] = precision_check(dev, log=log)
    if o.data:
        log("data path ...")
        report["data"] = benchmark_data(log=log)
    log("machine limits again ...")
    end = machine_limits(dev, max(o.repeats, 5))
    report["machine"] = {k: statistics.median([start[k], end[k]]) for k in start}
    report["machine_start"], report["machine_end"] = start, end
    env["load_end"] = _load()
    for r in report["models"]:
        r["utilisation"] = r["achieved_gflops"] / report["machine"][
            "matmul_bf16_gflops" if r["variant"].endswith("bf16") else "matmul_fp32_gflops"]
        r["utilisation_vs_bf16"] = r["achieved_gflops"] / report["machine"]["matmul_bf16_gflops"]
        r["executed_utilisation_vs_bf16"] = r["executed_gflops"] / report["machine"]["matmul_bf16_gflops"]


def _goals(report: dict) -> dict:
    """The issue's goals, as measured (never asserted)."""
    goals = {}
    kitti = [r for r in report["models"] if r["model"] == "prednet_kitti" and r["mode"] == "stream"]
    if kitti:
        best = max(kitti, key=lambda r: r["fps"])
        goals["prednet_kitti_stream_fps"] = {"goal": 30.0, "best": best["fps"], "variant": best["variant"],
                                             "met": best["fps"] >= 30.0}
    for family in ("prednet", "convlstm"):
        rows = [r for r in report["models"] if r["model"].startswith(family)]
        if rows:
            best = max(rows, key=lambda r: r["utilisation_vs_bf16"])
            goals[f"{family}_utilisation_vs_bf16_matmul"] = {
                "goal": 0.6, "best": best["utilisation_vs_bf16"], "at": f"{best['model']} {best['mode']} {best['variant']}",
                "met": best["utilisation_vs_bf16"] >= 0.6,
                "per_config": {f"{r['model']} {r['mode']}": r["utilisation_vs_bf16"] for r in rows if r["variant"] == "bf16"}}
    return goals


def _table(head: tuple, rows: list[tuple]) -> list[str]:
    rows = [head] + rows
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    return ["  ".join(str(v).rjust(w) for v, w in zip(row, widths)) for row in rows]


def format_report(report: dict) -> str:
    """The report as plain-text tables."""
    env, m = report["environment"], report["machine"]
    lines = [f"torch {env['torch']} | {env['cpu']} | {env['threads']} threads | device {env['device']} | "
             f"OMP_WAIT_POLICY {env.get('omp_wait_policy', '?')} | malloc tuned {env.get('malloc_tuned', '?')} | "
             f"load {env.get('load_start', '?')} -> {env.get('load_end', '?')}", "",
             "machine limit (GFLOP/s, median of start and end): "
             + ", ".join(f"{k.replace('_gflops', '')} {v:.0f}" for k, v in m.items()), ""]
    head = ("model", "input", "T", "variant", "mode", "GFLOP/frame", "frames/s", "lat p50 ms", "p95 ms",
            "GFLOP/s", "util", "util/bf16", "exec/bf16", "train clips/s", "peak MB", "train MB")
    rows = []
    for r in report["models"]:
        train = r.get("train_clips_per_s")
        rows.append((r["model"], r["input"], r["clip_length"], r["variant"] + (f" ({r['compile_s']:.0f}s)" if "compile_s" in r else ""),
                     r["mode"], f"{r['gflop_per_frame']:.3f}", f"{r['fps']:.1f}", f"{r['latency_ms_p50']:.1f}",
                     f"{r['latency_ms_p95']:.1f}", f"{r['achieved_gflops']:.0f}",
                     f"{100 * r['utilisation']:.0f}%" if "utilisation" in r else "-",
                     f"{100 * r['utilisation_vs_bf16']:.0f}%" if "utilisation_vs_bf16" in r else "-",
                     f"{100 * r['executed_utilisation_vs_bf16']:.0f}%" if "executed_utilisation_vs_bf16" in r else "-",
                     f"{train:.2f}" if train else "-", f"{r['peak_mem_mb']:.0f}",
                     f"{r['train_peak_mem_mb']:.0f}" if "train_peak_mem_mb" in r else "-"))
    lines += _table(head, rows)
    if report.get("sweep"):
        lengths = list(report["sweep"][0]["fps"])
        lines += ["", "frames/s against the clip length (window: fresh state per frame over T-1 frames; stream: carried state)"]
        lines += _table(("model", "mode", "variant") + tuple(f"T={T}" for T in lengths),
                        [(r["model"], r["mode"], r["variant"]) + tuple(f"{r['fps'][T]:.1f}" for T in lengths)
                         for r in report["sweep"]])
    if report.get("ablation"):
        lines += ["", "ablation: each optimisation of the fast path switched off (frames/s)"]
        lines += _table(("model", "mode", "T", "precision", "setting", "frames/s", "vs all on"),
                        [(r["model"], r["mode"], r["clip_length"], r["precision"], r["setting"], f"{r['fps']:.2f}",
                          f"{r['vs_all_on']:.2f}x") for r in report["ablation"]])
    if report.get("precision"):
        p = report["precision"]
        lines += ["", f"bf16 and the fp32 fast path against the plain fp32 code: synthetic PredNet trained "
                      f"{p['train_steps']} steps, {p['size']}x{p['size']}"]
        rows = []
        for mode in ("window", "stream"):
            if mode in p:
                for v in ("fp32", "bf16"):
                    d = p[mode][v]
                    rows.append((mode, v, p[mode]["frames"], f"{d['max_abs_diff']:.2e}", f"{d['mean_abs_diff']:.2e}",
                                 f"{d['psnr_mean_abs_diff_db']:.3f}", f"{d['psnr_max_abs_diff_db']:.3f}",
                                 f"{p[mode]['auc_reference']:.4f}", f"{d['auc']:.4f}"))
        lines += _table(("mode", "variant", "frames", "max |dpred|", "mean |dpred|", "mean |dPSNR| dB",
                         "max |dPSNR| dB", "AUC plain", "AUC variant"), rows)
    if "data" in report:
        d = report["data"]
        lines += ["", f"data path (frames/s at {d['image_size'][0]}x{d['image_size'][1]} gray, to float tensors): "
                  + ", ".join(f"{k.replace('_fps', '')} {v:.0f}" for k, v in d.items() if k.endswith("_fps"))]
    if report.get("goals"):
        lines += ["", "goals (measured, not asserted):"]
        for k, g in report["goals"].items():
            at = g.get("at") or g.get("variant")
            fmt = (lambda v: f"{100 * v:.0f}%") if "utilisation" in k else (lambda v: f"{v:.1f}")
            lines.append(f"  {k}: best {fmt(g['best'])} (goal {fmt(g['goal'])}, {'met' if g['met'] else 'NOT met'}; {at})")
            if g.get("per_config"):
                lines.append("    bf16 per config: " + ", ".join(f"{c} {fmt(v)}" for c, v in g["per_config"].items()))
    return "\n".join(lines)
