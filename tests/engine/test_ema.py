"""TRAIN.EMA_DECAY: the weights a run evaluates and saves are the average of its steps' weights."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from pyanomaly.engine.ema import WeightAverage, check_ema_config
from pyanomaly.errors import ConfigError
from testutils import REPO, assert_same_state, run_tool


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def set_weights(model, value: float, stat: float):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
        model[1].running_mean.fill_(stat)


def test_the_average_is_the_plain_mean_for_1_over_1_minus_decay_updates_then_exponential():
    model = net()
    avg = WeightAverage(model, decay=0.75, start=2)  # plain mean of the first 4 updates
    expected, n = None, 0
    for step, value in enumerate([5.0, 7.0, 1.0, 2.0, 3.0, 10.0, 20.0, -4.0], start=1):
        set_weights(model, value, stat=step)
        avg.update(model, step)
        if step <= 2:  # left out: nothing averaged yet
            assert avg.updates == 0
            continue
        n += 1
        expected = value if expected is None else expected + max(0.25, 1 / n) * (value - expected)
        weights = avg.weights()
        for k, p in model.named_parameters():
            assert torch.allclose(weights[k], torch.full_like(p, expected)), (step, k)
        # buffers are the trained model's own
        assert torch.equal(weights["1.running_mean"], torch.full((4,), float(step)))
    assert avg.updates == 6
    assert expected == pytest.approx(((1 + 2 + 3 + 10) / 4 * 0.75 + 20 * 0.25) * 0.75 - 4 * 0.25)


def test_applied_puts_the_average_in_and_the_own_weights_back():
    model = net()
    avg = WeightAverage(model, decay=0.5)
    with avg.applied(model):  # nothing averaged yet: unchanged
        assert torch.all(model[0].weight != 3.0)
    for value in (1.0, 3.0):
        set_weights(model, value, stat=0.0)
        avg.update(model, 1)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    with avg.applied(model):
        assert torch.all(model[0].weight == 2.0)
    assert all(torch.equal(own[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("decay, start, message", [
    (1.0, 0, r"TRAIN\.EMA_DECAY must be in \[0, 1\) \(0 = off\), got 1\.0"),
    (-0.1, 0, r"TRAIN\.EMA_DECAY must be in \[0, 1\)"),
    (0.99, 10, r"TRAIN\.EMA_START must be in \[0, TRAIN\.MAX_STEPS = 10\) so that some steps are averaged, got 10"),
    (0.99, -1, r"TRAIN\.EMA_START .* got -1"),
])
def test_values_that_average_nothing_are_refused(decay, start, message):
    with pytest.raises(ConfigError, match=message):
        check_ema_config(decay, start, 10)
    check_ema_config(0.0, 10, 10)  # off: the start does not matter


# A U-Net with batch norm, so that the averaged model's statistics are computed again.
TINY_UNET = """
DATASET:
  CLIP_LENGTH: 5
  IMAGE_SIZE: [32, 32]
MODEL:
  NAME: FramePredictor
  ARGS:
    network: {type: UNet, in_channels: 1, base_channels: 4, depth: 2}
    residual: true
TRAIN:
  MAX_STEPS: 10
  BATCH_SIZE: 2
  EVAL_PERIOD: 0
  CHECKPOINT_PERIOD: 1
  KEEP_CHECKPOINTS: 10
  IMAGE_PERIOD: 0
  TENSORBOARD: False
EVAL:
  PLOTS: False
  REPORT: False
LOG:
  PROGRESS: False
"""


class DictNet(nn.Module):
    """A layer and batch norm, called as methods are: ``module(batch)``."""

    def __init__(self):
        super().__init__()
        self.lin, self.bn = nn.Linear(3, 4), nn.BatchNorm1d(4)

    def forward(self, batch):
        return self.bn(self.lin(batch["x"]))


def test_batch_norm_statistics_are_those_of_the_averaged_weights():
    torch.manual_seed(0)
    model = DictNet()
    xs = [torch.randn(8, 3) for _ in range(3)]
    calls = []

    def batches():
        calls.append(1)
        yield from ({"x": x} for x in xs)

    avg = WeightAverage(model, decay=0.5, batches=batches)
    assert avg.weights()["bn.running_mean"].eq(0).all() and not calls  # nothing averaged: nothing to compute
    weights = []
    for _ in range(2):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        weights.append({k: v.clone() for k, v in model.named_parameters()})
        avg.update(model, 1)
    w, b = [(weights[0][k] + weights[1][k]) / 2 for k in ("lin.weight", "lin.bias")]
    h = [x @ w.T + b for x in xs]
    avg.average.module.eval()
    state = avg.weights()
    assert torch.allclose(state["lin.weight"], w)
    assert torch.allclose(state["bn.running_mean"], torch.stack([y.mean(0) for y in h]).mean(0), atol=1e-6)
    assert torch.allclose(state["bn.running_var"], torch.stack([y.var(0) for y in h]).mean(0), atol=1e-5)
    assert avg.average.module.bn.momentum == 0.1 and not avg.average.module.training  # as they were
    avg.weights()
    assert len(calls) == 1  # computed once for these weights
    avg.update(model, 2)
    avg.weights()
    assert len(calls) == 2


def test_a_run_evaluates_saves_and_resumes_the_average(tmp_path, tiny_synthetic):
    """The same seed with and without the average: the training weights are bit for bit the
    plain run's (computing the batch-norm statistics at every checkpoint leaves training as it
    was), the saved parameters are the average of the plain run's per-step ones, the run's
    metrics are those of the average (tools/test.py on last.pth gives them again), and a run
    resumed from a mid-way checkpoint ends in the same state."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_UNET)
    common = ["--cfg", cfg, "DATASET.ROOT", tiny_synthetic]
    ema = ["TRAIN.EMA_DECAY", "0.8", "TRAIN.EMA_START", "3", "TRAIN.EMA_BN_BATCHES", "3"]
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    for out, extra in ((plain, []), (averaged, ema)):
        r = run_tool("tools/train.py", *common, "SYSTEM.OUTPUT_DIR", out, *extra)
        assert r.returncode == 0, r.stderr[-3000:]
    assert "the weights evaluated and saved are the moving average of steps 4-10 (TRAIN.EMA_DECAY 0.8)" in r.stderr

    def load(run, name="last"):
        return torch.load(run / f"checkpoints/{name}.pth", weights_only=True)

    a, b = load(plain), load(averaged)
    assert "ema" not in a and b["ema"]["updates"] == 7
    assert all(torch.equal(a["model"][k], v) for k, v in b["ema"]["training_model"].items())
    assert_same_state(a["rng"], b["rng"], "rng")  # the statistics' batches drew on no RNG of the run
    params = {k for k, v in a["model"].items() if v.is_floating_point() and "running_" not in k}
    expected = None
    for n, step in enumerate(range(4, 11), start=1):
        w = load(plain, f"step_{step:07d}")["model"]
        expected = dict(w) if expected is None else {k: expected[k] + max(0.2, 1 / n) * (w[k] - expected[k])
                                                     for k in params}
    for k in params:
        assert torch.allclose(b["model"][k], expected[k], atol=1e-6), k
    for k in params | {"net.down.0.1.running_mean"}:
        assert not torch.equal(b["model"][k], a["model"][k]), k  # averaged, or computed for the average
    # before the average starts the checkpoint holds the training weights, and says so
    early = load(averaged, "step_0000003")
    assert early["ema"] == {"updates": 0, "decay": 0.8, "start": 3, "training_model": None}
    assert all(torch.equal(load(plain, "step_0000003")["model"][k], v) for k, v in early["model"].items())

    r = run_tool("tools/test.py", *common, *ema, "--checkpoint", averaged / "checkpoints/last.pth",
                 "SYSTEM.OUTPUT_DIR", tmp_path / "scored")
    assert r.returncode == 0, r.stderr[-3000:]
    scored = json.loads((tmp_path / "scored/metrics.json").read_text())
    assert b["metrics"]["auc_micro"] == pytest.approx(scored["auc_micro"], abs=1e-12)

    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(averaged / "config.yaml", resumed / "config.yaml")
    shutil.copy(averaged / "checkpoints/step_0000006.pth", resumed / "checkpoints/last.pth")
    r = run_tool("tools/train.py", *common, *ema, "SYSTEM.OUTPUT_DIR", resumed, "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    c = load(resumed)
    for key in ("model", "optimizer", "ema", "step"):
        assert_same_state(c[key], b[key], key)


def test_a_method_that_learns_online_refuses_it(tmp_path, tiny_synthetic, restore_logging):
    from pyanomaly.config import load_cfg
    from pyanomaly.engine.launch import train
    cfg = load_cfg(str(REPO / "configs/streamer.yaml"), ["DATASET.ROOT", str(tiny_synthetic), "SYSTEM.OUTPUT_DIR",
                                             str(tmp_path / "run"), "TRAIN.EMA_DECAY", "0.9"])
    with pytest.raises(ConfigError, match=r"TRAIN\.EMA_DECAY averages the weights of step-trained methods; "
                                          r"MODEL\.NAME Streamer learns online in one pass"):
        train(cfg)
