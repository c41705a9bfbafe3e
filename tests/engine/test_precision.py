"""TEST.PRECISION: bf16 test-time prediction scores the same frames, close to fp32, and says so."""
import shutil

import numpy as np
import pytest
import torch
from yacs.config import CfgNode

from pyanomaly.config import ConfigError, get_cfg, load_cfg
from pyanomaly.datasets import build_dataset
from pyanomaly.evaluation.build import build_task
from pyanomaly.models.build import build_model
from pyanomaly.scoring.build import describe_error
from pyanomaly.scoring.video import inference_precision


def _cfg(root, name):
    cfg = get_cfg()
    cfg.DATASET.NAME, cfg.DATASET.ROOT, cfg.DATASET.IMAGE_SIZE = "synthetic", str(root), [32, 32]
    cfg.DATASET.CLIP_LENGTH = 4
    cfg.MODEL.NAME = "PredNetPredictor"
    cfg.MODEL.ARGS.network = CfgNode(dict(type="PredNet", stack_sizes=[1, 8, 16], R_stack_sizes=[8, 8, 16],
                                  A_filter_sizes=[3, 3], Ahat_filter_sizes=[3, 3, 3], R_filter_sizes=[3, 3, 3]))
    cfg.TEST.PRECISION = name
    return cfg


def test_bf16_errors_are_close_to_fp32_and_the_protocol_says_bf16(tiny_synthetic):
    out = {}
    for name in ("fp32", "bf16"):
        cfg = _cfg(tiny_synthetic, name)
        torch.manual_seed(0)
        model = build_model(cfg, torch.device("cpu"))
        data = build_dataset(cfg, "testing")
        cfg.LOG.PROGRESS = False
        results, _ = build_task(cfg).predict(model, data, torch.device("cpu"))
        out[name] = results
    for r32, r16 in zip(out["fp32"], out["bf16"]):
        e32, e16, v32, v16 = r32.errors, r16.errors, r32.valid, r16.valid
        assert (v32 == v16).all() and v32.sum() > 0
        assert e16.dtype == np.float64 and np.isfinite(e16[v16]).all()
        assert np.abs(e16[v16] - e32[v32]).max() < 0.5  # dB of PSNR: bf16 has 8 bits of mantissa
        assert np.abs(e16[v16] - e32[v32]).max() > 0  # bf16 really ran
    assert "bf16 prediction" in describe_error(_cfg(tiny_synthetic, "bf16"))
    assert "bf16" not in describe_error(_cfg(tiny_synthetic, "fp32"))


def test_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="TEST.PRECISION"):
        load_cfg(None, ["TEST.PRECISION", "fp16"])
    with pytest.raises(ValueError, match="TEST.PRECISION"):
        inference_precision("int8", torch.device("cpu"))


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="TEST.FUSED_UPDATE compiles with torch.compile, which needs a C++ compiler on CPU")
def test_fused_update_setting_runs_the_compiled_update_with_the_same_metrics(tiny_synthetic, monkeypatch):
    from pyanomaly.networks.fast import lstm as fast
    calls, real = [], fast._fused_update

    def spy(*args):
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(fast, "_fused_update", spy)
    metrics = {}
    for fused in (False, True):
        cfg = _cfg(tiny_synthetic, "fp32")
        cfg.TEST.FUSED_UPDATE = fused
        cfg.LOG.PROGRESS = False
        torch.manual_seed(0)
        model = build_model(cfg, torch.device("cpu"))
        metrics[fused] = build_task(cfg).evaluate(model, build_dataset(cfg, "testing"), torch.device("cpu"))
        assert bool(calls) == fused
    assert metrics[True]["auc_micro"] == pytest.approx(metrics[False]["auc_micro"], abs=1e-6)
