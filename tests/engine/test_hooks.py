"""The trainer and its built-in hooks, in process, on a toy method (no data set, no subprocess)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from pyanomaly.config import load_cfg
from pyanomaly.engine.hooks import (CheckpointHook, EarlyStopHook, EvalHook, HookBase, LoggerHook, LRSchedulerHook,
                                    NaNGuardHook, NonFiniteLossError, build_hooks, prediction_grid)
from pyanomaly.engine.trainer import AutocastForward, Trainer
from pyanomaly.models.base import VADModel
from pyanomaly.registry import HOOKS


class Toy(VADModel):
    """Predicts each frame as the previous one times ``w``; loss = squared error."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.bn = nn.BatchNorm2d(1)  # its running statistics would betray a forward pass in train mode

    def forward(self, batch):
        x = batch["frames"]
        return {"loss_toy": ((self.w * x[:, :-1] - x[:, 1:]) ** 2).mean()}

    @torch.no_grad()
    def predict_stream(self, frames, state=None):
        pred = torch.cat([torch.zeros_like(frames[:1]), self.bn(frames[:-1]) * self.w])
        torch.rand(1)  # a method may draw random numbers at test time
        return pred, torch.arange(frames.shape[0]) > 0, None


def batches(nan_at: int | None = None):
    """Endless batches of clips (2, 3, 1, 4, 4); the ``nan_at``-th (1-based) holds a NaN."""
    for i in itertools.count(1):
        frames = torch.full((2, 3, 1, 4, 4), 0.25 + 0.01 * (i % 5))
        if i == nan_at:
            frames[0, 0, 0, 0, 0] = math.nan
        yield {"frames": frames}


class NoFrames(Toy):
    """A method that predicts no frames (a classifier, say)."""

    def predict_stream(self, frames, state=None):
        raise NotImplementedError("NoFrames predicts no frames")


def make_trainer(tmp_path, hooks, max_steps=10, metrics=(), nan_at=None, key="auc_micro", model_class=Toy,
                 data=None, transform=None):
    model = model_class()
    values = iter(metrics)

    def evaluate():
        return {key: next(values), "frames_evaluated": 10, "protocol": {"frames_without_score": 0}}
    return Trainer(model, model, torch.optim.SGD(model.parameters(), lr=0.1), None,
                   batches(nan_at) if data is None else data, max_steps, hooks, tmp_path, evaluate=evaluate,
                   meta={"model_name": "Toy"}, device=torch.device("cpu"), transform=transform)


def saved(path):
    return torch.load(path, weights_only=True)


def test_keep_checkpoints_keeps_the_newest_k(tmp_path):
    t = make_trainer(tmp_path, [CheckpointHook(period=2, keep=2)], max_steps=9)
    t.train()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.pth", "last.pth", "step_0000008.pth", "step_0000009.pth"]
    assert saved(tmp_path / "checkpoints/step_0000008.pth")["step"] == 8
    assert saved(tmp_path / "checkpoints/last.pth")["step"] == 9


def test_last_checkpoint_holds_the_final_metrics(tmp_path):
    # the final evaluation (step 4) runs after last.pth of step 4 was written and does not
    # beat step 2's: last.pth is written again so that its metrics are those of its weights
    make_trainer(tmp_path, [EvalHook(period=2), CheckpointHook(period=2)], max_steps=4, metrics=[0.9, 0.5]).train()
    last, best = saved(tmp_path / "checkpoints/last.pth"), saved(tmp_path / "checkpoints/best.pth")
    assert (last["step"], last["metrics_step"], last["metrics"]["auc_micro"]) == (4, 4, 0.5)
    assert (best["step"], best["metrics_step"], best["metrics"]["auc_micro"]) == (2, 2, 0.9)


def test_eval_period_minus_one_never_evaluates_and_best_is_the_final_weights(tmp_path):
    def never():
        raise AssertionError("evaluated")
    t = make_trainer(tmp_path, [EvalHook(period=-1), CheckpointHook(period=2)], max_steps=5)
    t._evaluate = never
    t.train()
    assert t.metrics is None
    last, best = saved(tmp_path / "checkpoints/last.pth"), saved(tmp_path / "checkpoints/best.pth")
    assert last["step"] == best["step"] == 5 and last["metrics"] is None


def test_early_stop_after_patience_evaluations_without_improvement(tmp_path):
    hooks = [EvalHook(period=1), CheckpointHook(period=100), EarlyStopHook(patience=2)]
    t = make_trainer(tmp_path, hooks, metrics=[0.5, 0.6, 0.55, 0.6, 0.9])
    t.train()
    assert t.step == 4  # 0.55 and 0.6 do not beat 0.6
    assert saved(tmp_path / "checkpoints/best.pth")["step"] == 2
    assert saved(tmp_path / "checkpoints/last.pth")["step"] == 4
    assert hooks[2].state_dict() == {"best": 0.6, "bad": 2}


def test_nan_guard_names_the_step_and_terms_and_keeps_the_last_good_checkpoint(tmp_path):
    t = make_trainer(tmp_path, [NaNGuardHook(), CheckpointHook(period=2)], nan_at=5)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 5: loss_toy=nan, loss=nan"):
        t.train()
    assert t.failed
    last = saved(tmp_path / "checkpoints/last.pth")
    assert last["step"] == 4 and math.isfinite(last["model"]["w"])
    assert not (tmp_path / "checkpoints/best.pth").exists()  # nothing is saved after a failure


def test_hooks_run_in_order_and_see_each_step(tmp_path):
    calls = []

    class Record(HookBase):
        def __init__(self, name):
            self.name = name

        def before_train(self):
            calls.append((self.name, "before_train", self.trainer.step))

        def after_step(self):
            calls.append((self.name, "after_step", self.trainer.step))

        def after_train(self):
            calls.append((self.name, "after_train", self.trainer.step))

    make_trainer(tmp_path, [Record("a"), Record("b")], max_steps=2).train()
    assert calls == [("a", "before_train", 0), ("b", "before_train", 0), ("a", "after_step", 1), ("b", "after_step", 1),
                     ("a", "after_step", 2), ("b", "after_step", 2), ("a", "after_train", 2), ("b", "after_train", 2)]


@HOOKS.register_module(force=True)
class CountSteps(HookBase):
    """A user hook built from ``TRAIN.CUSTOM_HOOKS``, with state kept across a resume."""

    def __init__(self, every: int = 1):
        self.every, self.count = every, 0

    def after_step(self):
        self.count += self.trainer.step % self.every == 0

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state.get("count", 0)


def test_build_hooks_documented_order_then_custom_hooks():
    cfg = load_cfg(None, ["TRAIN.CUSTOM_HOOKS", "[{'type': 'CountSteps', 'every': 2}]", "TRAIN.IMAGE_PERIOD", "7"])
    hooks = build_hooks(cfg)
    assert [type(h) for h in hooks] == [LRSchedulerHook, NaNGuardHook, EvalHook, CheckpointHook, EarlyStopHook,
                                        LoggerHook, CountSteps]
    assert hooks[-1].every == 2 and hooks[5].image_period == 7


def test_custom_hook_state_survives_a_checkpoint(tmp_path):
    t = make_trainer(tmp_path, [CountSteps(every=2), CheckpointHook(period=3)], max_steps=6)
    t.train()
    u = make_trainer(tmp_path, [CountSteps(every=2), CheckpointHook(period=3)], max_steps=6)
    u.load_state_dict(saved(tmp_path / "checkpoints/last.pth"))
    assert u.hooks[0].count == 3 and u.step == 6


def test_prediction_grid_leaves_training_untouched():
    model = Toy().train()
    clip = torch.rand(5, 1, 8, 8)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    grid = prediction_grid(model, clip)
    assert torch.equal(torch.get_rng_state(), rng)  # the method's torch.rand did not advance training's RNG
    assert model.training
    assert all(torch.equal(params[k], v) for k, v in model.state_dict().items())  # no BN statistics updated
    assert grid.shape == (3, 3 * 8 + 4, 5 * 8 + 6) and 0 <= grid.min() and grid.max() <= 1  # 3 rows x T, 1 px padding
    assert torch.equal(grid[:, 1:9, 1:9], clip[0].expand(3, 8, 8))  # top-left: the first input frame


def test_prediction_grid_of_an_anomaly_map_shows_the_map_beside_rgb_frames():
    from pyanomaly.models import FlowSpeed
    texture = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    clip = torch.cat([torch.roll(texture, t, dims=-1) for t in range(4)])  # (4, 3, 16, 16), moving right
    grid = prediction_grid(FlowSpeed(flow=dict(type="dis", preset="ultrafast")), clip)
    assert grid.shape == (3, 2 * 16 + 3, 4 * 16 + 5)  # rows: the frames, the map (no frame error)
    assert torch.isfinite(grid).all() and 0 <= grid.min() and grid.max() <= 1
    assert grid[:, 18:34, 1:17].max() == 0  # the first frame has no map: black, not NaN
    assert grid[:, 18:34, 18:].max() > 0


def test_tensorboard_gets_losses_lr_metrics_and_image_grids(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    hooks = [EvalHook(period=2), LoggerHook(period=1, image_period=2)]
    make_trainer(tmp_path, hooks, max_steps=4, metrics=[0.5, 0.7]).train()
    ea = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    tags = ea.Tags()
    assert {"train/loss", "train/loss_toy", "train/lr", "eval/auc_micro"} <= set(tags["scalars"])
    assert [e.step for e in ea.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [(e.step, e.value) for e in ea.Scalars("eval/auc_micro")] == [(2, 0.5), (4, pytest.approx(0.7))]
    assert "eval/frames_evaluated" not in tags["scalars"]  # counts are not curves
    images = ea.Images("train/input_prediction_error")
    assert [e.step for e in images] == [2, 4] and (images[0].width, images[0].height) == (3 * 4 + 4, 3 * 4 + 4)  # T = 3 columns


def test_image_grids_are_off_for_a_model_that_predicts_no_frames(tmp_path, caplog):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    logger_hook = LoggerHook(period=1, image_period=2)
    with caplog.at_level("INFO", logger="pyanomaly"):
        make_trainer(tmp_path, [logger_hook], max_steps=4, model_class=NoFrames).train()
    ea = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    assert ea.Tags()["images"] == [] and [e.step for e in ea.Scalars("train/loss")] == [1, 2, 3, 4]
    assert logger_hook.image_period == 0 and "no TensorBoard image grids: NoFrames predicts no frames" in caplog.text


def test_transforms_change_training_batches_and_resume_exactly(tmp_path):
    from pyanomaly.datasets.transforms import RandomCrop
    frames = torch.rand(2, 3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data = lambda: itertools.repeat({"frames": frames})  # noqa: E731 (the same batch every step)
    shapes = []

    class Spy(HookBase):
        def after_step(self):
            shapes.append(tuple(self.trainer.batch["frames"].shape))

    torch.manual_seed(0)
    full = make_trainer(tmp_path / "full", [Spy()], max_steps=6, data=data(), transform=RandomCrop([3, 3]))
    full.train()
    assert shapes == [(2, 3, 1, 3, 3)] * 6
    torch.manual_seed(0)
    make_trainer(tmp_path / "cut", [CheckpointHook(period=3)], max_steps=3, data=data(),
                 transform=RandomCrop([3, 3])).train()
    torch.manual_seed(123)  # whatever the generator holds when the run restarts
    resumed = make_trainer(tmp_path / "cut", [], max_steps=6, data=data(), transform=RandomCrop([3, 3]))
    resumed.load_state_dict(saved(tmp_path / "cut/checkpoints/last.pth"))
    resumed.train()
    assert torch.equal(resumed.model.w, full.model.w)
    torch.manual_seed(0)
    plain = make_trainer(tmp_path / "plain", [], max_steps=6, data=data())
    plain.train()
    assert not torch.equal(plain.model.w, full.model.w)  # the crops did change what was trained on


def test_autocast_forward_runs_the_loss_under_autocast():
    seen = []
    f = AutocastForward(lambda batch: seen.append(torch.is_autocast_enabled("cpu")) or {}, "cpu")
    f({})
    assert seen == [True] and not torch.is_autocast_enabled("cpu")


def test_tensorboard_gets_the_metrics_of_other_tasks_too(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    hooks = [EvalHook(period=2), LoggerHook(period=1)]
    make_trainer(tmp_path, hooks, max_steps=4, metrics=[0.25, 0.125], key="mse").train()
    ea = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    ea.Reload()
    assert [(e.step, e.value) for e in ea.Scalars("eval/mse")] == [(2, 0.25), (4, 0.125)]
