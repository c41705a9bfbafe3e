"""One benchmark run (:func:`run_benchmarks`) and its plain-text tables (:func:`format_report`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import machine
from .data import benchmark_data, stream_end_to_end
from .models import ABLATION_RUNS, MODEL_CONFIGS, VARIANTS, ablation, benchmark_model, clip_length_sweep
from .multistream import multi_stream
from .numerics import precision_check
from .runtimes import ONNXRUNTIME_MODELS, onnxruntime_goal, onnxruntime_lines, onnxruntime_rows
from .timing import tune_malloc


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
    stream: bool = True  # the end-to-end streaming loop (decode -> predict -> score) of prednet_ped2
    # models (those of `models` among them) also timed as their ONNX export in onnxruntime
    onnxruntime_models: list[str] = field(default_factory=lambda: list(ONNXRUNTIME_MODELS))
    multistream: bool = True  # several live streams through one model against one process per stream
    streams: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # numbers of streams of that table
    stream_seconds: float = 5.0  # seconds each of its figures is measured for
    multistream_only: bool = False  # that table alone: no machine limit, no model rows (utilisation needs both)


# (model, test mode) of the multi-stream table, for those among the measured models: the best
# Ped2 recipe (a U-Net over windows), and a recurrent model carrying one state per stream
MULTISTREAM_RUNS = (("unet_ped2", "window"), ("prednet_ped2", "stream"))


def run_benchmarks(options: Options | None = None, log: Callable[[str], None] = print, **overrides) -> dict:
    """Everything in one report dict: ``environment``, ``machine``, ``models``, ``sweep``,
    ``ablation``, ``precision``, ``data``, ``stream``, ``multistream``, ``goals``. ``overrides`` replace fields of ``options``."""
    o = dataclasses.replace(options or Options(), **overrides)
    dev = torch.device(o.device)
    for kind, names, known in (("model", o.models + o.onnxruntime_models, MODEL_CONFIGS), ("variant", o.variants + o.sweep_variants, VARIANTS)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown {kind}(s) {unknown}; known: {', '.join(known)}")
    report: dict = {"environment": machine.environment(dev), "options": dataclasses.asdict(o)}
    env = report["environment"]
    env["malloc_tuned"] = tune_malloc(True) if dev.type == "cpu" else False
    env["load_start"] = machine._load()
    try:
        _measure(report, o, dev, log)
    finally:
        if env["malloc_tuned"]:
            tune_malloc(False)  # the process's allocator as it was
    report["goals"] = _goals(report)
    return report


def _measure(report: dict, o: Options, dev: torch.device, log: Callable[[str], None]) -> None:
    env = report["environment"]
    if o.multistream_only:
        _multistream(report, o, dev, log)
        env["load_end"] = machine._load()
        return
    where = env["gpu"] if "gpu" in env else f"{env['cpu']} ({env['threads']} threads)"
    log(f"machine limits on {where} ...")
    start = machine.machine_limits(dev, max(o.repeats, 5))
    report["models"], report["sweep"], report["ablation"] = [], [], []
    for name in o.models:
        log(f"model {name} ...")
        report["models"] += benchmark_model(name, dev, o.repeats, o.variants, o.train, log=log)
    _measure_onnxruntime(report, o, dev, log)
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
    if o.stream:
        log("end-to-end streaming ...")
        report["stream"] = stream_end_to_end(dev, variants=[v for v in o.variants if not v.startswith("compile")],
                                             repeats=max(1, o.repeats - 1), log=log)
    _multistream(report, o, dev, log)
    log("machine limits again ...")
    end = machine.machine_limits(dev, max(o.repeats, 5))
    # the better of the two: a slow moment of the machine must not flatter the utilisation
    report["machine"] = {k: max(start[k], end[k]) for k in start}
    report["machine_start"], report["machine_end"] = start, end
    env["load_end"] = machine._load()
    for r in report["models"]:
        r["utilisation"] = r["achieved_gflops"] / (report["machine"]["matmul_bf16_gflops"]
                                                   if r["variant"].endswith("bf16") else
                                                   machine.fp32_limit(report["machine"]))
        r["utilisation_vs_bf16"] = r["achieved_gflops"] / report["machine"]["matmul_bf16_gflops"]
        r["executed_utilisation_vs_bf16"] = r["executed_gflops"] / report["machine"]["matmul_bf16_gflops"]


def _measure_onnxruntime(report: dict, o: Options, dev: torch.device, log: Callable[[str], None]) -> None:
    names = [n for n in o.onnxruntime_models if n in o.models]
    if names and dev.type != "cpu":
        log("onnxruntime: skipped (it runs on the CPU here; --device cpu)")
        return
    report["onnxruntime"] = []
    for name in names:
        log(f"onnxruntime {name} ...")
        report["onnxruntime"] += onnxruntime_rows(name, o.repeats, log=log)


def _multistream(report: dict, o: Options, dev: torch.device, log: Callable[[str], None]) -> None:
    report["multistream"] = []
    for name, mode in MULTISTREAM_RUNS if o.multistream or o.multistream_only else ():
        if name in o.models:
            log(f"multi-stream {name} ...")
            report["multistream"].append(multi_stream(dev, name, mode, o.streams, o.stream_seconds, log=log))


def _goals(report: dict) -> dict:
    """The issue's goals, as measured (never asserted)."""
    goals = {}
    kitti = [r for r in report.get("models", []) if r["model"] == "prednet_kitti" and r["mode"] == "stream"]
    if kitti:
        best = max(kitti, key=lambda r: r["fps"])
        goals["prednet_kitti_stream_fps"] = {"goal": 30.0, "best": best["fps"], "variant": best["variant"],
                                             "met": best["fps"] >= 30.0}
    if report.get("stream"):
        best = max(report["stream"], key=lambda r: r["fps"])
        goals["stream_end_to_end_fps"] = {"goal": 60.0, "best": best["fps"], "at": f"{best['model']} {best['variant']}",
                                          "met": best["fps"] >= 60.0}
    goals.update(onnxruntime_goal(report.get("onnxruntime", [])))
    for m in report.get("multistream", []):
        rows = [r for r in m["rows"] if r["streams"] > 1 and "speedup" in r]
        if rows:
            best = max(rows, key=lambda r: r["speedup"])
            goals[f"multistream_{m['model']}_vs_one_process_per_stream"] = {
                "goal": 1.5, "best": best["speedup"], "at": f"{best['streams']} streams", "met": best["speedup"] >= 1.5}
    for family in ("prednet", "convlstm"):
        rows = [r for r in report.get("models", []) if r["model"].startswith(family)]
        if rows:
            best = max(rows, key=lambda r: r["utilisation_vs_bf16"])
            per_config: dict[str, dict] = {}  # the best variant of each model and mode
            for r in rows:
                key = f"{r['model']} {r['mode']}"
                if key not in per_config or r["utilisation_vs_bf16"] > per_config[key]["utilisation_vs_bf16"]:
                    per_config[key] = {"utilisation_vs_bf16": r["utilisation_vs_bf16"], "variant": r["variant"]}
            goals[f"{family}_utilisation_vs_bf16_matmul"] = {
                "goal": 0.6, "best": best["utilisation_vs_bf16"], "at": f"{best['model']} {best['mode']} {best['variant']}",
                "met": best["utilisation_vs_bf16"] >= 0.6, "per_config": per_config}
    return goals


def _table(head: tuple, rows: list[tuple]) -> list[str]:
    rows = [head] + rows
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    return ["  ".join(str(v).rjust(w) for v, w in zip(row, widths)) for row in rows]


def format_report(report: dict) -> str:
    """The report as plain-text tables."""
    env = report["environment"]
    gpu = (f"{env['gpu']} (fp32 TF32: conv {env['tf32']['conv']}, matmul {env['tf32']['matmul']}) | "
           if "gpu" in env else "")
    lines = [f"torch {env['torch']} | {gpu}{env['cpu']} | {env['threads']} threads | device {env['device']} | "
             f"OMP_WAIT_POLICY {env.get('omp_wait_policy', '?')} | malloc tuned {env.get('malloc_tuned', '?')} | "
             f"load {env.get('load_start', '?')} -> {env.get('load_end', '?')}", ""]
    if "machine" in report:  # not measured with multistream_only
        lines += ["machine limit (GFLOP/s, the better of start and end): "
                  + ", ".join(f"{k.replace('_gflops', '')} {v:.0f}" for k, v in report["machine"].items()), ""]
    head = ("model", "input", "T", "variant", "mode", "GFLOP/frame", "frames/s", "lat p50 ms", "p95 ms",
            "GFLOP/s", "util", "util/bf16", "exec/bf16", "train clips/s", "peak MB", "train MB")
    rows = []
    for r in report.get("models", []):
        train = r.get("train_clips_per_s")
        rows.append((r["model"], r["input"], r["clip_length"], r["variant"] + (f" ({r['compile_s']:.0f}s)" if "compile_s" in r else ""),
                     r["mode"], f"{r['gflop_per_frame']:.3f}", f"{r['fps']:.1f}", f"{r['latency_ms_p50']:.1f}",
                     f"{r['latency_ms_p95']:.1f}", f"{r['achieved_gflops']:.0f}",
                     f"{100 * r['utilisation']:.0f}%" if "utilisation" in r else "-",
                     f"{100 * r['utilisation_vs_bf16']:.0f}%" if "utilisation_vs_bf16" in r else "-",
                     f"{100 * r['executed_utilisation_vs_bf16']:.0f}%" if "executed_utilisation_vs_bf16" in r else "-",
                     f"{train:.2f}" if train else "-", f"{r['peak_mem_mb']:.0f}",
                     f"{r['train_peak_mem_mb']:.0f}" if "train_peak_mem_mb" in r else "-"))
    if rows:
        lines += _table(head, rows)
    lines += onnxruntime_lines(report.get("onnxruntime", []), _table)
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
    if report.get("stream"):
        lines += ["", "end to end: decode -> resize -> predict (carried state) -> score, as tools/score_video.py (frames/s)"]
        lines += _table(("model", "variant", "frames", "frames/s", "source"),
                        [(r["model"], r["variant"], r["frames"], f"{r['fps']:.1f}", r["source"]) for r in report["stream"]])
    for m in report.get("multistream", []):
        lines += ["", f"multi-stream: N live streams of {m['model']} ({m['mode']}, {m['input']}, {m['precision']}), "
                      f"{m['chunk']} frame(s) per stream per forward pass, {m['seconds']:g} s per figure; one process "
                      f"batching them ({m['threads']} threads) against N processes at once, one stream each"]
        lines += _table(("streams", "one process frames/s", "per stream", f"real time ({m['stream_fps']:g}/s)",
                         "N processes frames/s", "threads each", "one / N processes"),
                        [(r["streams"], f"{r['batched_fps']:.1f}", f"{r['per_stream_fps']:.1f}",
                          "yes" if r["real_time"] else "no",
                          f"{r['separate_fps']:.1f}" if "separate_fps" in r else "-", r.get("separate_threads", "-"),
                          f"{r['speedup']:.2f}x" if "speedup" in r else "-") for r in m["rows"]])
        lines.append(f"  streams scored in real time at {m['stream_fps']:g} frames/s: {m['real_time_streams']} "
                     f"(best total / {m['stream_fps']:g}: {m['real_time_streams_estimate']})")
    if report.get("goals"):
        lines += ["", "goals (measured, not asserted):"]
        for k, g in report["goals"].items():
            at = g.get("at") or g.get("variant")
            fmt = ((lambda v: f"{100 * v:.0f}%") if "utilisation" in k else (lambda v: f"{v:.1e}") if "diff" in k
                   else (lambda v: f"{v:.2f}x") if k.startswith("multistream") else (lambda v: f"{v:.1f}"))
            lines.append(f"  {k}: best {fmt(g['best'])} (goal {fmt(g['goal'])}, {'met' if g['met'] else 'NOT met'}; {at})")
            if g.get("per_config"):
                lines.append("    best per config: " + ", ".join(
                    f"{c} {fmt(v['utilisation_vs_bf16'])} ({v['variant']})" for c, v in g["per_config"].items()))
    return "\n".join(lines)
