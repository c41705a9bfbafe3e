"""onnxruntime beside PyTorch: frames/s of a benchmark model's ONNX export and its difference from PyTorch.

For each test mode of a model (:data:`~.recipes.MODEL_CONFIGS`), the method as ``pyanomaly
score`` runs it (PyTorch, the default fp32 fast path) and the same method with its network
exported to ONNX and run by onnxruntime (:func:`~pyanomaly.deploy.onnx.onnxruntime_method`,
as ``score --backend onnxruntime``) predict the same random video in turns; the rows give both
frames/s and the largest |onnxruntime - PyTorch| over the valid predictions. onnxruntime runs
on the CPU with torch's thread count.
"""
from __future__ import annotations

import statistics
from typing import Callable

import torch

from pyanomaly.deploy.onnx import TOLERANCE, onnxruntime_method

from .models import _stream_call
from .recipes import MODEL_CONFIGS, build_model
from .timing import interleaved

#: the models measured by default: the Ped2 recipes (configs/ped2_*.yaml) that export
ONNXRUNTIME_MODELS = ("prednet_ped2", "convlstm_ped2", "unet_ped2")


def onnxruntime_rows(name: str, repeats: int = 3, log: Callable[[str], None] = print) -> list[dict]:
    """Rows ``{model, input, clip_length, mode, torch_fps, onnxruntime_fps, speedup, max_abs_diff}``."""
    bench = MODEL_CONFIGS[name]
    c, h, w = bench.input
    warm = bench.clip_length - 1
    video = torch.rand(warm + bench.frames, c, h, w, generator=torch.Generator().manual_seed(0))
    rows = []
    for mode in bench.modes:
        model = build_model(bench, mode, torch.device("cpu"))
        log(f"  {name} {mode}: exporting to ONNX ...")
        runner = onnxruntime_method(model, None, (h, w), c)
        with torch.inference_mode():
            want, valid, _ = model.predict_stream(video, None)
            got, _, _ = runner.predict_stream(video, None)
        calls = {"torch": _stream_call(model, video, warm, bench.frames),
                 "onnxruntime": _stream_call(runner, video, warm, bench.frames)}
        timed = {k: (lambda call=call: _inference(call)) for k, call in calls.items()}
        log(f"  {name} {mode}: timing torch, onnxruntime ...")
        times = interleaved(timed, repeats)
        fps = {k: bench.frames / statistics.median(t) for k, t in times.items()}
        rows.append({"model": name, "input": f"{c}x{h}x{w}", "clip_length": bench.clip_length, "mode": mode,
                     "torch_fps": fps["torch"], "onnxruntime_fps": fps["onnxruntime"],
                     "speedup": fps["onnxruntime"] / fps["torch"], "threads": torch.get_num_threads(),
                     "max_abs_diff": float((got - want)[valid].abs().max()) if valid.any() else 0.0})
    return rows


def _inference(call: Callable[[], object]) -> object:
    with torch.inference_mode():
        return call()


def onnxruntime_goal(rows: list[dict]) -> dict:
    """The goal "onnxruntime within 1e-4 of PyTorch", as measured (never asserted)."""
    if not rows:
        return {}
    worst = max(rows, key=lambda r: r["max_abs_diff"])
    return {"onnxruntime_max_abs_diff": {"goal": TOLERANCE, "best": worst["max_abs_diff"],
                                         "at": f"{worst['model']} {worst['mode']} (the worst row)",
                                         "met": worst["max_abs_diff"] <= TOLERANCE}}


def onnxruntime_lines(rows: list[dict], table: Callable[[tuple, list[tuple]], list[str]]) -> list[str]:
    """The rows as a table beside PyTorch's frames/s (``table``: the report's table formatter)."""
    if not rows:
        return []
    return ["", "onnxruntime beside PyTorch (fp32; pyanomaly score --backend onnxruntime / torch)"] + table(
        ("model", "input", "T", "mode", "torch frames/s", "onnxruntime frames/s", "ort/torch", "max |diff|"),
        [(r["model"], r["input"], r["clip_length"], r["mode"], f"{r['torch_fps']:.1f}", f"{r['onnxruntime_fps']:.1f}",
          f"{r['speedup']:.2f}x", f"{r['max_abs_diff']:.1e}") for r in rows])
