import torch

from pyanomaly.benchmark import MODEL_CONFIGS, benchmark_model, count_flops, format_report


def test_flop_count_of_a_known_convolution():
    conv = torch.nn.Conv2d(4, 8, 3, padding=1, bias=False)
    x = torch.rand(2, 4, 10, 10)
    assert count_flops(lambda: conv(x)) == 2 * 2 * 8 * 4 * 9 * 100


def test_benchmark_model_reports_every_figure(monkeypatch):
    cfg, _, T = MODEL_CONFIGS["prednet_synthetic"]
    monkeypatch.setitem(MODEL_CONFIGS, "tiny", (cfg, (1, 16, 16), 4))
    r = benchmark_model("tiny", torch.device("cpu"), repeats=1, batch=2, stream_frames=4)
    for key in ("gflop_per_frame", "infer_fps", "stream_ms_p50", "stream_ms_p95", "train_clips_per_s",
                "peak_mem_mb", "achieved_gflops"):
        assert r[key] > 0, key
    assert r["stream_ms_p95"] >= r["stream_ms_p50"]
    r["utilisation"] = 0.5
    table = format_report({"environment": {"torch": "x", "cpu": "y", "threads": 1, "device": "cpu"},
                           "machine": {"matmul_fp32_gflops": 1.0}, "models": [r]})
    assert "tiny" in table and "50%" in table
