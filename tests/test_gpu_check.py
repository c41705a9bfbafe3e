"""``tools/gpu_check.sh``'s pieces that run anywhere: the loss curve read from a real run's log,
and the comparison of two curves. (The whole check needs CUDA; ``--device cpu`` rehearses it.)"""
from __future__ import annotations

import math

import pyanomaly
from pyanomaly.benchmark.gpu_check import TINY, curve_gap, losses


def test_the_loss_curve_is_read_from_a_real_log(tmp_path, tiny_synthetic, restore_logging):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    run = tmp_path / "run"
    pyanomaly.train(str(cfg), {"DATASET.ROOT": str(tiny_synthetic), "SYSTEM.OUTPUT_DIR": str(run),
                               "TRAIN.MAX_STEPS": 3, "SYSTEM.DETERMINISTIC": False})
    curve = losses(run)
    assert sorted(curve) == [1, 2, 3]  # TRAIN.LOG_PERIOD 1: every step
    assert all(math.isfinite(v) and v > 0 for v in curve.values())
    assert curve_gap(curve, curve) == 0.0


def test_curve_gap_is_relative_and_needs_the_same_steps():
    a = {1: 1.0, 2: 0.5}
    assert curve_gap(a, {1: 1.0, 2: 0.5005}) < 1e-3 < curve_gap(a, {1: 1.0, 2: 0.51})
    assert curve_gap(a, {1: 1.0}) == math.inf  # a curve cut short is not a match
    assert curve_gap(a, {}) == math.inf
