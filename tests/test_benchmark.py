"""tools/benchmark.py's measurements, on tiny configurations (figures, not speeds, are checked)."""
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyanomaly import benchmark as bench
from pyanomaly.config import load_cfg
from pyanomaly.models.build import build_model, model_meta

ROOT = Path(__file__).resolve().parents[1]


def tiny(monkeypatch):
    small = {"DATASET.IMAGE_SIZE": [16, 16], "DATASET.CLIP_LENGTH": 3}
    monkeypatch.setitem(bench.MODEL_CONFIGS, "prednet_tiny", dataclasses.replace(
        bench.MODEL_CONFIGS["prednet_synthetic"], overrides=small, frames=3, batch=2, train_batch=2,
        modes=("window", "stream")))
    monkeypatch.setitem(bench.MODEL_CONFIGS, "convlstm_tiny", dataclasses.replace(
        bench.MODEL_CONFIGS["convlstm_64"], overrides=small, frames=3, batch=2, train_batch=2))


def shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", [n for n, b in bench.MODEL_CONFIGS.items() if b.config is not None])
def test_a_config_backed_model_is_its_recipe(name):
    """Built from its config file: the method, its arguments and its weights are the recipe's;
    the benchmark changes only what its overrides name (and the test-time settings)."""
    entry = bench.MODEL_CONFIGS[name]
    recipe = load_cfg(ROOT / entry.config)
    cfg = entry.load("window")
    assert cfg.MODEL.NAME == recipe.MODEL.NAME
    expected = model_meta(load_cfg(ROOT / entry.config, [x for kv in entry.overrides.items() for x in kv]))
    assert model_meta(cfg) == expected
    changed = {k.split(".", 2)[2].split(".")[0] for k in entry.overrides if k.startswith("MODEL.ARGS.")}
    assert {k: v for k, v in model_meta(cfg)["model_args"].items() if k not in changed} == \
        {k: v for k, v in model_meta(recipe)["model_args"].items() if k not in changed}
    if not changed:  # the recipe's own network
        assert shapes(bench.build_model(entry, "window", torch.device("cpu"))) == shapes(build_model(recipe))
    if "DATASET.IMAGE_SIZE" not in entry.overrides:  # the recipe's own input
        assert entry.input == (recipe.DATASET.CHANNELS, *recipe.DATASET.IMAGE_SIZE)
    assert entry.clip_length == cfg.DATASET.CLIP_LENGTH == recipe.DATASET.CLIP_LENGTH


def test_test_modes_and_batches_reach_the_method():
    entry = bench.MODEL_CONFIGS["prednet_synthetic"]
    window = bench.build_model(entry, "window", torch.device("cpu"))
    stream = bench.build_model(entry, "stream", torch.device("cpu"), clip_length=4)
    assert (window.test_window, window.batch_windows) == (entry.clip_length, entry.batch)
    assert stream.test_window == 0 and not stream.training


def test_flop_count_of_a_known_convolution():
    conv = torch.nn.Conv2d(4, 8, 3, padding=1, bias=False)
    x = torch.rand(2, 4, 10, 10)
    assert bench.count_flops(lambda: conv(x)) == 2 * 2 * 8 * 4 * 9 * 100


def test_interleaved_timing_takes_turns():
    order = []
    times = bench.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 2, warmup=False)
    assert order == ["a", "b", "a", "b"] and all(len(t) == 2 for t in times.values())


def test_malloc_tuning_switches_on_and_off():
    assert bench.tune_malloc(False) in (True, False)  # False where there is no glibc
    assert bench.tune_malloc(True) in (True, False)


def test_report_has_every_figure_and_formats(monkeypatch):
    tiny(monkeypatch)
    monkeypatch.setattr(bench.machine, "machine_limits", lambda device, repeats: {
        "matmul_fp32_gflops": 100.0, "matmul_bf16_gflops": 200.0, "conv3x3_fp32_nchw_gflops": 80.0})
    report = bench.run_benchmarks(models=["prednet_tiny", "convlstm_tiny"], repeats=1, sweep_variants=["fp32"],
                                  ablation=False, precision=False, data=False, stream=False, log=lambda s: None)
    rows = report["models"]
    assert {(r["model"], r["variant"], r["mode"]) for r in rows} == {
        (m, v, mode) for m, modes in (("prednet_tiny", ("window", "stream")), ("convlstm_tiny", ("window",)))
        for v in ("reference", "fp32", "bf16") for mode in modes}
    for r in rows:
        for key in ("gflop_per_frame", "fps", "latency_ms_p50", "latency_ms_p95", "achieved_gflops", "peak_mem_mb",
                    "utilisation", "utilisation_vs_bf16"):
            assert r[key] > 0, (key, r)
        assert r["latency_ms_p95"] >= r["latency_ms_p50"]
        assert (r["variant"] == "fp32") != ("train_clips_per_s" in r)  # fp32 training = the reference code
        limit = 200.0 if r["variant"] == "bf16" else 100.0  # the fastest operation of the row's precision
        assert r["utilisation"] == pytest.approx(r["achieved_gflops"] / limit)
    window = {r["variant"]: r for r in rows if r["model"] == "prednet_tiny" and r["mode"] == "window"}
    stream = {r["variant"]: r for r in rows if r["model"] == "prednet_tiny" and r["mode"] == "stream"}
    assert window["fp32"]["gflop_per_frame"] > 2 * stream["fp32"]["gflop_per_frame"]  # T steps per frame, not 1
    sweep = {r["mode"]: r["fps"] for r in report["sweep"]}
    assert set(sweep) == {"window", "stream"} and list(sweep["stream"]) == [4, 10, 20]
    assert report["environment"]["threads"] >= 1 and "cpu" in report["environment"]
    json.dumps(report)  # the --json output
    table = bench.format_report(report)
    assert "prednet_tiny" in table and "T=20" in table and "util/bf16" in table


def test_fp32_utilisation_is_against_the_fastest_fp32_operation():
    # the figures of an H200: cuDNN runs fp32 convolutions in TF32, 3x faster than an fp32 matmul
    limits = {"matmul_fp32_gflops": 45372.0, "matmul_bf16_gflops": 414152.0, "conv3x3_fp32_nchw_gflops": 80419.0,
              "conv3x3_fp32_nhwc_gflops": 132109.0, "conv3x3_bf16_nhwc_gflops": 199547.0}
    assert bench.machine.fp32_limit(limits) == 132109.0
    assert bench.machine.fp32_limit({"matmul_fp32_gflops": 90.0, "conv3x3_fp32_nchw_gflops": 60.0}) == 90.0


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="the fused variants compile with torch.compile, which needs a C++ compiler on CPU")
def test_fused_variant_reports_its_compile_time_and_the_best_variant_per_config(monkeypatch):
    tiny(monkeypatch)
    monkeypatch.setattr(bench.machine, "machine_limits", lambda device, repeats: {
        "matmul_fp32_gflops": 100.0, "matmul_bf16_gflops": 200.0, "conv3x3_fp32_nchw_gflops": 80.0})
    report = bench.run_benchmarks(models=["convlstm_tiny"], repeats=1, variants=["fp32", "fused-bf16"], train=False,
                                  sweep=False, ablation=False, precision=False, data=False, stream=False,
                                  log=lambda s: None)
    rows = {r["variant"]: r for r in report["models"]}
    assert set(rows) == {"fp32", "fused-bf16"} and rows["fused-bf16"]["compile_s"] > 0
    assert "compile_s" not in rows["fp32"]
    goal = report["goals"]["convlstm_utilisation_vs_bf16_matmul"]
    best = max(rows.values(), key=lambda r: r["utilisation_vs_bf16"])
    assert goal["per_config"]["convlstm_tiny window"] == {"utilisation_vs_bf16": best["utilisation_vs_bf16"],
                                                          "variant": best["variant"]}
    assert "fused-bf16 (" in bench.format_report(report)


def test_ablation_rows(monkeypatch):
    tiny(monkeypatch)
    rows = bench.ablation("prednet_tiny", torch.device("cpu"), repeats=1, precisions=("fp32",), log=lambda s: None)
    settings = {r["setting"] for r in rows}
    assert {"all on", "plain code"} | {f"no {s}" for s in bench.ABLATION} == settings
    assert all(r["fps"] > 0 for r in rows)


def test_end_to_end_stream_scores_every_frame(monkeypatch):
    tiny(monkeypatch)
    rows = bench.stream_end_to_end(torch.device("cpu"), model="prednet_tiny", variants=("reference", "bf16"),
                                   repeats=1, log=lambda s: None)
    assert [r["variant"] for r in rows] == ["reference", "bf16"]
    assert all(r["frames"] == 180 and r["fps"] > 0 for r in rows)  # Ped2's Test001, or its generated stand-in


def test_onnxruntime_rows_beside_pytorch(monkeypatch):
    tiny(monkeypatch)
    monkeypatch.setattr(bench.machine, "machine_limits", lambda device, repeats: {
        "matmul_fp32_gflops": 100.0, "matmul_bf16_gflops": 200.0, "conv3x3_fp32_nchw_gflops": 80.0})
    report = bench.run_benchmarks(models=["prednet_tiny", "convlstm_tiny"], onnxruntime_models=["prednet_tiny"],
                                  repeats=1, variants=["fp32"], train=False, sweep=False, ablation=False,
                                  precision=False, data=False, stream=False, log=lambda s: None)
    rows = report["onnxruntime"]
    assert [(r["model"], r["mode"]) for r in rows] == [("prednet_tiny", "window"), ("prednet_tiny", "stream")]
    for r in rows:
        assert r["torch_fps"] > 0 and r["onnxruntime_fps"] > 0 and 0 <= r["max_abs_diff"] <= 1e-4, r
        assert r["speedup"] == pytest.approx(r["onnxruntime_fps"] / r["torch_fps"])
    goal = report["goals"]["onnxruntime_max_abs_diff"]
    assert goal["met"] and goal["best"] == max(r["max_abs_diff"] for r in rows)
    table = bench.format_report(report)
    assert "onnxruntime beside PyTorch" in table and "onnxruntime_max_abs_diff: best" in table


def test_tool_prints_help():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark.py"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--variants" in out.stdout and "OMP_WAIT_POLICY" in out.stdout


def test_multi_stream_table_batches_streams_and_runs_one_process_per_stream(monkeypatch):
    tiny(monkeypatch)
    monkeypatch.setattr(bench.report, "MULTISTREAM_RUNS", (("prednet_tiny", "stream"),))
    report = bench.run_benchmarks(models=["prednet_tiny"], multistream_only=True, streams=[1, 2], stream_seconds=0.3,
                                  log=lambda s: None)
    assert "machine" not in report and "models" not in report  # the table alone
    (table,) = report["multistream"]
    assert (table["model"], table["mode"], table["input"], table["chunk"]) == ("prednet_tiny", "stream", "1x16x16", 1)
    rows = {r["streams"]: r for r in table["rows"]}
    assert set(rows) == {1, 2}
    for n, r in rows.items():
        assert r["batched_fps"] > 0 and r["separate_fps"] > 0  # the second: n processes really ran
        assert r["per_stream_fps"] == pytest.approx(r["batched_fps"] / n)
        assert r["speedup"] == pytest.approx(r["batched_fps"] / r["separate_fps"])
        assert r["real_time"] == (r["per_stream_fps"] >= 10.0)
    assert rows[2]["separate_threads"] == max(1, torch.get_num_threads() // 2)
    assert table["real_time_streams"] == max([n for n, r in rows.items() if r["real_time"]], default=0)
    goal = report["goals"]["multistream_prednet_tiny_vs_one_process_per_stream"]
    assert goal["best"] == pytest.approx(rows[2]["speedup"]) and goal["at"] == "2 streams"
    json.dumps(report)
    text = bench.format_report(report)
    assert "multi-stream: N live streams of prednet_tiny" in text and "one / N processes" in text
    assert "machine limit" not in text
