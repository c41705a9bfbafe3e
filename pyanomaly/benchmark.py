"""Speed of the machine, the networks and the data path, measured in one run.

Every figure is a median over repeats (timings on shared machines are noisy), and every
model figure is set against the machine's own measured matmul rate so that "fast" means
"close to what this hardware can do":

* machine: fp32 and bf16 GFLOP/s of a large matmul and of a 3x3 convolution (NCHW and
  channels_last);
* per named model: FLOPs per frame (``torch.utils.flop_counter``), inference frames/s over
  clips, streaming latency per frame (p50/p95, recurrent state carried), training clips/s,
  peak memory, and utilisation = achieved GFLOP/s / matmul GFLOP/s;
* data: decoded frames/s from a JPEG/PNG folder and from a video file, and from the cache.

Example:
    >>> from pyanomaly.benchmark import run_benchmarks
    >>> report = run_benchmarks(models=["prednet_kitti"], repeats=3)
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from pyanomaly.registry import MODELS, build

# name -> (method config, input (C, H, W), clip length). FLOPs are counted per frame.
MODEL_CONFIGS: dict[str, tuple[dict, tuple[int, int, int], int]] = {
    "prednet_kitti": (dict(type="PredNetPredictor", network=dict(
        type="PredNet", stack_sizes=(3, 48, 96, 192), R_stack_sizes=(3, 48, 96, 192), A_filter_sizes=(3, 3, 3),
        Ahat_filter_sizes=(3, 3, 3, 3), R_filter_sizes=(3, 3, 3, 3))), (3, 128, 160), 10),
    "prednet_synthetic": (dict(type="PredNetPredictor", network=dict(
        type="PredNet", stack_sizes=(1, 16, 32, 64), R_stack_sizes=(16, 16, 32, 64), A_filter_sizes=(3, 3, 3),
        Ahat_filter_sizes=(3, 3, 3, 3), R_filter_sizes=(3, 3, 3, 3))), (1, 64, 64), 10),
    "convlstm_64": (dict(type="FramePredictor", network=dict(type="ConvLSTMForecaster", in_channels=1)),
                    (1, 64, 64), 5),
    "convlstm_256": (dict(type="FramePredictor", network=dict(type="ConvLSTMForecaster", in_channels=1)),
                     (1, 256, 256), 5),
}


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def machine_limits(device: torch.device, repeats: int = 5, n: int = 2048) -> dict:
    """Achieved GFLOP/s of an ``n x n`` matmul (fp32, bf16) and a 3x3 conv (fp32/bf16, NCHW/NHWC)."""
    out = {}
    sync = _sync(device)
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        t = _median_time(lambda: a @ b, repeats, sync=sync)
        out[f"matmul_{_dt(dtype)}_gflops"] = 2 * n ** 3 / t / 1e9
    x = torch.randn(8, 64, 128, 128, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    flops = 2 * 8 * 64 * 64 * 9 * 128 * 128
    with torch.inference_mode():
        for name, fmt, dtype in (("conv3x3_fp32_nchw", torch.contiguous_format, torch.float32),
                                 ("conv3x3_fp32_nhwc", torch.channels_last, torch.float32),
                                 ("conv3x3_bf16_nhwc", torch.channels_last, torch.bfloat16)):
            xc = x.to(dtype=dtype, memory_format=fmt)
            cc = conv.to(dtype=dtype, memory_format=fmt)
            out[f"{name}_gflops"] = flops / _median_time(lambda: cc(xc), repeats, sync=sync) / 1e9
    return out


def _dt(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn`` (matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    try:  # Linux: "5" resets the peak resident set size of the process
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _vm_hwm_mb() -> float | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def benchmark_model(name: str, device: torch.device, repeats: int = 3, batch: int = 4,
                    bf16: bool = False, stream_frames: int = 30) -> dict:
    """Inference, streaming and training speed of one named configuration."""
    cfg, (c, h, w), T = MODEL_CONFIGS[name]
    model = build(MODELS, dict(cfg), clip_length=T).to(device)
    sync = _sync(device)
    clip = torch.rand(batch, T, c, h, w, device=device)
    video = torch.rand(stream_frames, c, h, w, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    # FLOPs of predicting every frame of a video stream (per frame), counted once.
    model.eval()
    flops_per_frame = count_flops(lambda: model.predict_stream(video[:T], None)) / T
    result = {"model": name, "input": f"{c}x{h}x{w}", "clip_length": T, "precision": "bf16" if bf16 else "fp32",
              "gflop_per_frame": flops_per_frame / 1e9}
    _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), autocast:
        # Throughput: a batch of streams of T frames each.
        def infer():
            for b in range(batch):
                model.predict_stream(clip[b], None)
        t = _median_time(infer, repeats, sync=sync)
        result["infer_fps"] = batch * T / t
        # Latency: one frame at a time, state carried.
        state, lat = None, []
        _, _, state = model.predict_stream(video[:T], None)
        for i in range(stream_frames):
            t0 = time.perf_counter()
            _, _, state = model.predict_stream(video[i:i + 1], state)
            sync()
            lat.append(time.perf_counter() - t0)
    lat.sort()
    result["stream_ms_p50"] = 1e3 * lat[len(lat) // 2]
    result["stream_ms_p95"] = 1e3 * lat[min(int(0.95 * len(lat)), len(lat) - 1)]
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    with autocast:
        t = _median_time(lambda: model.train_step({"frames": clip}, opt), max(1, repeats - 1), sync=sync)
    result["train_clips_per_s"] = batch / t
    result["peak_mem_mb"] = (torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda"
                             else (_vm_hwm_mb() or _peak_rss_mb()))
    result["achieved_gflops"] = result["gflop_per_frame"] * result["infer_fps"]
    return result


def benchmark_data(repeats: int = 2, image_size=(256, 256)) -> dict:
    """Decoded frames/s: a frame folder and a video file, without and with the cache."""
    import cv2
    import numpy as np

    from pyanomaly.datasets.base import VideoRecord
    from pyanomaly.datasets.video import decode, sorted_frames

    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = shared / "ped2" / "testing" / "frames" / "01"
        if not folder.is_dir():  # a generated stand-in
            folder = tmp / "frames"
            folder.mkdir()
            rng = np.random.default_rng(0)
            for i in range(120):
                cv2.imwrite(str(folder / f"{i:03d}.jpg"), rng.integers(0, 255, (240, 360), dtype=np.uint8))
        video = shared / "videos" / "vtest.avi"
        if not video.is_file():
            video = tmp / "clip.avi"
            wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (360, 240))
            for img in (np.random.default_rng(1).integers(0, 255, (120, 240, 360, 3), dtype=np.uint8)):
                wr.write(img)
            wr.release()
        for label, rec in (("jpeg_folder", VideoRecord("f", sorted_frames(folder))), ("video_file", VideoRecord("v", video))):
            arrays = {}
            t = _median_time(lambda: arrays.__setitem__("a", decode(rec, image_size, 1)), repeats, warmup=0)
            n = arrays["a"].shape[0]
            out[f"decode_{label}_fps"] = n / t
            np.save(tmp / f"{label}.npy", arrays["a"])
            t = _median_time(lambda: np.ascontiguousarray(np.load(tmp / f"{label}.npy", mmap_mode="r")), repeats)
            out[f"cache_{label}_fps"] = n / t
            out[f"{label}_source"] = str(folder if label == "jpeg_folder" else video)
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
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu, "device": str(device),
           "cores": os.cpu_count()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def run_benchmarks(models: list[str] | None = None, device: str = "cpu", repeats: int = 3, bf16: bool = False,
                   data: bool = True, log: Callable[[str], None] = print) -> dict:
    """Everything above in one report dict (``environment``, ``machine``, ``models``, ``data``)."""
    dev = torch.device(device)
    report = {"environment": environment(dev)}
    log(f"machine limits on {report['environment']['cpu']} ({report['environment']['threads']} threads) ...")
    report["machine"] = machine_limits(dev, repeats)
    peak = report["machine"]["matmul_fp32_gflops"]
    peak_bf16 = report["machine"]["matmul_bf16_gflops"]
    report["models"] = []
    for name in models or list(MODEL_CONFIGS):
        for use_bf16 in ((False, True) if bf16 else (False,)):
            log(f"model {name} ({'bf16' if use_bf16 else 'fp32'}) ...")
            r = benchmark_model(name, dev, repeats, bf16=use_bf16)
            r["utilisation"] = r["achieved_gflops"] / (peak_bf16 if use_bf16 else peak)
            report["models"].append(r)
    if data:
        log("data path ...")
        report["data"] = benchmark_data()
    return report


def format_report(report: dict) -> str:
    """The report as plain-text tables."""
    env, m = report["environment"], report["machine"]
    lines = [f"torch {env['torch']} | {env['cpu']} | {env['threads']} threads | device {env['device']}", "",
             "machine limit (GFLOP/s): " + ", ".join(f"{k.replace('_gflops', '')} {v:.1f}" for k, v in m.items()), ""]
    head = ("model", "input", "prec", "GFLOP/frame", "infer fps", "stream p50 ms", "p95 ms", "train clips/s",
            "peak MB", "GFLOP/s", "util")
    rows = [head] + [(r["model"], r["input"], r["precision"], f"{r['gflop_per_frame']:.3f}", f"{r['infer_fps']:.1f}",
                      f"{r['stream_ms_p50']:.1f}", f"{r['stream_ms_p95']:.1f}", f"{r['train_clips_per_s']:.2f}",
                      f"{r['peak_mem_mb']:.0f}", f"{r['achieved_gflops']:.1f}", f"{100 * r['utilisation']:.0f}%")
                     for r in report["models"]]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    for row in rows:
        lines.append("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))
    if "data" in report:
        lines.append("")
        d = report["data"]
        lines.append("data path (frames/s): " + ", ".join(f"{k.replace('_fps', '')} {v:.0f}" for k, v in d.items()
                                                          if k.endswith("_fps")))
    return "\n".join(lines)
